package lowbit.quant.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.RuntimeQuantization;
import lowbit.quant.observer.EntropyObserver;
import lowbit.quant.observer.ObserverSpec;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Row;
import tech.tablesaw.api.Table;

/**
 * Static activation scales from observers on the tiny Llama checkpoint, each checked against an independent recorder
 * of every block linear's input per window: min/max is the old absmax calibration, the moving average follows torch.ao's
 * update once per window, the percentile is numpy's linear percentile over all inputs.
 */
class ObserverCalibrationTest {
    private static final int WINDOWS = 3, LENGTH = 20;
    private static Map<String, List<float[]>> inputs;
    private static int[][] windows;

    @BeforeAll
    static void record() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            windows = TinyLlama.windows(WINDOWS, LENGTH, ckpt.config().vocabSize(), 11);
            inputs = new LinkedHashMap<>();
            ForwardHook rec = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    if (linear.layer() < 0) return;
                    inputs.computeIfAbsent(linear.name(), k -> new ArrayList<>()).add(Arrays.copyOf(x, rows * linear.inFeatures()));
                }
            };
            try (var h = model.addHook(rec)) {
                for (int[] w : windows) model.hidden(w);
            }
        }
    }

    private static Map<String, Float> calibrate(ObserverSpec observer) throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            return ActivationQuantizer.calibrate(model, windows, 8, observer, Progress.NONE);
        }
    }

    private static float scale(double absmax) {
        return (float) (Math.max(absmax, 1e-5) / 127.0);
    }

    @Test
    void minMaxReproducesTheAbsmaxScales() throws Exception {
        Map<String, Float> scales = calibrate(ObserverSpec.MINMAX);
        assertEquals(14, scales.size(), "every block linear of 2 layers");
        for (var e : inputs.entrySet()) {
            double absmax = 0;
            for (float[] x : e.getValue()) for (float v : x) absmax = Math.max(absmax, Math.abs(v));
            assertEquals(scale(absmax), scales.get(e.getKey()), 0f, e.getKey());
        }
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            assertEquals(scales, ActivationQuantizer.calibrate(model, windows, 8), "the default observer is min/max");
        }
    }

    @Test
    void movingAverageUpdatesOncePerWindow() throws Exception {
        Map<String, Float> scales = calibrate(ObserverSpec.EMA);
        for (var e : inputs.entrySet()) {
            float lo = 0, hi = 0;
            boolean first = true;
            for (float[] x : e.getValue()) {
                float mn = Float.POSITIVE_INFINITY, mx = Float.NEGATIVE_INFINITY;
                for (float v : x) {
                    mn = Math.min(mn, v);
                    mx = Math.max(mx, v);
                }
                if (first) {
                    lo = mn;
                    hi = mx;
                    first = false;
                } else {
                    lo = lo + 0.01f * (mn - lo);
                    hi = hi + 0.01f * (mx - hi);
                }
            }
            assertEquals(scale(Math.max(Math.abs(lo), Math.abs(hi))), scales.get(e.getKey()), 0f, e.getKey());
        }
    }

    /** numpy.percentile(|x|, p), method "linear", over every input value of the linear. */
    private static double numpyPercentileOfAbs(List<float[]> xs, double p) {
        int n = 0;
        for (float[] x : xs) n += x.length;
        double[] a = new double[n];
        int k = 0;
        for (float[] x : xs) for (float v : x) a[k++] = Math.abs(v);
        Arrays.sort(a);
        double virtual = p / 100 * (n - 1);
        int lo = (int) Math.floor(virtual);
        if (lo >= n - 1) return a[n - 1];
        double t = virtual - lo, diff = a[lo + 1] - a[lo];
        return t >= 0.5 ? a[lo + 1] - diff * (1 - t) : a[lo] + diff * t;
    }

    @Test
    void percentileIsNumpysOverAllInputs() throws Exception {
        Map<String, Float> p99 = calibrate(ObserverSpec.percentile(99));
        Map<String, Float> p100 = calibrate(ObserverSpec.percentile(100));
        Map<String, Float> minmax = calibrate(ObserverSpec.MINMAX);
        assertEquals(minmax, p100, "the 100th percentile of |x| is max |x|");
        for (var e : inputs.entrySet()) {
            assertEquals(scale((float) numpyPercentileOfAbs(e.getValue(), 99)), p99.get(e.getKey()), 0f, e.getKey());
            assertTrue(p99.get(e.getKey()) < minmax.get(e.getKey()), e.getKey());
        }
    }

    private static float maxAbs(List<float[]> xs) {
        float m = 0;
        for (float[] x : xs) for (float v : x) m = Math.max(m, Math.abs(v));
        return m;
    }

    /**
     * The entropy histogram's bin width, set by the first window: amax is a bin edge, and once later windows have grown
     * the histogram by whole bins its top edge can lie up to one bin beyond max |x|, so KL's range is min/max's at most
     * plus one bin (it equals the top edge when no threshold loses less information than keeping everything).
     */
    private static float firstBinWidth(List<float[]> xs) {
        return maxAbs(List.of(xs.get(0))) / EntropyObserver.DEFAULT_BINS * 1.0001f;
    }

    @Test
    void klIsTheEntropyObserverFedOncePerWindowAndWithinMinMaxPlusOneBin() throws Exception {
        Map<String, Float> kl = calibrate(ObserverSpec.KL);
        Map<String, Float> minmax = calibrate(ObserverSpec.MINMAX);
        int narrower = 0;
        for (var e : inputs.entrySet()) {
            EntropyObserver o = new EntropyObserver(8, false);
            for (float[] x : e.getValue()) o.observe(x);
            assertEquals(scale(o.range().max()), kl.get(e.getKey()), 0f, e.getKey());
            assertTrue(o.range().max() <= maxAbs(e.getValue()) + firstBinWidth(e.getValue()), e.getKey());
            if (kl.get(e.getKey()) < minmax.get(e.getKey())) narrower++;
        }
        assertTrue(narrower > 0, "KL clips some input");
    }

    @Test
    void comparisonTableHandCheckableFacts() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            List<String> linears = ObserverComparison.defaultLinears(model);
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.0.mlp.gate_proj",
                    "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.o_proj",
                    "model.layers.1.mlp.gate_proj", "model.layers.1.mlp.down_proj"), linears, "first, middle (= last of 2) blocks");
            List<ObserverSpec> obs = List.of(ObserverSpec.MINMAX, ObserverSpec.EMA, ObserverSpec.KL, ObserverSpec.percentile(99));
            Table t = ObserverComparison.compare(model, windows, linears, obs, 8, Progress.NONE);
            assertEquals(linears.size() * obs.size(), t.rowCount());
            Map<String, Float> minmaxScales = calibrate(ObserverSpec.MINMAX), klScales = calibrate(ObserverSpec.KL);
            Map<String, Double> minmaxHi = new LinkedHashMap<>();
            for (Row r : t) {
                String name = r.getString("linear"), o = r.getString("observer");
                long n = r.getLong("values");
                int in = inputs.get(name).get(0).length / LENGTH;
                assertEquals((long) WINDOWS * LENGTH * in, n, name);
                assertTrue(r.getDouble("mse") > 0, name + " " + o);
                switch (o) {
                    case "minmax" -> {
                        assertEquals(0.0, r.getDouble("clipped"), name + ": min/max clips nothing");
                        assertEquals(minmaxScales.get(name), (float) r.getDouble("scale"), 0f, name);
                        minmaxHi.put(name, Math.max(-r.getDouble("lo"), r.getDouble("hi")));
                    }
                    case "percentile:99" -> assertEquals(0.01, r.getDouble("clipped"), 2.0 / n, name + ": the 99th percentile clips 1%");
                    case "kl" -> {
                        assertTrue(r.getDouble("hi") <= minmaxHi.get(name) + firstBinWidth(inputs.get(name)),
                                name + ": KL's range is within min/max's, up to the histogram's last bin");
                        assertEquals(-r.getDouble("hi"), r.getDouble("lo"), name + ": symmetric");
                        assertEquals(klScales.get(name), (float) r.getDouble("scale"), 0f, name);
                    }
                    default -> { }
                }
            }
            var e = assertThrows(IllegalArgumentException.class,
                    () -> ObserverComparison.compare(model, windows, List.of("lm_head"), obs, 8, Progress.NONE));
            assertTrue(e.getMessage().contains("lm_head is not a block linear"), e.getMessage());
        }
    }

    @Test
    void manifestRecordsTheObserverAndReadsTheScalesBack() {
        Map<String, Float> scales = new LinkedHashMap<>();
        scales.put("model.layers.0.self_attn.q_proj", 0.012345679f);
        scales.put("model.layers.0.mlp.down_proj", 3.3333333e-4f);
        RuntimeQuantization rq = new RuntimeQuantization(8, scales, KvWidths.uniform(0, 0), 0, "kl");
        try (Checkpoint ckpt = TinyLlama.open()) {
            ObjectMapper json = new ObjectMapper();
            JsonNode written = json.readTree(json.writeValueAsString(rq.describe(ckpt.config())));
            assertEquals("kl", written.get("activation_observer").asText());
            RuntimeQuantization back = RuntimeQuantization.fromJson(written);
            assertEquals(scales, back.staticScales(), "scales read back exactly");
            assertEquals("kl", back.observer());
            ((com.fasterxml.jackson.databind.node.ObjectNode) written).remove("activation_observer");
            assertEquals("minmax", RuntimeQuantization.fromJson(written).observer(), "older directories used min/max");
            assertEquals(null, new RuntimeQuantization(8, null, 0, 0, 0).observer(), "per-token dynamic has no observer");
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }
}
