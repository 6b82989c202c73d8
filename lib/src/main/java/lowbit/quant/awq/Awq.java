package lowbit.quant.awq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;

import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;
import lowbit.quant.UniformQuantizer;
import lowbit.tensor.VectorMath;

/**
 * Activation-aware weight quantization as mit-han-lab/llm-awq does it (auto_scale.py, auto_clip.py;
 * METHODS.md section 2). Per block, on the float model's activations:
 * <ol>
 * <li>for each scaling group (norm -> q,k,v with the whole attention as loss module; v -> o when shapes
 *     match; norm -> gate,up (OPT: fc1) with the whole MLP; up -> down (OPT: fc1 -> fc2)), try
 *     s = mean|x|^alpha, alpha in {0, 0.05, ..., 0.95}, clamped at 1e-4 and normalized by
 *     sqrt(max(s) min(s)); quantize W*s, divide by s, and keep the alpha with the least mean squared error
 *     of the loss module's output;</li>
 * <li>fold every chosen s into the preceding norm or linear (the float model is unchanged);</li>
 * <li>clip: for every linear but q and k, per output row and group, the max |w| shrunk by 1 - i/20,
 *     i < 10, with the least output error on about 512 tokens (every (tokens/512)-th, as the reference);</li>
 * <li>quantize every linear on its grid (the shared one, or a bits map's).</li>
 * </ol>
 * The next block's inputs are the float block's outputs, as in the reference (AWQ is not sequential on
 * quantized outputs). The grid is the caller's; llm-awq's own is {@link QuantConfig.ZeroPoint#AWQ} (the
 * group's min and max, not widened to include 0), which `awq:` specs use.
 *
 * <p>Mixed precision: each linear may have its own grid (a bits map). The scale search of a group whose consumers
 * have different widths quantizes each consumer on its own grid, so the loss it minimizes is the one the chosen
 * widths will give; the clip search and the final quantization use each linear's grid. With one grid everywhere
 * this is llm-awq's algorithm unchanged.
 */
public final class Awq {
    /**
     * @param grid         alphas tried: i / grid for i in [0, grid)
     * @param duoScaling   AutoAWQ's variant s = x_mean^a / w_mean^(1-a) (w_mean: mean of |W| normalized by
     *                     each group's max, over the group's rows)
     * @param clip         run the clip search
     * @param clipTokens   tokens sampled for the clip search
     */
    public record Options(int grid, boolean duoScaling, boolean clip, int clipTokens) {
        public static Options defaults() {
            return new Options(20, false, true, 512);
        }

        public Options withDuoScaling(boolean d) {
            return new Options(grid, d, clip, clipTokens);
        }

        public Options withClip(boolean c) {
            return new Options(grid, duoScaling, c, clipTokens);
        }
    }

    private static final int CLIP_GRID = 20;
    private static final double CLIP_MAX_SHRINK = 0.5;

    private final QuantConfig config;
    private final Function<String, QuantConfig> configs;
    private final Options options;
    private final Device device;

    public Awq(QuantConfig config, Options options) {
        this(config, name -> config, options);
    }

    /** Each linear on its own grid ({@code configs} by module name, e.g. from a bits map); {@code config} is the default recorded. */
    public Awq(QuantConfig config, Function<String, QuantConfig> configs, Options options) {
        this(config, configs, options, Device.CPU);
    }

    /**
     * On {@link Device#CUDA} the scale search of every group whose loss module is one linear (v -> o, up -> down, OPT's
     * fc1 and fc1 -> fc2) computes its losses on the GPU ({@link DeviceAwq}); the groups judged on the whole attention or a
     * gated MLP, the statistics, the clip search and the final quantization run on the CPU (the forward pass of a whole
     * sub-layer on the GPU belongs to lowbit.model.cuda.DeviceModel, which the search does not use yet).
     */
    public Awq(QuantConfig config, Function<String, QuantConfig> configs, Options options, Device device) {
        this.config = config;
        this.configs = configs;
        this.options = options;
        this.device = device == null ? Device.CPU : device;
    }

    /** One scaling group: who produces the input (a norm, or a linear whose rows are divided), who reads it. */
    record ScaleGroup(String name, String norm, Linear producer, List<Linear> consumers) {}

    /** What the search chose for one group. */
    public record Choice(String group, double alpha, double loss, double[] losses, float[] scales) {}

    static List<ScaleGroup> scaleGroups(Transformer model, int layer) {
        List<Linear> lin = model.blockLinears(layer);
        boolean llama = lin.size() == 7;
        Linear q = lin.get(0), k = lin.get(1), v = lin.get(2), o = lin.get(3);
        List<ScaleGroup> groups = new ArrayList<>();
        groups.add(new ScaleGroup("attn_in", "attn", null, List.of(q, k, v)));
        if (v.outFeatures() == o.inFeatures() && v.inFeatures() == o.outFeatures())
            groups.add(new ScaleGroup("v_o", null, v, List.of(o)));
        if (llama) {
            groups.add(new ScaleGroup("mlp_in", "mlp", null, List.of(lin.get(4), lin.get(5))));
            // a rotated model's online Hadamard on down_proj's input sits between up and down: a scale would not fold through it
            if (!model.onlineDownHadamard()) groups.add(new ScaleGroup("up_down", null, lin.get(5), List.of(lin.get(6))));
        } else {
            groups.add(new ScaleGroup("mlp_in", "mlp", null, List.of(lin.get(4))));
            groups.add(new ScaleGroup("fc1_fc2", null, lin.get(4), List.of(lin.get(5))));
        }
        return groups;
    }

    /** Quantizes every block linear of {@code model} in place; windows are the calibration token windows. */
    public QuantizedModel quantize(Transformer model, int[][] windows, Progress progress) {
        if (!model.config().normBefore())
            throw new IllegalArgumentException("AWQ folds scales into the norm in front of each sub-layer; this post-norm "
                    + "model (OPT do_layer_norm_before=false) has none: no matching scaling group");
        int layers = model.config().numLayers(), T = windows[0].length;
        float[][] x = new float[windows.length][];
        for (int w = 0; w < windows.length; w++) x[w] = model.embed(windows[w]);
        Map<String, QuantizedWeight> out = new LinkedHashMap<>();
        Map<String, Map<String, Object>> facts = new LinkedHashMap<>();
        double[] seconds = new double[4];
        try (Progress.Task task = progress.start("awq", layers, "block")) {
            for (int l = 0; l < layers; l++) {
                BlockResult b = quantizeBlock(model, l, x, T);
                for (Linear lin : model.blockLinears(l)) {
                    QuantizedWeight q = b.weights().get(lin.name());
                    out.put(lin.name(), q);
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("bits_per_weight", q.bitsPerWeight());
                    if (b.clipMax().containsKey(lin.name())) f.put("clipped_fraction", b.clipMax().get(lin.name()).clippedFraction());
                    facts.put(lin.name(), f);
                }
                for (Choice c : b.choices()) {
                    Map<String, Object> f = new LinkedHashMap<>();
                    f.put("alpha", c.alpha());
                    f.put("loss", c.loss());
                    facts.put("model.layers." + l + "." + c.group(), f);
                }
                x = b.next();
                for (int i = 0; i < 4; i++) seconds[i] += b.seconds()[i];
                task.step(1);
            }
        }
        Map<String, Object> opts = new LinkedHashMap<>();
        opts.put("alpha_grid", options.grid());
        opts.put("duo_scaling", options.duoScaling());
        opts.put("clip", options.clip());
        opts.put("clip_tokens", options.clipTokens());
        Map<String, Double> timings = new LinkedHashMap<>();
        timings.put("statistics_seconds", seconds[0]);
        timings.put("scale_search_seconds", seconds[1]);
        timings.put("clip_search_seconds", seconds[2]);
        timings.put("quantize_seconds", seconds[3]);
        return new QuantizedModel("awq", config, opts, out, facts, timings);
    }

    /** The clip search's clamp per (row, group) and the share of groups it clipped. */
    record Clip(float[] max, double clippedFraction) {}

    /** What one block's AWQ did: the scale choices, each clipped linear's clamp per (row, group), the weights, the next input. */
    record BlockResult(List<Choice> choices, Map<String, Clip> clipMax,
                       Map<String, float[]> scaledWeights, Map<String, QuantizedWeight> weights, float[][] next, double[] seconds) {}

    /** Statistics, scale search and fold, clip, quantize for block {@code l} whose float inputs are x. */
    BlockResult quantizeBlock(Transformer model, int l, float[][] x, int T) {
        long t0 = System.nanoTime();
        BlockActivations act = BlockActivations.capture(model, l, x, T);
        long t1 = System.nanoTime();
        List<ScaleGroup> groups = scaleGroups(model, l);
        List<Choice> choices = new ArrayList<>();
        for (ScaleGroup g : groups) choices.add(search(model, l, g, act, T));
        for (int i = 0; i < groups.size(); i++) fold(model, l, groups.get(i), choices.get(i).scales(), act);
        long t2 = System.nanoTime();
        Map<String, Clip> clipMax = new LinkedHashMap<>();
        Map<String, float[]> scaled = new LinkedHashMap<>();
        for (Linear lin : model.blockLinears(l)) scaled.put(lin.name(), lin.weight());
        if (options.clip())
            for (Linear lin : model.blockLinears(l)) {
                if (lin.module().equals("q_proj") || lin.module().equals("k_proj")) continue;
                clipMax.put(lin.name(), clip(lin, act.inputOf(model, l, lin, T)));
            }
        long t3 = System.nanoTime();
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        for (Linear lin : model.blockLinears(l)) {
            QuantizedWeight q = Rtn.quantize(lin.name(), lin.weight(), lin.outFeatures(), lin.inFeatures(), configs.apply(lin.name()));
            lin.setWeight(q.dequantize());
            weights.put(lin.name(), q);
        }
        long t4 = System.nanoTime();
        return new BlockResult(choices, clipMax, scaled, weights, act.next(),
                new double[] {(t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t4 - t3) / 1e9});
    }

    /** The alpha grid search of one group (llm-awq _search_module_scale). */
    Choice search(Transformer model, int layer, ScaleGroup g, BlockActivations act, int T) {
        float[] xMean = act.meanAbs(g.name());
        float[] wMean = options.duoScaling() ? weightMean(g.consumers()) : null;
        List<float[]> saved = new ArrayList<>();
        for (Linear c : g.consumers()) saved.add(c.weight());
        BlockActivations.LinearLoss single = device == Device.CUDA ? act.linearLoss(model, layer, g.name()) : null;
        if (single != null) {
            Linear lin = single.linear();
            try (DeviceAwq loss = DeviceAwq.upload(Cuda.get(), lin.name(), single.inputs(), lin.inFeatures(), single.reference(),
                    lin.outFeatures(), lin.bias())) {
                return choose(layer, g, xMean, wMean, s -> loss.loss(quantizeScaled(saved.get(0), lin, s)));
            }
        }
        try {
            return choose(layer, g, xMean, wMean, s -> {
                for (int c = 0; c < g.consumers().size(); c++) g.consumers().get(c).setWeight(quantizeScaled(saved.get(c), g.consumers().get(c), s));
                return act.loss(model, layer, g.name(), T);
            });
        } finally {
            for (int c = 0; c < g.consumers().size(); c++) g.consumers().get(c).setWeight(saved.get(c));
        }
    }

    /** The alpha with the least loss (the first of equal ones); {@code lossOf} gives the loss module's error under scales s. */
    private Choice choose(int layer, ScaleGroup g, float[] xMean, float[] wMean, java.util.function.ToDoubleFunction<float[]> lossOf) {
        double best = Double.POSITIVE_INFINITY, bestAlpha = -1;
        float[] bestScales = null;
        double[] losses = new double[options.grid()];
        for (int i = 0; i < options.grid(); i++) {
            double alpha = (double) i / options.grid();
            float[] s = scales(xMean, wMean, alpha);
            double loss = lossOf.applyAsDouble(s);
            losses[i] = loss;
            if (loss < best) {
                best = loss;
                bestAlpha = alpha;
                bestScales = s;
            }
        }
        if (bestScales == null) throw new IllegalStateException("block " + layer + " " + g.name() + ": no finite AWQ loss");
        return new Choice(g.name(), bestAlpha, best, losses, bestScales);
    }

    /** s = x^alpha (duo: / (w^(1-alpha) + 1e-4)) clamped at 1e-4, then / sqrt(max(s) * min(s)). */
    static float[] scales(float[] xMean, float[] wMean, double alpha) {
        int n = xMean.length;
        double[] s = new double[n];
        double max = 0, min = Double.POSITIVE_INFINITY;
        for (int j = 0; j < n; j++) {
            double v = wMean == null ? Math.pow(xMean[j], alpha) : Math.pow(xMean[j], alpha) / (Math.pow(wMean[j], 1 - alpha) + 1e-4);
            v = Math.max(v, 1e-4);
            s[j] = v;
            max = Math.max(max, v);
            min = Math.min(min, v);
        }
        double norm = Math.sqrt(max * min);
        float[] out = new float[n];
        for (int j = 0; j < n; j++) out[j] = (float) (s[j] / norm);
        return out;
    }

    /** AutoAWQ's w_mean: |W| over the concatenated consumers, normalized by each group's max |w|, averaged over rows. */
    float[] weightMean(List<Linear> consumers) {
        // a bits map changes widths only: the consumers of one input share its group size
        int n = consumers.get(0).inFeatures(), g = configs.apply(consumers.get(0).name()).groupColumns(n);
        double[] sum = new double[n];
        int rows = 0;
        for (Linear l : consumers) {
            float[] w = l.weight();
            for (int r = 0; r < l.outFeatures(); r++) {
                for (int c0 = 0; c0 < n; c0 += g) {
                    int c1 = Math.min(n, c0 + g);
                    double max = 0;
                    for (int c = c0; c < c1; c++) max = Math.max(max, Math.abs(w[r * n + c]));
                    for (int c = c0; c < c1; c++) sum[c] += Math.abs(w[r * n + c]) / (max + 1e-6);
                }
            }
            rows += l.outFeatures();
        }
        float[] mean = new float[n];
        for (int j = 0; j < n; j++) mean[j] = (float) (sum[j] / rows);
        return mean;
    }

    /** Q(W * s) / s on the linear's grid: what the loss module runs for one alpha. */
    private float[] quantizeScaled(float[] w, Linear l, float[] s) {
        int rows = l.outFeatures(), cols = l.inFeatures();
        float[] ws = new float[w.length];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) ws[r * cols + c] = w[r * cols + c] * s[c];
        float[] q = Rtn.quantize(l.name(), ws, rows, cols, configs.apply(l.name())).dequantize();
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) q[r * cols + c] /= s[c];
        return q;
    }

    /** mean over tokens of (sum_c x[t, c0 + c] d[c])^2. */
    private static double meanSquaredProjection(float[] xs, int cols, int c0, int tokens, double[] d, int n) {
        double sum = 0;
        for (int t = 0; t < tokens; t++) {
            double o = 0;
            for (int c = 0; c < n; c++) o += xs[t * cols + c0 + c] * d[c];
            sum += o * o;
        }
        return sum / tokens;
    }

    /** d^T G d for a symmetric G [n][n]. */
    private static double quadraticForm(double[] gram, double[] d, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += d[i] * VectorMath.dot(gram, i * n, d, n);
        return sum;
    }

    private static void fold(Transformer model, int layer, ScaleGroup g, float[] s, BlockActivations act) {
        foldIntoModel(model, layer, g, s);
        act.divideInputs(g.name(), s);
    }

    /** The producer's output divided by s, the consumers' inputs multiplied by s: the float function is unchanged. */
    static void foldIntoModel(Transformer model, int layer, ScaleGroup g, float[] s) {
        if (g.norm() != null) model.divideNorm(layer, g.norm(), s);
        else g.producer().divideOutputs(s);
        for (Linear c : g.consumers()) c.scaleInputs(s);
    }

    /**
     * llm-awq auto_clip_layer then apply_clip: per row and group, the clamp range max|w| (1 - i/20), i < 10,
     * with the least mean squared error of the group's partial outputs on the sampled tokens. Returns the
     * clamp chosen per (row, group), row-major [rows][groups].
     */
    Clip clip(Linear lin, float[] feats) {
        QuantConfig config = configs.apply(lin.name());
        UniformQuantizer grid = new UniformQuantizer(config);
        int rows = lin.outFeatures(), cols = lin.inFeatures(), g = config.groupColumns(cols);
        int tokens = feats.length / cols;
        int stride = Math.max(1, tokens / options.clipTokens());
        int sampled = (tokens + stride - 1) / stride;
        float[] xs = new float[sampled * cols];
        for (int t = 0; t < sampled; t++) System.arraycopy(feats, t * stride * cols, xs, t * cols, cols);
        float[] w = lin.weight();
        double[] params = new double[2];
        int groups = config.groupsPerRow(cols);
        float[] chosen = new float[rows * groups];
        int clipped = 0;
        double[] vals = new double[g], d = new double[g];
        for (int c0 = 0; c0 < cols; c0 += g) {
            int n = Math.min(g, cols - c0);
            // mean_t (sum_c x[t,c] d[c])^2 = d^T G d with G = X^T X / tokens: one Gram matrix per group
            // replaces a pass over the tokens for every row and shrink.
            boolean useGram = n <= sampled;   // else a pass over the tokens is cheaper than n^2 per candidate
            double[] gram = useGram ? new double[n * n] : null;
            for (int t = 0; useGram && t < sampled; t++)
                for (int i = 0; i < n; i++) {
                    double xi = xs[t * cols + c0 + i];
                    if (xi == 0) continue;
                    for (int j = 0; j <= i; j++) gram[i * n + j] += xi * xs[t * cols + c0 + j];
                }
            for (int i = 0; useGram && i < n; i++)
                for (int j = 0; j <= i; j++) gram[j * n + i] = gram[i * n + j] /= sampled;
            for (int r = 0; r < rows; r++) {
                double orgMax = 0;
                for (int c = c0; c < c0 + n; c++) orgMax = Math.max(orgMax, Math.abs(w[r * cols + c]));
                double bestErr = Double.POSITIVE_INFINITY, bestMax = orgMax;
                for (int i = 0; i < (int) (CLIP_MAX_SHRINK * CLIP_GRID); i++) {
                    double maxVal = orgMax * (1 - (double) i / CLIP_GRID);
                    for (int c = 0; c < n; c++) vals[c] = Math.max(-maxVal, Math.min(maxVal, w[r * cols + c0 + c]));
                    grid.fit(vals, 0, n, params);
                    for (int c = 0; c < n; c++) d[c] = grid.value(grid.code(vals[c], params[0], params[1]), params[0], params[1]) - w[r * cols + c0 + c];
                    double err = useGram ? quadraticForm(gram, d, n) : meanSquaredProjection(xs, cols, c0, sampled, d, n);
                    if (err < bestErr) {
                        bestErr = err;
                        bestMax = maxVal;
                    }
                }
                chosen[r * groups + c0 / g] = (float) bestMax;
                if (bestMax < orgMax) {
                    clipped++;
                    float m = (float) bestMax;
                    for (int c = c0; c < c0 + n; c++) w[r * cols + c] = Math.max(-m, Math.min(m, w[r * cols + c]));
                }
            }
        }
        lin.setWeight(w);
        return new Clip(chosen, (double) clipped / chosen.length);
    }
}
