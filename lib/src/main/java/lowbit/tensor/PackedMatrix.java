package lowbit.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * A weight matrix W[out][in] stored for y = x W^T: columns of W^T in panels of {@link #PANEL} outputs,
 * each panel laid out k-major so the kernel streams it with broadcast-FMA (no horizontal reductions).
 * Panels are zero-padded, so odd output sizes need no special case in the inner loop.
 *
 * <p>Storage is float32 or bfloat16 ({@link WeightFormat}). A bf16 matrix keeps its panels as bf16 bits, half the
 * memory; a product widens each panel once per task into a per-thread float32 scratch (a task covers up to 64 rows of
 * x, so the widening is amortized over them) and runs the float32 kernels on it. The kernels and their order of
 * operations are the same, so a matrix whose values are bf16-exact gives bitwise the same product in both formats.
 */
public final class PackedMatrix {
    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    static final int L = S.length();
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, S.vectorShape());
    /** bf16 bits, one per float lane: half the float vector's width. */
    private static final VectorSpecies<Short> H = VectorSpecies.of(short.class, VectorShape.forBitSize(S.vectorBitSize() / 2));
    /** Outputs per panel: four vectors, the width of the register tile. */
    public static final int PANEL = 4 * L;
    private static final int ROWS_PER_TASK = 64;
    private static final int PANELS_PER_TASK = 8;
    /** A bf16 panel widened to float32, per worker thread (not {@link Scratch}: a caller may hold that one). */
    private static final ThreadLocal<float[]> WIDENED = ThreadLocal.withInitial(() -> new float[0]);

    private final int rows;   // out
    private final int cols;   // in
    private final int panels;
    private final float[] packed;     // float32 storage, else null
    private final short[] packedBf16; // bf16 storage, else null

    private PackedMatrix(int rows, int cols, float[] packed) {
        this(rows, cols, packed, null);
    }

    private PackedMatrix(int rows, int cols, float[] packed, short[] packedBf16) {
        this.rows = rows;
        this.cols = cols;
        this.panels = (rows + PANEL - 1) / PANEL;
        this.packed = packed;
        this.packedBf16 = packedBf16;
    }

    /** Packs a row-major [rows][cols] matrix (a linear layer's [out][in] weight) in float32. */
    public static PackedMatrix pack(float[] w, int rows, int cols) {
        return pack(w, rows, cols, WeightFormat.FP32);
    }

    /**
     * Packs a row-major [rows][cols] matrix in {@code format}; bf16 rounds each value to nearest even
     * ({@link WeightFormat#toBf16(float)}). A finite value past bf16's largest finite one (about 3.39e38) would round
     * to infinity and is refused, naming the element.
     */
    public static PackedMatrix pack(float[] w, int rows, int cols, WeightFormat format) {
        if ((long) rows * cols != w.length)
            throw new IllegalArgumentException("weight has " + w.length + " elements, expected " + rows + "x" + cols);
        int panels = (rows + PANEL - 1) / PANEL;
        int size = Math.multiplyExact(panels * PANEL, cols);
        if (format == WeightFormat.BF16) {
            short[] p = new short[size];
            for (int r = 0; r < rows; r++) {
                int base = (r / PANEL) * PANEL * cols + (r % PANEL);
                int src = r * cols;
                for (int k = 0; k < cols; k++) {
                    float v = w[src + k];
                    short b = WeightFormat.toBf16(v);
                    if (Float.isFinite(v) && Float.isInfinite(WeightFormat.fromBf16(b)))
                        throw new IllegalArgumentException("weight element [" + r + "][" + k + "] = " + v
                                + " is past bf16's largest finite value (3.39e38)");
                    p[base + k * PANEL] = b;
                }
            }
            return new PackedMatrix(rows, cols, null, p);
        }
        float[] p = new float[size];
        for (int r = 0; r < rows; r++) {
            int base = (r / PANEL) * PANEL * cols + (r % PANEL);
            int src = r * cols;
            for (int k = 0; k < cols; k++) p[base + k * PANEL] = w[src + k];
        }
        return new PackedMatrix(rows, cols, p);
    }

    /**
     * Packs a row-major [rows][cols] matrix into {@code reuse}'s storage when it has this shape (a training step repacks
     * changed weights every step; a fresh ~100 MB array per step costs more in collections than the copy), else into a
     * new matrix. Panels are packed in parallel. Always float32 (training's weights change every step).
     */
    public static PackedMatrix pack(float[] w, int rows, int cols, PackedMatrix reuse, Parallel par) {
        if ((long) rows * cols != w.length)
            throw new IllegalArgumentException("weight has " + w.length + " elements, expected " + rows + "x" + cols);
        PackedMatrix m = reuse != null && reuse.packed != null && reuse.rows == rows && reuse.cols == cols ? reuse
                : new PackedMatrix(rows, cols, new float[Math.multiplyExact((rows + PANEL - 1) / PANEL * PANEL, cols)]);
        float[] p = m.packed;
        par.forEach(m.panels, pi -> {
            int r0 = pi * PANEL, r1 = Math.min(rows, r0 + PANEL), base = pi * PANEL * cols;
            for (int r = r0; r < r1; r++) {
                int src = r * cols, dst = base + (r - r0);
                for (int k = 0; k < cols; k++) p[dst + k * PANEL] = w[src + k];
            }
        });
        return m;
    }

    /**
     * The transpose of a row-major w [rows][cols] (its first rows x cols elements) packed, the matrix that multiplies x [n][rows] into x W ([n][cols]):
     * a panel of the transpose is a column strip of w, so packing is a copy of contiguous strips (no transposed copy).
     * Reuses {@code reuse}'s storage as {@link #pack(float[], int, int, PackedMatrix, Parallel)} does.
     */
    public static PackedMatrix packTransposed(float[] w, int rows, int cols, PackedMatrix reuse, Parallel par) {
        return packTransposed(w, 0, rows, cols, reuse, par);
    }

    /** {@link #packTransposed(float[], int, int, PackedMatrix, Parallel)} of the rows x cols matrix at w[from..]. */
    public static PackedMatrix packTransposed(float[] w, int from, int rows, int cols, PackedMatrix reuse, Parallel par) {
        if (from < 0 || from + (long) rows * cols > w.length)
            throw new IllegalArgumentException("matrix of " + w.length + " elements has no " + rows + "x" + cols + " block at " + from);
        PackedMatrix m = reuse != null && reuse.packed != null && reuse.rows == cols && reuse.cols == rows ? reuse
                : new PackedMatrix(cols, rows, new float[Math.multiplyExact((cols + PANEL - 1) / PANEL * PANEL, rows)]);
        float[] p = m.packed;
        par.forEach(m.panels, pi -> {
            int c0 = pi * PANEL, width = Math.min(PANEL, cols - c0), base = pi * PANEL * rows;
            for (int k = 0; k < rows; k++) System.arraycopy(w, from + k * cols + c0, p, base + k * PANEL, width);
        });
        return m;
    }

    public int rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    /** How the values are stored. */
    public WeightFormat format() {
        return packed != null ? WeightFormat.FP32 : WeightFormat.BF16;
    }

    /** Bytes of the stored panels (padding included). */
    public long bytes() {
        return packed != null ? 4L * packed.length : 2L * packedBf16.length;
    }

    /** The matrix back in row-major [rows][cols]: the stored values (for bf16, the bf16 values as floats, exact). */
    public float[] unpack() {
        float[] w = new float[rows * cols];
        for (int r = 0; r < rows; r++) {
            int base = (r / PANEL) * PANEL * cols + (r % PANEL);
            int dst = r * cols;
            if (packed != null) for (int k = 0; k < cols; k++) w[dst + k] = packed[base + k * PANEL];
            else for (int k = 0; k < cols; k++) w[dst + k] = WeightFormat.fromBf16(packedBf16[base + k * PANEL]);
        }
        return w;
    }

    /** Panel p of a bf16 matrix as float32 in this thread's scratch, from element 0. */
    private float[] widenPanel(int p) {
        int n = PANEL * cols;
        float[] out = WIDENED.get();
        if (out.length < n) WIDENED.set(out = new float[n]);
        short[] src = packedBf16;
        int from = p * n;
        // bf16 is float32's upper half: shifting the bits up is the exact conversion (the sign extension of S2I shifts out).
        // n is a multiple of the lane count (PANEL is four vectors); the vector form is about 15x the scalar loop.
        for (int j = 0; j < n; j += L) {
            IntVector bits = (IntVector) ShortVector.fromArray(H, src, from + j).convertShape(VectorOperators.S2I, I, 0);
            bits.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(out, j);
        }
        return out;
    }

    /** y[n][rows] = x[n][cols] W^T (+ bias), y overwritten. */
    public void multiply(float[] x, int n, float[] y, float[] bias, Parallel par) {
        if ((long) n * cols > x.length || (long) n * rows > y.length)
            throw new IllegalArgumentException("matmul of " + n + "x" + cols + " by " + cols + "x" + rows
                    + " with buffers of " + x.length + " and " + y.length);
        int rowBlocks = (n + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
        int panelBlocks = (panels + PANELS_PER_TASK - 1) / PANELS_PER_TASK;
        par.forEach(rowBlocks * panelBlocks, task -> {
            int rb = task / panelBlocks, pb = task % panelBlocks;
            int r0 = rb * ROWS_PER_TASK, r1 = Math.min(n, r0 + ROWS_PER_TASK);
            int p0 = pb * PANELS_PER_TASK, p1 = Math.min(panels, p0 + PANELS_PER_TASK);
            for (int p = p0; p < p1; p++) {
                int i = r0;
                float[] w = packed;
                int wOff = p * PANEL * cols;
                if (w == null) {
                    // bf16: the panel widened once per task, then the same kernels as float32 storage
                    w = widenPanel(p);
                    wOff = 0;
                }
                for (; i + 6 <= r1; i += 6) kernel6(w, wOff, x, i, y, p);
                for (; i + 4 <= r1; i += 4) kernel4(w, wOff, x, i, y, p);
                for (; i < r1; i++) kernel1(w, wOff, x, i, y, p);
            }
        });
        if (bias != null) {
            for (int i = 0; i < n; i++) {
                int o = i * rows;
                for (int j = 0; j < rows; j++) y[o + j] += bias[j];
            }
        }
    }

    /** Six rows by four vectors: 24 accumulators, ten loads per 24 FMAs (AVX-512 has the 32 registers for it). */
    private void kernel6(float[] panel, int wOff, float[] x, int i, float[] y, int p) {
        int K = cols;
        int x0 = i * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K, x4 = x3 + K, x5 = x4 + K;
        int w = wOff;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        FloatVector c40 = c00, c41 = c00, c42 = c00, c43 = c00;
        FloatVector c50 = c00, c51 = c00, c52 = c00, c53 = c00;
        for (int k = 0; k < K; k++, w += PANEL) {
            FloatVector w0 = FloatVector.fromArray(S, panel, w);
            FloatVector w1 = FloatVector.fromArray(S, panel, w + L);
            FloatVector w2 = FloatVector.fromArray(S, panel, w + 2 * L);
            FloatVector w3 = FloatVector.fromArray(S, panel, w + 3 * L);
            FloatVector a = FloatVector.broadcast(S, x[x0 + k]);
            c00 = a.fma(w0, c00); c01 = a.fma(w1, c01); c02 = a.fma(w2, c02); c03 = a.fma(w3, c03);
            a = FloatVector.broadcast(S, x[x1 + k]);
            c10 = a.fma(w0, c10); c11 = a.fma(w1, c11); c12 = a.fma(w2, c12); c13 = a.fma(w3, c13);
            a = FloatVector.broadcast(S, x[x2 + k]);
            c20 = a.fma(w0, c20); c21 = a.fma(w1, c21); c22 = a.fma(w2, c22); c23 = a.fma(w3, c23);
            a = FloatVector.broadcast(S, x[x3 + k]);
            c30 = a.fma(w0, c30); c31 = a.fma(w1, c31); c32 = a.fma(w2, c32); c33 = a.fma(w3, c33);
            a = FloatVector.broadcast(S, x[x4 + k]);
            c40 = a.fma(w0, c40); c41 = a.fma(w1, c41); c42 = a.fma(w2, c42); c43 = a.fma(w3, c43);
            a = FloatVector.broadcast(S, x[x5 + k]);
            c50 = a.fma(w0, c50); c51 = a.fma(w1, c51); c52 = a.fma(w2, c52); c53 = a.fma(w3, c53);
        }
        int col = p * PANEL;
        if (col + PANEL <= rows) {
            int b = i * rows + col;
            c00.intoArray(y, b); c01.intoArray(y, b + L); c02.intoArray(y, b + 2 * L); c03.intoArray(y, b + 3 * L);
            b += rows;
            c10.intoArray(y, b); c11.intoArray(y, b + L); c12.intoArray(y, b + 2 * L); c13.intoArray(y, b + 3 * L);
            b += rows;
            c20.intoArray(y, b); c21.intoArray(y, b + L); c22.intoArray(y, b + 2 * L); c23.intoArray(y, b + 3 * L);
            b += rows;
            c30.intoArray(y, b); c31.intoArray(y, b + L); c32.intoArray(y, b + 2 * L); c33.intoArray(y, b + 3 * L);
            b += rows;
            c40.intoArray(y, b); c41.intoArray(y, b + L); c42.intoArray(y, b + 2 * L); c43.intoArray(y, b + 3 * L);
            b += rows;
            c50.intoArray(y, b); c51.intoArray(y, b + L); c52.intoArray(y, b + 2 * L); c53.intoArray(y, b + 3 * L);
        } else {
            float[] t = new float[6 * PANEL];
            c00.intoArray(t, 0); c01.intoArray(t, L); c02.intoArray(t, 2 * L); c03.intoArray(t, 3 * L);
            c10.intoArray(t, PANEL); c11.intoArray(t, PANEL + L); c12.intoArray(t, PANEL + 2 * L); c13.intoArray(t, PANEL + 3 * L);
            c20.intoArray(t, 2 * PANEL); c21.intoArray(t, 2 * PANEL + L); c22.intoArray(t, 2 * PANEL + 2 * L); c23.intoArray(t, 2 * PANEL + 3 * L);
            c30.intoArray(t, 3 * PANEL); c31.intoArray(t, 3 * PANEL + L); c32.intoArray(t, 3 * PANEL + 2 * L); c33.intoArray(t, 3 * PANEL + 3 * L);
            c40.intoArray(t, 4 * PANEL); c41.intoArray(t, 4 * PANEL + L); c42.intoArray(t, 4 * PANEL + 2 * L); c43.intoArray(t, 4 * PANEL + 3 * L);
            c50.intoArray(t, 5 * PANEL); c51.intoArray(t, 5 * PANEL + L); c52.intoArray(t, 5 * PANEL + 2 * L); c53.intoArray(t, 5 * PANEL + 3 * L);
            storePartial(t, 6, y, i, col);
        }
    }

    private void kernel4(float[] panel, int wOff, float[] x, int i, float[] y, int p) {
        int K = cols;
        int x0 = i * K, x1 = x0 + K, x2 = x1 + K, x3 = x2 + K;
        int w = wOff;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c02 = c00, c03 = c00;
        FloatVector c10 = c00, c11 = c00, c12 = c00, c13 = c00;
        FloatVector c20 = c00, c21 = c00, c22 = c00, c23 = c00;
        FloatVector c30 = c00, c31 = c00, c32 = c00, c33 = c00;
        for (int k = 0; k < K; k++, w += PANEL) {
            FloatVector w0 = FloatVector.fromArray(S, panel, w);
            FloatVector w1 = FloatVector.fromArray(S, panel, w + L);
            FloatVector w2 = FloatVector.fromArray(S, panel, w + 2 * L);
            FloatVector w3 = FloatVector.fromArray(S, panel, w + 3 * L);
            FloatVector a = FloatVector.broadcast(S, x[x0 + k]);
            c00 = a.fma(w0, c00); c01 = a.fma(w1, c01); c02 = a.fma(w2, c02); c03 = a.fma(w3, c03);
            a = FloatVector.broadcast(S, x[x1 + k]);
            c10 = a.fma(w0, c10); c11 = a.fma(w1, c11); c12 = a.fma(w2, c12); c13 = a.fma(w3, c13);
            a = FloatVector.broadcast(S, x[x2 + k]);
            c20 = a.fma(w0, c20); c21 = a.fma(w1, c21); c22 = a.fma(w2, c22); c23 = a.fma(w3, c23);
            a = FloatVector.broadcast(S, x[x3 + k]);
            c30 = a.fma(w0, c30); c31 = a.fma(w1, c31); c32 = a.fma(w2, c32); c33 = a.fma(w3, c33);
        }
        // Stores stay in this method: vectors passed to another method are boxed, and a callee compiled
        // apart from its caller runs the Vector API's slow Java fallback.
        int col = p * PANEL;
        if (col + PANEL <= rows) {
            int b = i * rows + col;
            c00.intoArray(y, b); c01.intoArray(y, b + L); c02.intoArray(y, b + 2 * L); c03.intoArray(y, b + 3 * L);
            b += rows;
            c10.intoArray(y, b); c11.intoArray(y, b + L); c12.intoArray(y, b + 2 * L); c13.intoArray(y, b + 3 * L);
            b += rows;
            c20.intoArray(y, b); c21.intoArray(y, b + L); c22.intoArray(y, b + 2 * L); c23.intoArray(y, b + 3 * L);
            b += rows;
            c30.intoArray(y, b); c31.intoArray(y, b + L); c32.intoArray(y, b + 2 * L); c33.intoArray(y, b + 3 * L);
        } else {
            float[] t = new float[4 * PANEL];
            c00.intoArray(t, 0); c01.intoArray(t, L); c02.intoArray(t, 2 * L); c03.intoArray(t, 3 * L);
            c10.intoArray(t, PANEL); c11.intoArray(t, PANEL + L); c12.intoArray(t, PANEL + 2 * L); c13.intoArray(t, PANEL + 3 * L);
            c20.intoArray(t, 2 * PANEL); c21.intoArray(t, 2 * PANEL + L); c22.intoArray(t, 2 * PANEL + 2 * L); c23.intoArray(t, 2 * PANEL + 3 * L);
            c30.intoArray(t, 3 * PANEL); c31.intoArray(t, 3 * PANEL + L); c32.intoArray(t, 3 * PANEL + 2 * L); c33.intoArray(t, 3 * PANEL + 3 * L);
            storePartial(t, 4, y, i, col);
        }
    }

    private void kernel1(float[] panel, int wOff, float[] x, int i, float[] y, int p) {
        int K = cols;
        int x0 = i * K;
        int w = wOff;
        FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
        for (int k = 0; k < K; k++, w += PANEL) {
            FloatVector a = FloatVector.broadcast(S, x[x0 + k]);
            c0 = a.fma(FloatVector.fromArray(S, panel, w), c0);
            c1 = a.fma(FloatVector.fromArray(S, panel, w + L), c1);
            c2 = a.fma(FloatVector.fromArray(S, panel, w + 2 * L), c2);
            c3 = a.fma(FloatVector.fromArray(S, panel, w + 3 * L), c3);
        }
        int col = p * PANEL;
        if (col + PANEL <= rows) {
            int b = i * rows + col;
            c0.intoArray(y, b); c1.intoArray(y, b + L); c2.intoArray(y, b + 2 * L); c3.intoArray(y, b + 3 * L);
        } else {
            float[] t = new float[PANEL];
            c0.intoArray(t, 0); c1.intoArray(t, L); c2.intoArray(t, 2 * L); c3.intoArray(t, 3 * L);
            storePartial(t, 1, y, i, col);
        }
    }

    /** The last, partly padded panel: copy only the columns that exist. */
    private void storePartial(float[] tile, int tileRows, float[] y, int row, int col) {
        int valid = rows - col;
        for (int r = 0; r < tileRows; r++) System.arraycopy(tile, r * PANEL, y, (row + r) * rows + col, valid);
    }
}
