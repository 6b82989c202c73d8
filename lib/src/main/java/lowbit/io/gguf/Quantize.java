package lowbit.io.gguf;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * Float rows into ggml's block formats, byte for byte as llama.cpp's {@code ggml_quantize_chunk} (what
 * llama-quantize calls): without an importance vector the {@code quantize_row_*_ref} routines, with one the
 * importance-weighted {@code quantize_*_impl} routines of ggml-quants.c. Every float operation is done in
 * float and in ggml's order, because the searches below compare errors that differ in the last bit; the
 * reference is ggml built for plain x86-64 (no FMA contraction), which is what the golden fixtures come from.
 *
 * <p>Rows are independent (ggml's importance-weighted routines work row by row, and the reference routines
 * never look across a block), so rows are spread over threads and the bytes do not depend on the count.
 */
public final class Quantize {
    private Quantize() {}

    private static final int QK_K = 256;
    /** ggml's GROUP_MAX_EPS: a group whose largest magnitude is below this is stored as zeros. */
    private static final float GROUP_MAX_EPS = 1e-15f;
    /** Elements per parallel work item, so that short rows are batched and long tensors spread over cores. */
    private static final int ELEMENTS_PER_TASK = 1 << 16;

    private static final Set<GgmlType> QUANTIZABLE = EnumSet.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16,
            GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1,
            GgmlType.Q2_K, GgmlType.Q3_K, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);

    /** Whether {@link #quantize} can produce this type. */
    public static boolean isQuantizable(GgmlType type) {
        return type != null && QUANTIZABLE.contains(type);
    }

    /** Whether rows of this length are a whole number of the type's blocks. */
    public static boolean fits(GgmlType type, int rowLength) {
        return rowLength > 0 && rowLength % type.blockSize == 0;
    }

    /**
     * Quantizes {@code rows} rows of {@code rowLength} floats (row-major) into {@code type}'s blocks, rows one
     * after the other, as ggml_quantize_chunk does. {@code importance} (one weight per column, llama.cpp's
     * imatrix: the mean of x² per input column) selects the importance-weighted routines; it may be null, and
     * F32, F16, BF16 and Q8_0 ignore it as ggml does.
     */
    public static byte[] quantize(GgmlType type, float[] x, int rows, int rowLength, float[] importance) {
        if (!isQuantizable(type))
            throw new IllegalArgumentException("cannot quantize to " + type + " (quantizable: " + quantizableNames() + ")");
        if (rows < 0 || rowLength <= 0)
            throw new IllegalArgumentException("cannot quantize " + rows + " rows of length " + rowLength + " to " + type);
        if (!fits(type, rowLength))
            throw new IllegalArgumentException("row length " + rowLength + " is not a multiple of " + type
                    + "'s block size " + type.blockSize);
        if ((long) rows * rowLength != x.length)
            throw new IllegalArgumentException("expected " + rows + " x " + rowLength + " = " + (long) rows * rowLength
                    + " floats to quantize to " + type + ", got " + x.length);
        if (importance != null && importance.length != rowLength)
            throw new IllegalArgumentException("importance vector has " + importance.length
                    + " weights, expected one per column (" + rowLength + ") for " + type);
        long rowBytesLong = type.byteSize(rowLength);
        if (rowBytesLong * rows > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("a " + rows + " x " + rowLength + " " + type + " tensor does not fit in one array");
        int rowBytes = (int) rowBytesLong;
        byte[] out = new byte[rowBytes * rows];
        float[] qw = usesImportance(type) ? importance : null;
        int rowsPerTask = Math.max(1, ELEMENTS_PER_TASK / rowLength);
        int tasks = (rows + rowsPerTask - 1) / rowsPerTask;
        IntStream.range(0, tasks).parallel().forEach(t -> {
            Scratch s = new Scratch();
            for (int r = t * rowsPerTask, end = Math.min(rows, r + rowsPerTask); r < end; r++)
                row(type, x, r * rowLength, rowLength, qw, out, r * rowBytes, s);
        });
        return out;
    }

    private static boolean usesImportance(GgmlType type) {
        return switch (type) {
            case F32, F16, BF16, Q8_0 -> false;
            default -> true;
        };
    }

    private static String quantizableNames() {
        return QUANTIZABLE.stream().map(Enum::name).collect(Collectors.joining(", "));
    }

    /** Work arrays of one thread, sized for the largest block, so the per-block loops allocate nothing. */
    private static final class Scratch {
        final int[] l = new int[QK_K];
        final int[] laux = new int[32];
        final float[] weights = new float[32];
        final float[] scales = new float[QK_K / 16];
        final float[] mins = new float[QK_K / 16];
        final float[] sw = new float[QK_K / 16];
        final int[] ls = new int[QK_K / 16];
        final int[] lm = new int[QK_K / 16];
        /** make_qkx*_quants' second result (its the_min out-parameter). */
        float min;
    }

    /** One row of n floats at x[xo..] into y[yo..]; y is still all zeros there (ggml's OR-ed bit fields rely on it). */
    private static void row(GgmlType type, float[] x, int xo, int n, float[] qw, byte[] y, int yo, Scratch s) {
        switch (type) {
            case F32 -> { for (int i = 0; i < n; i++) putInt(y, yo + 4 * i, Float.floatToRawIntBits(x[xo + i])); }
            case F16 -> { for (int i = 0; i < n; i++) putHalf(y, yo + 2 * i, x[xo + i]); }
            case BF16 -> { for (int i = 0; i < n; i++) putShort(y, yo + 2 * i, bf16(x[xo + i])); }
            case Q8_0 -> { for (int b = 0; b < n / 32; b++) q8_0(x, xo + 32 * b, y, yo + 34 * b); }
            case Q4_0 -> { if (qw == null) for (int b = 0; b < n / 32; b++) q4_0(x, xo + 32 * b, y, yo + 18 * b); else q4_0(x, xo, n, qw, y, yo, s); }
            case Q4_1 -> { if (qw == null) for (int b = 0; b < n / 32; b++) q4_1(x, xo + 32 * b, y, yo + 20 * b); else q4_1(x, xo, n, qw, y, yo, s); }
            case Q5_0 -> { if (qw == null) for (int b = 0; b < n / 32; b++) q5_0(x, xo + 32 * b, y, yo + 22 * b); else q5_0(x, xo, n, qw, y, yo, s); }
            case Q5_1 -> { if (qw == null) for (int b = 0; b < n / 32; b++) q5_1(x, xo + 32 * b, y, yo + 24 * b); else q5_1(x, xo, n, qw, y, yo, s); }
            case Q2_K -> { for (int b = 0; b < n / QK_K; b++) q2_k(x, xo + QK_K * b, qw, QK_K * b, y, yo + 84 * b, s); }
            case Q3_K -> { for (int b = 0; b < n / QK_K; b++) q3_k(x, xo + QK_K * b, qw, QK_K * b, y, yo + 110 * b, s); }
            case Q4_K -> { for (int b = 0; b < n / QK_K; b++) q4_k(x, xo + QK_K * b, qw, QK_K * b, y, yo + 144 * b, s); }
            case Q5_K -> { for (int b = 0; b < n / QK_K; b++) q5_k(x, xo + QK_K * b, qw, QK_K * b, y, yo + 176 * b, s); }
            case Q6_K -> { for (int b = 0; b < n / QK_K; b++) q6_k(x, xo + QK_K * b, qw, QK_K * b, y, yo + 210 * b, s); }
            default -> throw new IllegalArgumentException("cannot quantize to " + type);
        }
    }

    // ---------------------------------------------------------------- 32-element blocks, reference routines

    // quantize_row_q8_0_ref: d = amax/127, q = roundf(x/d)
    private static void q8_0(float[] x, int xo, byte[] y, int yo) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(x[xo + j]));
        float d = amax / 127;
        float id = d != 0 ? 1.0f / d : 0.0f;
        putHalf(y, yo, d);
        for (int j = 0; j < 32; j++) y[yo + 2 + j] = (byte) (int) roundf(x[xo + j] * id);
    }

    // quantize_row_q4_0_ref: the signed value of largest magnitude maps to -8; truncation after +8.5 rounds
    private static void q4_0(float[] x, int xo, byte[] y, int yo) {
        float max = signedAbsMax(x, xo, 32);
        float d = max / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        putHalf(y, yo, d);
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(15, (byte) (int) (x[xo + j] * id + 8.5f)) & 0xFF;
            int xi1 = Math.min(15, (byte) (int) (x[xo + 16 + j] * id + 8.5f)) & 0xFF;
            y[yo + 2 + j] = (byte) (xi0 | xi1 << 4);
        }
    }

    // quantize_row_q4_1_ref: x = d*q + m with m the block minimum and d spanning to the maximum
    private static void q4_1(float[] x, int xo, byte[] y, int yo) {
        float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
        for (int j = 0; j < 32; j++) {
            float v = x[xo + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        float d = (max - min) / 15;
        float id = d != 0 ? 1.0f / d : 0.0f;
        putHalf(y, yo, d);
        putHalf(y, yo + 2, min);
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(15, (byte) (int) ((x[xo + j] - min) * id + 0.5f)) & 0xFF;
            int xi1 = Math.min(15, (byte) (int) ((x[xo + 16 + j] - min) * id + 0.5f)) & 0xFF;
            y[yo + 4 + j] = (byte) (xi0 | xi1 << 4);
        }
    }

    // quantize_row_q5_0_ref: as q4_0 with 32 levels; the fifth bits go to a little-endian uint32 qh
    private static void q5_0(float[] x, int xo, byte[] y, int yo) {
        float max = signedAbsMax(x, xo, 32);
        float d = max / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        putHalf(y, yo, d);
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int xi0 = Math.min(31, (byte) (int) (x[xo + j] * id + 16.5f)) & 0xFF;
            int xi1 = Math.min(31, (byte) (int) (x[xo + 16 + j] * id + 16.5f)) & 0xFF;
            y[yo + 6 + j] = (byte) ((xi0 & 0x0F) | (xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10) >>> 4) << j;
            qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
        }
        putInt(y, yo + 2, qh);
    }

    // quantize_row_q5_1_ref: as q4_1 with 32 levels (and, as in ggml, no clamp at 31)
    private static void q5_1(float[] x, int xo, byte[] y, int yo) {
        float min = Float.MAX_VALUE, max = -Float.MAX_VALUE;
        for (int j = 0; j < 32; j++) {
            float v = x[xo + j];
            if (v < min) min = v;
            if (v > max) max = v;
        }
        float d = (max - min) / 31;
        float id = d != 0 ? 1.0f / d : 0.0f;
        putHalf(y, yo, d);
        putHalf(y, yo + 2, min);
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int xi0 = (int) ((x[xo + j] - min) * id + 0.5f) & 0xFF;
            int xi1 = (int) ((x[xo + 16 + j] - min) * id + 0.5f) & 0xFF;
            y[yo + 8 + j] = (byte) ((xi0 & 0x0F) | (xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10) >>> 4) << j;
            qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
        }
        putInt(y, yo + 4, qh);
    }

    /** The element of largest magnitude with its sign (the first one on ties), as the q4_0/q5_0 routines find it. */
    private static float signedAbsMax(float[] x, int xo, int n) {
        float amax = 0, max = 0;
        for (int j = 0; j < n; j++) {
            float v = x[xo + j];
            if (amax < Math.abs(v)) {
                amax = Math.abs(v);
                max = v;
            }
        }
        return max;
    }

    // ---------------------------------------------------------------- 32-element blocks, importance-weighted

    /** ggml's per-element weight of the importance routines: importance * sqrt(sigma² + x²), sigma² over the row. */
    private static void rowWeights(float[] x, int xo, float[] qw, int qwo, float sigma2, float[] w, int n) {
        for (int j = 0; j < n; j++) w[j] = qw[qwo + j] * sqrtf(sigma2 + x[xo + j] * x[xo + j]);
    }

    private static float meanSquare(float[] x, int xo, int n) {
        float sum = 0;
        for (int j = 0; j < n; j++) sum += x[xo + j] * x[xo + j];
        return sum / n;
    }

    // quantize_row_q4_0_impl
    private static void q4_0(float[] x, int xo, int n, float[] qw, byte[] y, int yo, Scratch s) {
        float sigma2 = meanSquare(x, xo, n);
        int[] l = s.l;
        for (int b = 0; b < n / 32; b++) {
            int xb = xo + 32 * b, o = yo + 18 * b;
            rowWeights(x, xb, qw, 32 * b, sigma2, s.weights, 32);
            float d = makeQx(32, 8, x, xb, l, 0, s.weights, 0);
            putHalf(y, o, d);
            for (int j = 0; j < 16; j++) y[o + 2 + j] = (byte) (l[j] | l[j + 16] << 4);
        }
    }

    // quantize_row_q4_1_impl
    private static void q4_1(float[] x, int xo, int n, float[] qw, byte[] y, int yo, Scratch s) {
        float sigma2 = meanSquare(x, xo, n);
        int[] l = s.l;
        for (int b = 0; b < n / 32; b++) {
            int xb = xo + 32 * b, o = yo + 20 * b;
            rowWeights(x, xb, qw, 32 * b, sigma2, s.weights, 32);
            float d = makeQkx(32, 15, x, xb, s.weights, l, 0, s, -0.9f, 0.05f, 36, false);
            putHalf(y, o, d);
            putHalf(y, o + 2, -s.min);
            for (int j = 0; j < 16; j++) y[o + 4 + j] = (byte) (l[j] | l[j + 16] << 4);
        }
    }

    // quantize_row_q5_0_impl
    private static void q5_0(float[] x, int xo, int n, float[] qw, byte[] y, int yo, Scratch s) {
        float sigma2 = meanSquare(x, xo, n);
        int[] l = s.l;
        for (int b = 0; b < n / 32; b++) {
            int xb = xo + 32 * b, o = yo + 22 * b;
            rowWeights(x, xb, qw, 32 * b, sigma2, s.weights, 32);
            float d = makeQx(32, 16, x, xb, l, 0, s.weights, 0);
            putHalf(y, o, d);
            putInt(y, o + 2, packQ5(l, y, o + 6));
        }
    }

    // quantize_row_q5_1_impl
    private static void q5_1(float[] x, int xo, int n, float[] qw, byte[] y, int yo, Scratch s) {
        float sigma2 = meanSquare(x, xo, n);
        int[] l = s.l;
        for (int b = 0; b < n / 32; b++) {
            int xb = xo + 32 * b, o = yo + 24 * b;
            rowWeights(x, xb, qw, 32 * b, sigma2, s.weights, 32);
            float d = makeQkx(32, 31, x, xb, s.weights, l, 0, s, -0.9f, 0.05f, 36, false);
            putHalf(y, o, d);
            putHalf(y, o + 2, -s.min);
            putInt(y, o + 4, packQ5(l, y, o + 8));
        }
    }

    /** Low nibbles of 32 five-bit codes into qs (element j and j+16 share a byte); returns the fifth bits as qh. */
    private static int packQ5(int[] l, byte[] y, int qs) {
        int qh = 0;
        for (int j = 0; j < 16; j++) {
            int xi0 = l[j] & 0xFF, xi1 = l[j + 16] & 0xFF;
            y[qs + j] = (byte) ((xi0 & 0x0F) | (xi1 & 0x0F) << 4);
            qh |= ((xi0 & 0x10) >>> 4) << j;
            qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
        }
        return qh;
    }

    // ---------------------------------------------------------------- K-quants (256-element super-blocks)

    // block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: 16 groups of 16, 4-bit scale and min each
    private static void q2_k(float[] x, int xo, float[] qw, int qwo, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        float[] scales = s.scales, mins = s.mins, w = s.weights;
        int sc = yo, qs = yo + 16;
        float dm, mm;
        if (qw == null) { // quantize_row_q2_K_ref
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 16; j++) {
                for (int i = 0; i < 16; i++) w[i] = Math.abs(x[xo + 16 * j + i]);
                scales[j] = makeQkx(16, 3, x, xo + 16 * j, w, l, 16 * j, s, -0.5f, 0.1f, 15, true);
                mins[j] = s.min;
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            if (maxScale > 0) {
                float iscale = 15f / maxScale;
                for (int j = 0; j < 16; j++) y[sc + j] = (byte) nearestInt(iscale * scales[j]);
                putHalf(y, yo + 80, maxScale / 15f);
            } else {
                putHalf(y, yo + 80, 0f);
            }
            if (maxMin > 0) {
                float iscale = 15f / maxMin;
                for (int j = 0; j < 16; j++) y[sc + j] |= (byte) (nearestInt(iscale * mins[j]) << 4);
                putHalf(y, yo + 82, maxMin / 15f);
            } else {
                putHalf(y, yo + 82, 0f);
            }
        } else { // quantize_row_q2_K_impl
            float sigma2 = meanSquare(x, xo, QK_K);
            for (int j = 0; j < 16; j++) {
                rowWeights(x, xo + 16 * j, qw, qwo + 16 * j, sigma2, w, 16);
                float sum = 0;
                for (int i = 0; i < 16; i++) sum += w[i];
                s.sw[j] = sum;
                scales[j] = makeQkx(16, 3, x, xo + 16 * j, w, l, 16 * j, s, -0.9f, 0.05f, 36, false);
                mins[j] = s.min;
            }
            dm = makeQp(16, 15, scales, s.ls, s.sw);
            mm = makeQp(16, 15, mins, s.lm, s.sw);
            putHalf(y, yo + 80, dm);
            putHalf(y, yo + 82, mm);
            for (int j = 0; j < 16; j++) y[sc + j] = (byte) (s.ls[j] | s.lm[j] << 4);
        }
        dm = Dequantize.half(y, yo + 80);
        mm = Dequantize.half(y, yo + 82);
        for (int j = 0; j < 16; j++) {
            int scale = y[sc + j] & 0xFF;
            float d = dm * (scale & 0x0F);
            if (d == 0) continue;
            float m = mm * (scale >>> 4);
            for (int i = 0; i < 16; i++) l[16 * j + i] = clamp(nearestInt((x[xo + 16 * j + i] + m) / d), 0, 3);
        }
        pack2Bits(l, y, qs);
    }

    /** 256 two-bit codes into 64 bytes: in each 128-element half, byte l holds elements l, l+32, l+64, l+96. */
    private static void pack2Bits(int[] l, byte[] y, int qs) {
        for (int j = 0; j < QK_K; j += 128)
            for (int i = 0; i < 32; i++)
                y[qs + j / 4 + i] = (byte) (l[j + i] | l[j + i + 32] << 2 | l[j + i + 64] << 4 | l[j + i + 96] << 6);
    }

    // block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: 16 groups of 16 with signed 6-bit scales
    private static void q3_k(float[] x, int xo, float[] qw, int qwo, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        float[] scales = s.scales, w = s.weights;
        int hmask = yo, qs = yo + 32, sc = yo + 96, dAt = yo + 108;
        if (qw == null) { // quantize_row_q3_K_ref
            float maxScale = 0, amax = 0;
            for (int j = 0; j < 16; j++) {
                scales[j] = makeQ3(16, 4, x, xo + 16 * j, l, 16 * j);
                float scale = Math.abs(scales[j]);
                if (scale > amax) {
                    amax = scale;
                    maxScale = scales[j];
                }
            }
            if (maxScale != 0) {
                float iscale = -32f / maxScale;
                for (int j = 0; j < 16; j++) {
                    int q = (byte) nearestInt(iscale * scales[j]);
                    putScaleQ3(y, sc, j, clamp(q, -32, 31) + 32);
                }
                putHalf(y, dAt, 1 / iscale);
            } else {
                putHalf(y, dAt, 0f);
            }
        } else { // quantize_row_q3_K_impl
            float sigma2 = 2 * sumSquares(x, xo, QK_K) / QK_K;
            for (int j = 0; j < 16; j++) {
                rowWeights(x, xo + 16 * j, qw, qwo + 16 * j, sigma2, w, 16);
                float sum = 0;
                for (int i = 0; i < 16; i++) sum += w[i];
                s.sw[j] = sum;
                scales[j] = makeQx(16, 4, x, xo + 16 * j, l, 16 * j, w, 0);
            }
            float dBlock = makeQx(16, 32, scales, 0, s.ls, 0, s.sw, 0);
            for (int j = 0; j < 16; j++) putScaleQ3(y, sc, j, s.ls[j]);
            putHalf(y, dAt, dBlock);
        }
        float dAll = Dequantize.half(y, dAt);
        for (int j = 0; j < 16; j++) {
            float d = dAll * Dequantize.scaleQ3K(y, sc, j);
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) l[16 * j + i] = clamp(nearestInt(x[xo + 16 * j + i] / d), -4, 3) + 4;
        }
        // the third bit of element j goes to bit j/32 of hmask byte j%32; the low two bits are packed like Q2_K's
        for (int j = 0; j < QK_K; j++) {
            if (l[j] > 3) {
                y[hmask + j % 32] |= (byte) (1 << (j / 32));
                l[j] -= 4;
            }
        }
        pack2Bits(l, y, qs);
    }

    /** Group j's 6-bit scale code q: low nibble in byte j (j < 8) or in byte j-8's high nibble, top two bits in byte 8 + j%4. */
    private static void putScaleQ3(byte[] y, int sc, int j, int q) {
        if (j < 8) y[sc + j] = (byte) (q & 0x0F);
        else y[sc + j - 8] |= (byte) ((q & 0x0F) << 4);
        y[sc + 8 + j % 4] |= (byte) ((q >> 4) << (2 * (j / 4)));
    }

    // block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 groups of 32, 6-bit scale and min each
    private static void q4_k(float[] x, int xo, float[] qw, int qwo, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        groupsK(x, xo, qw, qwo, 15, y, yo, s);
        for (int j = 0, q = yo + 16; j < QK_K; j += 64, q += 32)
            for (int i = 0; i < 32; i++) y[q + i] = (byte) (l[j + i] | l[j + i + 32] << 4);
    }

    // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }
    private static void q5_k(float[] x, int xo, float[] qw, int qwo, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        groupsK(x, xo, qw, qwo, 31, y, yo, s);
        int qh = yo + 16, ql = yo + 48;
        int m1 = 1, m2 = 2;
        for (int n = 0; n < QK_K; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
            for (int j = 0; j < 32; j++) {
                int l1 = l[n + j], l2 = l[n + j + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    y[qh + j] |= (byte) m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    y[qh + j] |= (byte) m2;
                }
                y[ql + j] = (byte) (l1 | l2 << 4);
            }
        }
    }

    /**
     * The part Q4_K and Q5_K share (nmax 15 or 31): each group of 32 gets a scale and a min by make_qkx2_quants
     * (reference) or make_qkx3_quants (importance), those are coded on 6 bits under the super-block's d and
     * dmin, and the codes are recomputed against the coded scales into s.l.
     */
    private static void groupsK(float[] x, int xo, float[] qw, int qwo, int nmax, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        float[] scales = s.scales, mins = s.mins, w = s.weights;
        int sc = yo + 4;
        if (qw == null) { // quantize_row_q4_K_ref / quantize_row_q5_K_ref
            float maxScale = 0, maxMin = 0;
            for (int j = 0; j < 8; j++) {
                float avX = sqrtf(sumSquares(x, xo + 32 * j, 32) / 32);
                for (int i = 0; i < 32; i++) w[i] = avX + Math.abs(x[xo + 32 * j + i]);
                scales[j] = nmax == 15
                        ? makeQkx(32, 15, x, xo + 32 * j, w, l, 32 * j, s, -1f, 0.1f, 20, false)
                        : makeQkx(32, 31, x, xo + 32 * j, w, l, 32 * j, s, -0.5f, 0.1f, 15, false);
                mins[j] = s.min;
                if (scales[j] > maxScale) maxScale = scales[j];
                if (mins[j] > maxMin) maxMin = mins[j];
            }
            float invScale = maxScale > 0 ? 63f / maxScale : 0f;
            float invMin = maxMin > 0 ? 63f / maxMin : 0f;
            for (int j = 0; j < 8; j++) {
                int ls = Math.min(63, nearestInt(invScale * scales[j]) & 0xFF);
                int lm = Math.min(63, nearestInt(invMin * mins[j]) & 0xFF);
                putScaleMinK4(y, sc, j, ls, lm);
            }
            putHalf(y, yo, maxScale / 63f);
            putHalf(y, yo + 2, maxMin / 63f);
        } else { // quantize_row_q4_K_impl / quantize_row_q5_K_impl
            float sigma2 = 2 * sumSquares(x, xo, QK_K) / QK_K;
            for (int j = 0; j < 8; j++) {
                rowWeights(x, xo + 32 * j, qw, qwo + 32 * j, sigma2, w, 32);
                float sum = 0;
                for (int i = 0; i < 32; i++) sum += w[i];
                s.sw[j] = sum;
                scales[j] = makeQkx(32, nmax, x, xo + 32 * j, w, l, 32 * j, s, -0.9f, 0.05f, 36, false);
                mins[j] = s.min;
            }
            float dBlock = makeQp(8, 63, scales, s.ls, s.sw);
            float mBlock = makeQp(8, 63, mins, s.lm, s.sw);
            for (int j = 0; j < 8; j++) {
                // Q5_K clamps the codes to 63; Q4_K stores them as they are (they only exceed 63 for negative scales)
                int ls = nmax == 31 ? Math.min(63, s.ls[j]) : s.ls[j];
                int lm = nmax == 31 ? Math.min(63, s.lm[j]) : s.lm[j];
                putScaleMinK4(y, sc, j, ls, lm);
            }
            putHalf(y, yo, dBlock);
            putHalf(y, yo + 2, mBlock);
        }
        float dAll = Dequantize.half(y, yo), minAll = Dequantize.half(y, yo + 2);
        for (int j = 0; j < 8; j++) {
            float d = dAll * Dequantize.scaleK4(y, sc, j);
            if (d == 0) continue;
            float dm = minAll * Dequantize.minK4(y, sc, j);
            for (int i = 0; i < 32; i++) l[32 * j + i] = clamp(nearestInt((x[xo + 32 * j + i] + dm) / d), 0, nmax);
        }
    }

    /** Inverse of get_scale_min_k4 for group j (groups 0..3 come first, 4..7 OR their top bits into bytes 0..7). */
    private static void putScaleMinK4(byte[] y, int sc, int j, int ls, int lm) {
        if (j < 4) {
            y[sc + j] = (byte) ls;
            y[sc + j + 4] = (byte) lm;
        } else {
            y[sc + j + 4] = (byte) ((ls & 0x0F) | (lm & 0x0F) << 4);
            y[sc + j - 4] |= (byte) ((ls >> 4) << 6);
            y[sc + j] |= (byte) ((lm >> 4) << 6);
        }
    }

    // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 16 groups of 16, signed 8-bit scales
    private static void q6_k(float[] x, int xo, float[] qw, int qwo, byte[] y, int yo, Scratch s) {
        int[] l = s.l;
        float[] scales = s.scales;
        int sc = yo + 192, dAt = yo + 208;
        float maxScale = 0, maxAbsScale = 0;
        for (int b = 0; b < 16; b++) {
            // the importance routine passes the raw importance as weights (ggml's sigma² weighting is commented out)
            float scale = makeQx(16, 32, x, xo + 16 * b, l, 16 * b, qw, qwo + 16 * b);
            scales[b] = scale;
            float abs = Math.abs(scale);
            if (abs > maxAbsScale) {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        if (maxAbsScale < GROUP_MAX_EPS) return; // the block stays all zeros, d = 0 included
        float iscale = -128f / maxScale;
        putHalf(y, dAt, 1 / iscale);
        for (int b = 0; b < 16; b++) y[sc + b] = (byte) Math.min(127, nearestInt(iscale * scales[b]));
        float dAll = Dequantize.half(y, dAt);
        for (int j = 0; j < 16; j++) {
            float d = dAll * y[sc + j];
            if (d == 0) continue;
            for (int i = 0; i < 16; i++) l[16 * j + i] = clamp(nearestInt(x[xo + 16 * j + i] / d), -32, 31) + 32;
        }
        int ql = yo, qh = yo + 128;
        for (int j = 0; j < QK_K; j += 128, ql += 64, qh += 32) {
            for (int i = 0; i < 32; i++) {
                int q1 = l[j + i], q2 = l[j + i + 32], q3 = l[j + i + 64], q4 = l[j + i + 96];
                y[ql + i] = (byte) ((q1 & 0x0F) | (q3 & 0x0F) << 4);
                y[ql + i + 32] = (byte) ((q2 & 0x0F) | (q4 & 0x0F) << 4);
                y[qh + i] = (byte) ((q1 >> 4) | (q2 >> 4) << 2 | (q3 >> 4) << 4 | (q4 >> 4) << 6);
            }
        }
    }

    // ---------------------------------------------------------------- ggml's scale searches

    /**
     * make_qx_quants with rmse_type 1: symmetric codes l in [-nmax, nmax) stored as l + nmax into L, the scale
     * chosen among 19 trial inverse scales by weighted least squares; weights qw, or x² when qw is null.
     */
    static float makeQx(int n, int nmax, float[] x, int xo, int[] L, int lo, float[] qw, int qwo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            Arrays.fill(L, lo, lo + n, 0);
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            float xi = x[xo + i];
            int l = clamp(nearestInt(iscale * xi), -nmax, nmax - 1);
            L[lo + i] = l + nmax;
            float w = qw != null ? qw[qwo + i] : xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
        float best = scale * sumlx;
        for (int is = -9; is <= 9; is++) {
            if (is == 0) continue;
            iscale = -(nmax + 0.1f * is) / max;
            sumlx = suml2 = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xo + i];
                int l = clamp(nearestInt(iscale * xi), -nmax, nmax - 1);
                float w = qw != null ? qw[qwo + i] : xi * xi;
                sumlx += w * xi * l;
                suml2 += w * l * l;
            }
            if (suml2 > 0 && sumlx * sumlx > best * suml2) {
                for (int i = 0; i < n; i++) L[lo + i] = nmax + clamp(nearestInt(iscale * x[xo + i]), -nmax, nmax - 1);
                scale = sumlx / suml2;
                best = scale * sumlx;
            }
        }
        return scale;
    }

    /**
     * make_q3_quants with do_rmse: codes in [-nmax, nmax) refined one element at a time (5 sweeps at most) to
     * raise the x²-weighted fit, stored plus nmax into L; returns the least-squares scale.
     */
    private static float makeQ3(int n, int nmax, float[] x, int xo, int[] L, int lo) {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++) {
            float ax = Math.abs(x[xo + i]);
            if (ax > amax) {
                amax = ax;
                max = x[xo + i];
            }
        }
        if (amax < GROUP_MAX_EPS) {
            Arrays.fill(L, lo, lo + n, 0);
            return 0f;
        }
        float iscale = -nmax / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            float xi = x[xo + i];
            int l = clamp(nearestInt(iscale * xi), -nmax, nmax - 1);
            L[lo + i] = l;
            float w = xi * xi;
            sumlx += w * xi * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xo + i];
                float w = xi * xi;
                int li = L[lo + i];
                float slx = sumlx - w * xi * li;
                if (slx > 0) {
                    float sl2 = suml2 - w * li * li;
                    int newL = clamp(nearestInt(xi * sl2 / slx), -nmax, nmax - 1);
                    if (newL != li) {
                        slx += w * xi * newL;
                        sl2 += w * newL * newL;
                        if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[lo + i] = newL;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        for (int i = 0; i < n; i++) L[lo + i] += nmax;
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    /**
     * make_qkx2_quants and make_qkx3_quants (identical once weights are given): asymmetric codes in [0, nmax]
     * for x = scale*L + min with min <= 0, searched over nstep+1 trial inverse scales by weighted least squares
     * (absolute error when useMad). Returns the scale; s.min receives -min, ggml's the_min.
     */
    private static float makeQkx(int n, int nmax, float[] x, int xo, float[] weights, int[] L, int lo, Scratch s,
            float rmin, float rdelta, int nstep, boolean useMad) {
        int[] laux = s.laux;
        float min = x[xo], max = x[xo];
        float sumW = weights[0];
        float sumX = sumW * x[xo];
        for (int i = 1; i < n; i++) {
            float xi = x[xo + i];
            if (xi < min) min = xi;
            if (xi > max) max = xi;
            float w = weights[i];
            sumW += w;
            sumX += w * xi;
        }
        if (min > 0) min = 0;
        if (max <= min) {
            Arrays.fill(L, lo, lo + n, 0);
            s.min = -min;
            return 0f;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++) {
            int l = clamp(nearestInt(iscale * (x[xo + i] - min)), 0, nmax);
            L[lo + i] = l;
            float diff = scale * l + min - x[xo + i];
            diff = useMad ? Math.abs(diff) : diff * diff;
            bestError += weights[i] * diff;
        }
        for (int is = 0; is <= nstep; is++) {
            iscale = (rmin + rdelta * is + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++) {
                float xi = x[xo + i];
                int l = clamp(nearestInt(iscale * (xi - min)), 0, nmax);
                laux[i] = l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * xi;
            }
            float det = sumW * sumL2 - sumL * sumL;
            if (det > 0) {
                float thisScale = (sumW * sumXL - sumX * sumL) / det;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / det;
                if (thisMin > 0) {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++) {
                    float diff = thisScale * laux[i] + thisMin - x[xo + i];
                    diff = useMad ? Math.abs(diff) : diff * diff;
                    error += weights[i] * diff;
                }
                if (error < bestError) {
                    System.arraycopy(laux, 0, L, lo, n);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        s.min = -min;
        return scale;
    }

    /**
     * make_qp_quants: non-negative codes in [0, nmax] for the group scales (or mins) of a super-block, weighted
     * by the groups' weight sums. L is ggml's uint8 array: a negative code wraps as it does there.
     */
    private static float makeQp(int n, int nmax, float[] x, int[] L, float[] qw) {
        float max = 0;
        for (int i = 0; i < n; i++) max = max > x[i] ? max : x[i];
        if (max < GROUP_MAX_EPS) {
            Arrays.fill(L, 0, n, 0);
            return 0f;
        }
        float iscale = nmax / max;
        for (int i = 0; i < n; i++) L[i] = nearestInt(iscale * x[i]) & 0xFF;
        float scale = 1 / iscale;
        float bestMse = 0;
        for (int i = 0; i < n; i++) {
            float diff = x[i] - scale * L[i];
            bestMse += qw[i] * diff * diff;
        }
        for (int is = -4; is <= 4; is++) {
            if (is == 0) continue;
            float iscaleIs = (0.1f * is + nmax) / max;
            float scaleIs = 1 / iscaleIs;
            float mse = 0;
            for (int i = 0; i < n; i++) {
                int l = Math.min(nmax, nearestInt(iscaleIs * x[i]));
                float diff = x[i] - scaleIs * l;
                mse += qw[i] * diff * diff;
            }
            if (mse < bestMse) {
                bestMse = mse;
                iscale = iscaleIs;
            }
        }
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = Math.min(nmax, nearestInt(iscale * x[i]));
            L[i] = l & 0xFF;
            float w = qw[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        for (int itry = 0; itry < 5; itry++) {
            int changed = 0;
            for (int i = 0; i < n; i++) {
                float w = qw[i];
                int li = L[i];
                float slx = sumlx - w * x[i] * li;
                float sl2 = suml2 - w * li * li;
                if (slx > 0 && sl2 > 0) {
                    int newL = Math.min(nmax, nearestInt(x[i] * sl2 / slx));
                    if (newL != li) {
                        slx += w * x[i] * newL;
                        sl2 += w * newL * newL;
                        if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                            L[i] = newL & 0xFF;
                            sumlx = slx;
                            suml2 = sl2;
                            changed++;
                        }
                    }
                }
            }
            if (changed == 0) break;
        }
        return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
    }

    // ---------------------------------------------------------------- ggml's scalar helpers

    /**
     * ggml's nearest_int: adding 1.5*2^23 leaves the integer in the low mantissa bits, rounded half to even.
     * Kept bit for bit (not Math.rint) because beyond ±2^22, where ggml does not guard, it wraps the same way.
     */
    static int nearestInt(float f) {
        int i = Float.floatToRawIntBits(f + 12582912.f);
        return (i & 0x007fffff) - 0x00400000;
    }

    /** C's roundf: halves away from zero (Math.round rounds them up). */
    private static float roundf(float v) {
        return (float) Math.copySign(Math.floor(Math.abs((double) v) + 0.5), v);
    }

    /** sqrtf: the double square root of a float rounds to the correctly rounded float result. */
    private static float sqrtf(float v) {
        return (float) Math.sqrt(v);
    }

    private static float sumSquares(float[] x, int xo, int n) {
        float sum = 0;
        for (int j = 0; j < n; j++) sum += x[xo + j] * x[xo + j];
        return sum;
    }

    private static int clamp(int v, int lo, int hi) {
        return Math.max(lo, Math.min(hi, v));
    }

    /** GGML_FP32_TO_FP16: round to nearest even; every NaN becomes the quiet NaN 0x7E00 with its sign. */
    static short fp16(float f) {
        if (Float.isNaN(f)) return (short) ((Float.floatToRawIntBits(f) >>> 16 & 0x8000) | 0x7E00);
        return Float.floatToFloat16(f);
    }

    /** GGML_FP32_TO_BF16: the top half of the float rounded to nearest even; a NaN is truncated and made quiet. */
    static short bf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (short) ((u >>> 16) | 64);
        return (short) ((u + (0x7fff + ((u >>> 16) & 1))) >>> 16);
    }

    private static void putHalf(byte[] y, int o, float f) {
        putShort(y, o, fp16(f));
    }

    private static void putShort(byte[] y, int o, short v) {
        y[o] = (byte) v;
        y[o + 1] = (byte) (v >> 8);
    }

    private static void putInt(byte[] y, int o, int v) {
        y[o] = (byte) v;
        y[o + 1] = (byte) (v >> 8);
        y[o + 2] = (byte) (v >> 16);
        y[o + 3] = (byte) (v >> 24);
    }
}
