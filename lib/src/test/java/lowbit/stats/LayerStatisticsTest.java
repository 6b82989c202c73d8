package lowbit.stats;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.gptq.Gptq;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Row;
import tech.tablesaw.api.Table;

/** Statistics of the tiny 2-block Llama checkpoint against direct recomputation from captured tensors. */
class LayerStatisticsTest {
    private static final int WINDOWS = 3, SEQLEN = 16;
    private static Checkpoint ckpt;
    private static Transformer model;
    private static int[][] windows;

    @BeforeAll
    static void load() throws Exception {
        Path dir = Path.of(LayerStatisticsTest.class.getClassLoader().getResource("tiny/llama").toURI());
        ckpt = Checkpoints.open(dir);
        model = Checkpoints.load(ckpt, 1);
        SplittableRandom rnd = new SplittableRandom(9);
        windows = new int[WINDOWS][SEQLEN];
        for (int[] w : windows) for (int i = 0; i < SEQLEN; i++) w[i] = rnd.nextInt(model.config().vocabSize());
    }

    @AfterAll
    static void close() throws Exception {
        model.close();
        ckpt.close();
    }

    @Test
    void weightTableMatchesDirectRecomputation() {
        Table t = LayerStatistics.weights(model);
        assertEquals(2 * 7, t.rowCount());
        assertTrue(t.stringColumn("kind").asList().stream().allMatch("weight"::equals));
        assertFalse(t.stringColumn("module").asList().contains("lm_head"));
        Linear up = model.linear("model.layers.1.mlp.up_proj");
        Row r = find(t, up.name());
        assertEquals(1, r.getInt("layer"));
        assertEquals("up_proj", r.getString("module"));
        assertEquals(up.outFeatures(), r.getInt("rows"));
        assertEquals(up.inFeatures(), r.getInt("cols"));
        Direct d = Direct.of(up.weight(), up.outFeatures(), up.inFeatures(), true);
        d.assertMatches(r);
        assertTrue(Double.isNaN(r.getDouble("token_max_abs_max")));
    }

    @Test
    void activationAndCacheRowsMatchACapturingHook() throws Exception {
        LayerStatistics.Activations a = LayerStatistics.collectActivations(model, windows, Progress.NONE);
        Table t = a.table();
        assertEquals(2 * 6, t.rowCount());
        Linear down = model.linear("model.layers.1.mlp.down_proj");
        Linear q0 = model.linear("model.layers.0.self_attn.q_proj");
        int kvDim = model.config().numKvHeads() * model.config().headDim();
        List<float[]> downIn = new ArrayList<>(), qIn = new ArrayList<>(), keys0 = new ArrayList<>(), values1 = new ArrayList<>();
        try (AutoCloseable h = model.addHook(new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] x, int rows) {
                if (linear == down) downIn.add(Arrays.copyOf(x, rows * linear.inFeatures()));
                if (linear == q0) qIn.add(Arrays.copyOf(x, rows * linear.inFeatures()));
            }

            @Override
            public void keyValue(int layer, float[] keys, float[] values, int rows) {
                if (layer == 0) keys0.add(Arrays.copyOf(keys, rows * kvDim));
                if (layer == 1) values1.add(Arrays.copyOf(values, rows * kvDim));
            }
        })) {
            for (int[] w : windows) model.hidden(w);
        }
        Row mlpAct = find(t, "model.layers.1.mlp_act");
        assertEquals("activation", mlpAct.getString("kind"));
        assertEquals("mlp_act", mlpAct.getString("module"));
        assertEquals(WINDOWS * SEQLEN, mlpAct.getInt("rows"));
        assertEquals(down.inFeatures(), mlpAct.getInt("cols"));
        Direct.of(concat(downIn), WINDOWS * SEQLEN, down.inFeatures(), false).assertMatches(mlpAct);
        Direct.of(concat(qIn), WINDOWS * SEQLEN, q0.inFeatures(), false).assertMatches(find(t, "model.layers.0.attn_in"));

        Row k0 = find(t, "model.layers.0.self_attn.k_cache");
        assertEquals("key", k0.getString("kind"));
        assertEquals(kvDim, k0.getInt("cols"));
        Direct.of(concat(keys0), WINDOWS * SEQLEN, kvDim, false).assertMatches(k0);
        Row v1 = find(t, "model.layers.1.self_attn.v_cache");
        assertEquals("value", v1.getString("kind"));
        Direct.of(concat(values1), WINDOWS * SEQLEN, kvDim, false).assertMatches(v1);

        float[] chMax = a.channelMaxAbs().get("model.layers.1.mlp_act");
        assertArrayEquals(Direct.of(concat(downIn), WINDOWS * SEQLEN, down.inFeatures(), false).channelMax, chMax);
        assertEquals(t.rowCount(), a.channelMaxAbs().size());
    }

    @Test
    void combinedTableIsWeightsThenActivations() {
        Table c = LayerStatistics.combined(model, windows);
        assertEquals(14 + 12, c.rowCount());
        assertEquals(LayerStatistics.weights(model).columnNames(), c.columnNames());
        assertEquals(14, c.stringColumn("kind").isEqualTo("weight").size());
        assertEquals(8, c.stringColumn("kind").isEqualTo("activation").size());
        assertEquals(2, c.stringColumn("kind").isEqualTo("key").size());
        assertEquals(2, c.stringColumn("kind").isEqualTo("value").size());
    }

    @Test
    void hessianTraceAndTopEigenvaluesMatchGptq() throws Exception {
        int k = 4;
        Table t = LayerStatistics.hessians(model, windows, k);
        assertEquals(2 * 4, t.rowCount());
        assertEquals(List.of("layer", "input", "n", "trace", "eig_1", "eig_2", "eig_3", "eig_4"), t.columnNames());
        for (String[] c : new String[][] {{"model.layers.1.mlp.down_proj", "mlp_act"}, {"model.layers.0.self_attn.q_proj", "attn_in"}}) {
            Linear lin = model.linear(c[0]);
            int n = lin.inFeatures();
            Gptq g = new Gptq(n);
            try (Parallel par = new Parallel(1);
                 AutoCloseable h = model.addHook(new ForwardHook() {
                     @Override
                     public void linearInput(Linear linear, float[] x, int rows) {
                         if (linear == lin) g.addBatch(x, rows, par);
                     }
                 })) {
                for (int[] w : windows) model.hidden(w);
            }
            double[] hm = g.hessian();
            double trace = 0;
            for (int i = 0; i < n; i++) trace += hm[i * n + i];
            Row r = hessianRow(t, lin.layer(), c[1]);
            assertEquals(n, r.getInt("n"));
            assertEquals(trace, r.getDouble("trace"), 1e-12 * trace);
            double[] want = TopEigenTest.commonsTop(hm, n, k);
            for (int i = 0; i < k; i++) assertEquals(want[i], r.getDouble("eig_" + (i + 1)), 1e-9 * want[0], c[1] + " eig " + (i + 1));
            assertTrue(want[0] <= trace && want[0] > 0);
        }
    }

    @Test
    void refusesBadArguments() {
        assertThrows(IllegalArgumentException.class, () -> LayerStatistics.hessians(model, windows, 0));
        assertThrows(IllegalArgumentException.class, () -> LayerStatistics.hessians(model, windows, 65));
        assertThrows(IllegalArgumentException.class, () -> LayerStatistics.activations(model, new int[][] {{1, 2, 3}, {1, 2}}));
    }

    /** Tablesaw's iterator moves one Row cursor: return it while it points at the match. */
    private static Row hessianRow(Table t, int layer, String input) {
        for (Row r : t) if (r.getInt("layer") == layer && r.getString("input").equals(input)) return r;
        throw new AssertionError("no Hessian row for layer " + layer + " " + input);
    }

    private static Row find(Table t, String name) {
        for (Row r : t) if (r.getString("name").equals(name)) return r;
        throw new AssertionError("no row named " + name + " in " + t.stringColumn("name").asList());
    }

    private static float[] concat(List<float[]> parts) {
        int n = 0;
        for (float[] p : parts) n += p.length;
        float[] out = new float[n];
        int o = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, o, p.length);
            o += p.length;
        }
        return out;
    }

    /** Plain two-pass definitions over a [rows][cols] tensor; channels are rows (weights) or columns (activations). */
    private record Direct(double mean, double std, double kurtosis, double maxAbs, double maxOverMeanAbs, double outlierRatio,
                          double chStdMin, double chStdMax, float[] channelMax, double tokMax, double tokMedian) {
        static Direct of(float[] x, int rows, int cols, boolean channelsAreRows) {
            double mean = 0, sumAbs = 0, maxAbs = 0;
            for (float v : x) {
                mean += v;
                sumAbs += Math.abs(v);
                maxAbs = Math.max(maxAbs, Math.abs(v));
            }
            mean /= x.length;
            double s2 = 0, s4 = 0;
            for (float v : x) {
                double d = v - mean;
                s2 += d * d;
                s4 += d * d * d * d;
            }
            double std = Math.sqrt(s2 / x.length);
            int outliers = 0;
            for (float v : x) if (Math.abs(v) > 6 * std) outliers++;
            int channels = channelsAreRows ? rows : cols, per = channelsAreRows ? cols : rows;
            double[] chStd = new double[channels];
            float[] chMax = new float[channels];
            for (int c = 0; c < channels; c++) {
                double m = 0;
                for (int i = 0; i < per; i++) m += x[channelsAreRows ? c * cols + i : i * cols + c];
                m /= per;
                double ss = 0;
                for (int i = 0; i < per; i++) {
                    float v = x[channelsAreRows ? c * cols + i : i * cols + c];
                    ss += (v - m) * (v - m);
                    chMax[c] = Math.max(chMax[c], Math.abs(v));
                }
                chStd[c] = Math.sqrt(ss / per);
            }
            float[] tok = new float[rows];
            for (int r = 0; r < rows; r++) for (int c = 0; c < cols; c++) tok[r] = Math.max(tok[r], Math.abs(x[r * cols + c]));
            float[] sorted = tok.clone();
            Arrays.sort(sorted);
            double tokMedian = rows % 2 == 1 ? sorted[rows / 2] : ((double) sorted[rows / 2 - 1] + sorted[rows / 2]) / 2;
            return new Direct(mean, std, x.length * s4 / (s2 * s2), maxAbs, maxAbs / (sumAbs / x.length),
                    (double) outliers / x.length, Arrays.stream(chStd).min().orElseThrow(), Arrays.stream(chStd).max().orElseThrow(),
                    chMax, Arrays.stream(toDouble(tok)).max().orElseThrow(), tokMedian);
        }

        void assertMatches(Row r) {
            assertEquals(mean, r.getDouble("mean"), 1e-9 * std);
            assertEquals(std, r.getDouble("std"), 1e-10 * std);
            assertEquals(kurtosis, r.getDouble("kurtosis"), 1e-9 * kurtosis);
            assertEquals(maxAbs, r.getDouble("max_abs"));
            assertEquals(maxOverMeanAbs, r.getDouble("max_over_mean_abs"), 1e-10 * maxOverMeanAbs);
            assertEquals(outlierRatio, r.getDouble("outlier_ratio"));
            assertEquals(chStdMin, r.getDouble("channel_std_min"), 1e-9 * chStdMin);
            assertEquals(chStdMax, r.getDouble("channel_std_max"), 1e-9 * chStdMax);
            assertEquals(chStdMax / chStdMin, r.getDouble("channel_std_ratio"), 1e-8 * chStdMax / chStdMin);
            float[] s = channelMax.clone();
            Arrays.sort(s);
            assertEquals(s[s.length - 1], r.getDouble("channel_max_abs_max"));
            double median = s.length % 2 == 1 ? s[s.length / 2] : ((double) s[s.length / 2 - 1] + s[s.length / 2]) / 2;
            assertEquals(median, r.getDouble("channel_max_abs_median"));
            if (!Double.isNaN(r.getDouble("token_max_abs_max"))) {
                assertEquals(tokMax, r.getDouble("token_max_abs_max"));
                assertEquals(tokMedian, r.getDouble("token_max_abs_median"));
            }
        }
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i];
        return d;
    }
}
