package lowbit.model.cuda;

import lowbit.cuda.DenseLinearGpuTest;
import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.GpuAvailable;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ModelConfig;
import lowbit.model.RotaryTables;
import lowbit.model.Transformer;
import lowbit.tensor.Attention;
import lowbit.tensor.Parallel;
import lowbit.tensor.RmsNorm;
import lowbit.tensor.VectorMath;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Each kernel of kernels/forward.cu, attention.cu, logits.cu and elementwise.cu alone (through {@link ForwardKernels})
 * against the CPU code the Transformer runs for it, on small shapes that cut across the kernels' tiles.
 */
@Tag("gpu")
class ForwardKernelsGpuTest {
    private static float[] random(int n, double scale, long seed) {
        return DenseLinearGpuTest.random(n, scale, seed);
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        for (int i = 0; i < expected.length; i++)
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol * Math.max(1, Math.abs(expected[i])),
                    what + ": element " + i + " CPU " + expected[i] + ", GPU " + actual[i]);
    }

    @Test
    void embeddingsAreTheTablesRows() {
        Cuda cuda = GpuAvailable.require();
        int vocab = 50, dim = 40;
        float[] table = random(vocab * dim, 1, 1);
        int[] tokens = {3, 0, 49, 3, 17};
        float[] expected = new float[tokens.length * dim], expectedBf16 = new float[tokens.length * dim];
        for (int t = 0; t < tokens.length; t++)
            for (int j = 0; j < dim; j++) {
                expected[t * dim + j] = table[tokens[t] * dim + j];
                expectedBf16[t * dim + j] = WeightFormat.BF16.round(table[tokens[t] * dim + j]);
            }
        try (DeviceBuffer tab = cuda.upload(table, "table");
             DeviceBuffer tabBf16 = cuda.allocate(2L * table.length, "table bf16").upload(WeightFormat.toBf16(table));
             DeviceBuffer tok = cuda.allocate(4L * tokens.length, "tokens").upload(tokens); DeviceBuffer x = cuda.floats(expected.length, "x")) {
            ForwardKernels.embed(cuda, x.pointer(), tab.pointer(), false, tok.pointer(), tokens.length, dim);
            assertArrayEquals(expected, x.download(new float[expected.length]), "embed_rows");
            ForwardKernels.embed(cuda, x.pointer(), tabBf16.pointer(), true, tok.pointer(), tokens.length, dim);
            assertArrayEquals(expectedBf16, x.download(new float[expected.length]), "embed_rows_bf16");
        }
    }

    @Test
    void rmsNormMatchesTheCpusOverHiddenRowsAndHeads() {
        Cuda cuda = GpuAvailable.require();
        for (int d : new int[] {16, 576, 2048}) {
            int rows = 5;
            float[] x = random(rows * d, 3, d), w = random(d, 1, d + 1), expected = new float[rows * d];
            try (Parallel par = new Parallel(1)) {
                RmsNorm.rows(x, expected, rows, d, w, 1e-5f, par);
            }
            try (DeviceBuffer xb = cuda.upload(x, "x"); DeviceBuffer wb = cuda.upload(w, "w"); DeviceBuffer out = cuda.floats(x.length, "out")) {
                ForwardKernels.rmsNorm(cuda, xb.pointer(), out.pointer(), wb.pointer(), rows, d, 1e-5f);
                assertClose(expected, out.download(new float[x.length]), 1e-5, "rms_norm_rows d=" + d);
                ForwardKernels.rmsNorm(cuda, xb.pointer(), xb.pointer(), wb.pointer(), rows, d, 1e-5f);
                assertClose(expected, xb.download(new float[x.length]), 1e-5, "rms_norm_rows in place d=" + d);
            }
        }
    }

    /** The Transformer's rotate_half RoPE, written out from the same RotaryTables. */
    @Test
    void ropeMatchesRotateHalfOnTheSameTables() throws Exception {
        Cuda cuda = GpuAvailable.require();
        ModelConfig cfg;
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny("llama"))) {
            cfg = c.config();
        }
        int T = 37, heads = 3, d = cfg.headDim(), half = d / 2;
        RotaryTables rope = RotaryTables.of(cfg, T);
        float[] x = random(T * heads * d, 2, 7), expected = x.clone();
        for (int t = 0; t < T; t++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < half; i++) {
                    int o = (t * heads + h) * d;
                    float a = x[o + i], b = x[o + i + half], cs = rope.cos()[t * half + i], sn = rope.sin()[t * half + i];
                    expected[o + i] = a * cs - b * sn;
                    expected[o + i + half] = b * cs + a * sn;
                }
        try (DeviceBuffer xb = cuda.upload(x, "x"); DeviceBuffer cos = cuda.upload(rope.cos(), "cos"); DeviceBuffer sin = cuda.upload(rope.sin(), "sin")) {
            ForwardKernels.rope(cuda, xb.pointer(), cos.pointer(), sin.pointer(), T, heads, d);
            assertClose(expected, xb.download(new float[x.length]), 1e-6, "rope_rows");
        }
    }

    @Test
    void siluMulAndResidualAddMatchTheCpu() {
        Cuda cuda = GpuAvailable.require();
        int n = 1000;
        float[] g = random(n, 8, 8), u = random(n, 2, 9), expected = g.clone();
        VectorMath.siluMul(expected, u, 0, n, new float[n]);
        float[] sum = new float[n];
        for (int i = 0; i < n; i++) sum[i] = g[i] + u[i];
        try (DeviceBuffer gb = cuda.upload(g, "g"); DeviceBuffer ub = cuda.upload(u, "u"); DeviceBuffer yb = cuda.upload(g, "y")) {
            ForwardKernels.siluMul(cuda, gb.pointer(), ub.pointer(), n);
            assertClose(expected, gb.download(new float[n]), 1e-6, "silu_mul");
            ForwardKernels.addInPlace(cuda, yb.pointer(), ub.pointer(), n);
            assertArrayEquals(sum, yb.download(new float[n]), "add_inplace");
        }
    }

    /** Query and key counts that are not multiples of the 32-query and 64-key tiles; head_dim 8 (stories260K) to 128. */
    @Test
    void causalAttentionMatchesTheCpusWithGroupedHeads() {
        Cuda cuda = GpuAvailable.require();
        int[][] shapes = {{100, 4, 2, 16}, {130, 8, 4, 8}, {65, 2, 1, 64}, {33, 4, 4, 128}};
        for (int[] s : shapes) {
            int T = s[0], H = s[1], KV = s[2], d = s[3];
            float[] q = random(T * H * d, 1, T), k = random(T * KV * d, 1, T + 1), v = random(T * KV * d, 1, T + 2);
            float[] expected;
            try (Parallel par = new Parallel(1)) {
                expected = new Attention(H, KV, d).causal(q, k, v, T, par).clone();
            }
            try (DeviceBuffer qb = cuda.upload(q, "q"); DeviceBuffer kb = cuda.upload(k, "k"); DeviceBuffer vb = cuda.upload(v, "v");
                 DeviceBuffer out = cuda.floats((long) T * H * d, "out")) {
                ForwardKernels.attention(cuda, qb.pointer(), kb.pointer(), vb.pointer(), out.pointer(), T, H, KV, d);
                assertClose(expected, out.download(new float[T * H * d]), 1e-5,
                        "attention_causal T=" + T + " heads=" + H + " kv=" + KV + " d=" + d);
            }
        }
    }

    @Test
    void nllAndLogSoftmaxMatchTheTransformersLogSumExp() {
        Cuda cuda = GpuAvailable.require();
        int rows = 7, vocab = 49152;
        float[] logits = random(rows * vocab, 12, 11);
        int[] targets = {0, 5, 49151, 100, 7, 7, 30000};
        double[] expectedNll = new double[rows];
        float[] expectedLp = new float[rows * vocab];
        for (int r = 0; r < rows; r++) {
            double lse = Transformer.logSumExp(logits, r * vocab, vocab);
            expectedNll[r] = lse - logits[r * vocab + targets[r]];
            for (int j = 0; j < vocab; j++) expectedLp[r * vocab + j] = (float) (logits[r * vocab + j] - lse);
        }
        try (DeviceBuffer z = cuda.upload(logits, "logits"); DeviceBuffer t = cuda.allocate(4L * rows, "targets").upload(targets);
             DeviceBuffer nll = cuda.allocate(8L * rows, "nll")) {
            ForwardKernels.nll(cuda, z.pointer(), t.pointer(), nll.pointer(), rows, vocab);
            double[] got = new double[rows];
            ByteBuffer.wrap(nll.download(new byte[8 * rows])).order(ByteOrder.nativeOrder()).asDoubleBuffer().get(got);
            for (int r = 0; r < rows; r++)
                assertTrue(Math.abs(got[r] - expectedNll[r]) <= 1e-5 * Math.max(1, expectedNll[r]),
                        "nll_rows row " + r + ": CPU " + expectedNll[r] + ", GPU " + got[r]);
            ForwardKernels.logSoftmax(cuda, z.pointer(), rows, vocab);
            assertClose(expectedLp, z.download(new float[rows * vocab]), 1e-5, "log_softmax_rows");
        }
    }
}
