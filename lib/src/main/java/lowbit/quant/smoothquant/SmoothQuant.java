package lowbit.quant.smoothquant;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;

/**
 * SmoothQuant (mit-han-lab/smoothquant smooth.py, METHODS.md section 2): per-channel max |X| of the inputs
 * of the linears behind each norm, over the calibration windows of the float model; smoothing factors
 * s_j = max|X_j|^alpha / max|W_j|^(1-alpha) with W's max over the concatenated consumers (q,k,v behind
 * the attention norm; gate,up or OPT's fc1 behind the MLP norm), both clamped at 1e-5 as the reference
 * does; s folded into the norm (weight and bias / s) and the consumers' columns (* s); then the weights
 * are quantized per output channel with the symmetric absmax grid. Activation quantization is a runtime
 * hook, attached separately.
 */
public final class SmoothQuant {
    private SmoothQuant() {}

    /** Per linear (by name), per input channel: max |x| over every calibration token. */
    public static Map<String, float[]> activationMaxima(Transformer model, int[][] windows, Progress progress) {
        Map<String, float[]> max = new HashMap<>();
        try (AutoCloseable h = model.addHook(new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] x, int rows) {
                if (linear.layer() < 0) return;
                int n = linear.inFeatures();
                float[] m = max.computeIfAbsent(linear.name(), k -> new float[n]);
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < n; j++) m[j] = Math.max(m[j], Math.abs(x[r * n + j]));
            }
        }); Progress.Task task = progress.start("act stats", windows.length, "win")) {
            for (int[] w : windows) {
                model.hidden(w);
                task.step(1);
            }
        } catch (Exception e) {
            if (e instanceof RuntimeException re) throw re;
            throw new IllegalStateException(e);
        }
        return max;
    }

    /** s_j = max(actMax_j, 1e-5)^alpha / max(max_i |W_ij| over all consumers, 1e-5)^(1-alpha), clamped at 1e-5. */
    public static float[] smoothingFactors(float[] actMax, List<Linear> consumers, double alpha) {
        if (!(alpha >= 0 && alpha <= 1)) throw new IllegalArgumentException("SmoothQuant alpha must be in [0, 1], got " + alpha);
        int n = actMax.length;
        float[] wMax = new float[n];
        for (Linear l : consumers) {
            if (l.inFeatures() != n) throw new IllegalArgumentException(l.name() + " reads " + l.inFeatures() + " channels, the statistic has " + n);
            float[] w = l.weight();
            for (int i = 0; i < l.outFeatures(); i++)
                for (int j = 0; j < n; j++) wMax[j] = Math.max(wMax[j], Math.abs(w[i * n + j]));
        }
        float[] s = new float[n];
        for (int j = 0; j < n; j++)
            s[j] = (float) Math.max(Math.pow(Math.max(actMax[j], 1e-5), alpha) / Math.pow(Math.max(wMax[j], 1e-5), 1 - alpha), 1e-5);
        return s;
    }

    /** The linears behind the attention norm and behind the MLP norm of a block. */
    static Map<String, List<Linear>> groups(Transformer model, int layer) {
        Map<String, List<Linear>> g = new LinkedHashMap<>();
        g.put("attn", new ArrayList<>());
        g.put("mlp", new ArrayList<>());
        for (Linear l : model.blockLinears(layer)) {
            switch (l.input()) {
                case "attn_in" -> g.get("attn").add(l);
                case "mlp_in" -> g.get("mlp").add(l);
                default -> { }
            }
        }
        return g;
    }

    /**
     * Smooths every block in place from the statistics of {@link #activationMaxima} (taken on the float
     * model), then quantizes every block linear with {@code weights} (symmetric absmax per channel in the
     * reference). The result's options record alpha; its layers record each block's factors' range.
     */
    public static QuantizedModel quantize(Transformer model, Map<String, float[]> actMax, double alpha, QuantConfig weights) {
        long t0 = System.nanoTime();
        Map<String, Map<String, Object>> layers = smooth(model, actMax, alpha);
        double smoothSeconds = (System.nanoTime() - t0) / 1e9;
        Map<String, QuantizedWeight> out = new LinkedHashMap<>();
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l)) {
                QuantizedWeight q = Rtn.quantize(lin.name(), lin.weight(), lin.outFeatures(), lin.inFeatures(), weights);
                lin.setWeight(q.dequantize());
                out.put(lin.name(), q);
            }
        Map<String, Object> options = new LinkedHashMap<>();
        options.put("alpha", alpha);
        Map<String, Double> timings = new LinkedHashMap<>();
        timings.put("smoothing_seconds", smoothSeconds);
        timings.put("total_seconds", (System.nanoTime() - t0) / 1e9);
        return new QuantizedModel("smoothquant", weights, options, out, layers, timings);
    }

    /**
     * Folds the smoothing factors of every block into its norms and the linears behind them, in place; the float
     * model computes the same function afterwards. Returns each block's factor range, by group.
     */
    public static Map<String, Map<String, Object>> smooth(Transformer model, Map<String, float[]> actMax, double alpha) {
        if (!model.config().normBefore())
            throw new IllegalArgumentException("SmoothQuant folds its factors into the norm in front of each sub-layer; "
                    + "this post-norm model (OPT do_layer_norm_before=false) has none");
        Map<String, Map<String, Object>> layers = new LinkedHashMap<>();
        for (int l = 0; l < model.config().numLayers(); l++) {
            for (var e : groups(model, l).entrySet()) {
                List<Linear> consumers = e.getValue();
                float[] stat = actMax.get(consumers.get(0).name());
                if (stat == null) throw new IllegalArgumentException("no activation statistics for " + consumers.get(0).name());
                float[] s = smoothingFactors(stat, consumers, alpha);
                model.divideNorm(l, e.getKey(), s);
                for (Linear c : consumers) c.scaleInputs(s);
                float lo = Float.MAX_VALUE, hi = 0;
                for (float v : s) {
                    lo = Math.min(lo, v);
                    hi = Math.max(hi, v);
                }
                layers.put("model.layers." + l + "." + e.getKey() + "_smoothing", Map.of("min_factor", lo, "max_factor", hi));
            }
        }
        return layers;
    }
}
