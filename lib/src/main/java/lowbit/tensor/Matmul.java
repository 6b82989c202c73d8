package lowbit.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The weight-gradient product of a linear layer's backward pass, dW[out][in] += dY^T X over T rows (dY [T][out],
 * X [T][in]). The input-gradient product dX = dY W is {@link PackedMatrix#multiply} with W^T packed. Each element of
 * dW is summed over t in order by one task, so the result does not depend on the thread count.
 */
public final class Matmul {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Columns of dW per kernel: two vectors. */
    private static final int COLS = 2 * L;
    /** Rows of dW per task: eight six-row tiles share one packed column panel of X while it is in L2. */
    private static final int ROWS_PER_TASK = 48;

    /** The calling thread's packed operands, reused: a training step makes hundreds of these products. */
    private static final ThreadLocal<float[][]> DYT = ThreadLocal.withInitial(() -> new float[1][0]);
    private static final ThreadLocal<float[][]> XP = ThreadLocal.withInitial(() -> new float[1][0]);

    private Matmul() {}

    private static float[] floats(ThreadLocal<float[][]> slot, int n) {
        float[][] s = slot.get();
        if (s[0].length < n) s[0] = new float[n];
        return s[0];
    }

    /** dW[out][in] += dY^T X, dY [T][out], X [T][in] row-major. */
    public static void addTransposedProduct(float[] dy, float[] x, int T, int out, int in, float[] dw, Parallel par) {
        if ((long) T * out > dy.length || (long) T * in > x.length || (long) out * in > dw.length)
            throw new IllegalArgumentException("dW += dY^T X of " + T + " rows, " + out + " outputs and " + in
                    + " inputs with buffers of " + dy.length + ", " + x.length + " and " + dw.length);
        if (T == 0) return;
        int panels = (in + COLS - 1) / COLS;
        // dY transposed [out][T] so a tile's broadcasts stream contiguous rows; X in zero-padded column panels [T][COLS]
        float[] dyt = floats(DYT, out * T);
        par.forEach(out, o -> {
            for (int t = 0; t < T; t++) dyt[o * T + t] = dy[t * out + o];
        });
        // the padding past in holds stale values: they only reach the padded columns of a tile, which are not added
        float[] xp = floats(XP, panels * T * COLS);
        par.forEach(panels, p -> {
            int c0 = p * COLS, w = Math.min(COLS, in - c0);
            for (int t = 0; t < T; t++) System.arraycopy(x, t * in + c0, xp, (p * T + t) * COLS, w);
        });
        int rowBlocks = (out + ROWS_PER_TASK - 1) / ROWS_PER_TASK;
        par.forEach(rowBlocks * panels, task -> {
            int rb = task / panels, p = task % panels;
            int o0 = rb * ROWS_PER_TASK, o1 = Math.min(out, o0 + ROWS_PER_TASK);
            int o = o0;
            for (; o + 6 <= o1; o += 6) kernel6(dyt, xp, T, o, p, in, dw);
            for (; o < o1; o++) kernel1(dyt, xp, T, o, p, in, dw);
        });
    }

    private static void kernel6(float[] dyt, float[] xp, int T, int o, int p, int in, float[] dw) {
        int a0 = o * T, a1 = a0 + T, a2 = a1 + T, a3 = a2 + T, a4 = a3 + T, a5 = a4 + T;
        int b = p * T * COLS;
        FloatVector c00 = FloatVector.zero(S), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
        FloatVector c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
        for (int t = 0; t < T; t++, b += COLS) {
            FloatVector x0 = FloatVector.fromArray(S, xp, b), x1 = FloatVector.fromArray(S, xp, b + L);
            FloatVector a = FloatVector.broadcast(S, dyt[a0 + t]);
            c00 = a.fma(x0, c00); c01 = a.fma(x1, c01);
            a = FloatVector.broadcast(S, dyt[a1 + t]);
            c10 = a.fma(x0, c10); c11 = a.fma(x1, c11);
            a = FloatVector.broadcast(S, dyt[a2 + t]);
            c20 = a.fma(x0, c20); c21 = a.fma(x1, c21);
            a = FloatVector.broadcast(S, dyt[a3 + t]);
            c30 = a.fma(x0, c30); c31 = a.fma(x1, c31);
            a = FloatVector.broadcast(S, dyt[a4 + t]);
            c40 = a.fma(x0, c40); c41 = a.fma(x1, c41);
            a = FloatVector.broadcast(S, dyt[a5 + t]);
            c50 = a.fma(x0, c50); c51 = a.fma(x1, c51);
        }
        // stores stay here: vectors handed to another method are boxed (see PackedMatrix)
        int col = p * COLS;
        if (col + COLS <= in) {
            int d = o * in + col;
            FloatVector.fromArray(S, dw, d).add(c00).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c01).intoArray(dw, d + L);
            d += in;
            FloatVector.fromArray(S, dw, d).add(c10).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c11).intoArray(dw, d + L);
            d += in;
            FloatVector.fromArray(S, dw, d).add(c20).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c21).intoArray(dw, d + L);
            d += in;
            FloatVector.fromArray(S, dw, d).add(c30).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c31).intoArray(dw, d + L);
            d += in;
            FloatVector.fromArray(S, dw, d).add(c40).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c41).intoArray(dw, d + L);
            d += in;
            FloatVector.fromArray(S, dw, d).add(c50).intoArray(dw, d);
            FloatVector.fromArray(S, dw, d + L).add(c51).intoArray(dw, d + L);
        } else {
            float[] t = new float[6 * COLS];
            c00.intoArray(t, 0); c01.intoArray(t, L);
            c10.intoArray(t, COLS); c11.intoArray(t, COLS + L);
            c20.intoArray(t, 2 * COLS); c21.intoArray(t, 2 * COLS + L);
            c30.intoArray(t, 3 * COLS); c31.intoArray(t, 3 * COLS + L);
            c40.intoArray(t, 4 * COLS); c41.intoArray(t, 4 * COLS + L);
            c50.intoArray(t, 5 * COLS); c51.intoArray(t, 5 * COLS + L);
            addPartial(t, 6, dw, o, col, in);
        }
    }

    private static void kernel1(float[] dyt, float[] xp, int T, int o, int p, int in, float[] dw) {
        int a0 = o * T;
        int b = p * T * COLS;
        FloatVector c0 = FloatVector.zero(S), c1 = c0;
        for (int t = 0; t < T; t++, b += COLS) {
            FloatVector a = FloatVector.broadcast(S, dyt[a0 + t]);
            c0 = a.fma(FloatVector.fromArray(S, xp, b), c0);
            c1 = a.fma(FloatVector.fromArray(S, xp, b + L), c1);
        }
        float[] t = new float[COLS];
        c0.intoArray(t, 0);
        c1.intoArray(t, L);
        addPartial(t, 1, dw, o, p * COLS, in);
    }

    /** Adds a tile's columns that exist (the last panel is zero-padded past in). */
    private static void addPartial(float[] tile, int rows, float[] dw, int o, int col, int in) {
        int valid = Math.min(COLS, in - col);
        for (int r = 0; r < rows; r++) {
            int d = (o + r) * in + col;
            for (int j = 0; j < valid; j++) dw[d + j] += tile[r * COLS + j];
        }
    }
}
