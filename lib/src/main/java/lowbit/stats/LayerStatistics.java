package lowbit.stats;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.Hessian;
import lowbit.calibration.InputHessians;
import lowbit.calibration.SequentialCalibration;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.tensor.Parallel;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Per-layer statistics of weights, linear-layer inputs, the K/V cache and GPTQ Hessians (METHODS.md section 3),
 * as Tablesaw tables.
 *
 * <p>{@link #weights} and {@link #activations} share one schema, so {@code weights(m).append(activations(m, w))}
 * (what {@link #combined} does) is the single table, one row per (layer, module), {@code kind} telling
 * weight / activation / key / value apart:
 * <ul>
 * <li>layer: block index; module: q_proj ... down_proj for weights (OPT: out_proj, fc1, fc2), the input name
 *     attn_in / attn_out / mlp_in / mlp_act for activations, k_cache / v_cache for the cache; name: the full
 *     module name (for activations the block prefix plus the input name, e.g. model.layers.3.attn_in).
 * <li>rows, cols: the tensor's shape; for activations rows = calibration tokens, cols = features.
 * <li>mean, std (population), kurtosis (PEARSON m4/m2^2, normal = 3; excess = kurtosis - 3), max_abs,
 *     max_over_mean_abs, outlier_ratio (share of |x| &gt; 6 std, std of the whole tensor: see {@link Moments}).
 * <li>channel_std_min / _max / _ratio (max / min; Infinity when a channel is constant): the spread of the
 *     per-channel population std. A channel is an OUTPUT channel (row of W) for weights and an input feature
 *     (column of x, over all tokens) for activations and K/V.
 * <li>channel_max_abs_max / _median: per-channel max |x| summarised (the SmoothQuant view; for weights per
 *     output row). token_max_abs_max / _median: per-token max |x|; NaN for weights, which have no tokens.
 * </ul>
 * lm_head is left out (it is not quantized by the block methods, and its input is the final norm's output,
 * outside every block). q/k/v read one input, as do gate/up: each distinct input is measured once and
 * reported once under its input name (the same names as GPTQ's Hessians and {@link #hessians}), never
 * repeated per reader, so averages over rows do not weigh it three times; {@link Linear#input()} maps a linear to it.
 *
 * <p>Activations and Hessians run the calibration windows block by block ({@link SequentialCalibration}, on the
 * unmodified model), so memory holds one block's inputs, not every layer's statistics at once. Windows must
 * all have one length.
 */
public final class LayerStatistics {
    private LayerStatistics() {}

    /** Inputs of a block in order, then the cache. */
    public static final List<String> INPUTS = List.of("attn_in", "attn_out", "mlp_in", "mlp_act");

    // ---------------------------------------------------------------- weights

    /** One row per linear of every block (lm_head excluded), kind "weight". */
    public static Table weights(Transformer model) {
        List<Row> rows = new ArrayList<>();
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l)) rows.add(weightRow(lin));
        return table("weights", rows);
    }

    private static Row weightRow(Linear lin) {
        float[] w = lin.weight();
        int out = lin.outFeatures(), in = lin.inFeatures();
        Moments all = Moments.of(w);
        all.countOutliers(w);
        double[] rowStd = new double[out];
        float[] rowMax = new float[out];
        for (int r = 0; r < out; r++) {
            Moments m = new Moments();
            m.addAll(w, r * in, in);
            rowStd[r] = m.std();
            rowMax[r] = (float) m.maxAbs();
        }
        return row(lin.layer(), lin.module(), lin.name(), "weight", out, in, all, rowStd, rowMax, null);
    }

    // ---------------------------------------------------------------- activations

    /** The activation table and, by the table's name column, every tensor's per-channel max |x| (for charts). */
    public record Activations(Table table, Map<String, float[]> channelMaxAbs) {}

    /** {@link #collectActivations} without progress, table only. */
    public static Table activations(Transformer model, int[][] windows) {
        return collectActivations(model, windows, Progress.NONE).table();
    }

    /**
     * Runs the windows through the model and measures, per block, each distinct linear input (kind "activation")
     * and the keys and values the cache would hold (kind "key" / "value", after RoPE). Two forward passes per
     * block: the first accumulates, the second counts |x| &gt; 6 std against the final std (exact, not estimated).
     */
    public static Activations collectActivations(Transformer model, int[][] windows, Progress progress) {
        List<Row> rows = new ArrayList<>();
        Map<String, float[]> channelMax = new LinkedHashMap<>();
        SequentialCalibration.run(model, windows, new SequentialCalibration.BlockStep() {
            @Override
            public void process(SequentialCalibration.Block block) {
                int layer = block.layer();
                Map<String, Linear> readers = readers(block.linears());
                String prefix = blockPrefix(block.linears().get(0));
                Map<String, TensorAccumulator> acc = new LinkedHashMap<>();
                for (String in : INPUTS) acc.put(in, new TensorAccumulator(readers.get(in).inFeatures()));
                int kv = model.config().numKvHeads() * model.config().headDim();
                acc.put("k_cache", new TensorAccumulator(kv));
                acc.put("v_cache", new TensorAccumulator(kv));
                for (boolean counting : new boolean[] {false, true}) {
                    block.forward(new ForwardHook() {
                        @Override
                        public void linearInput(Linear linear, float[] x, int n) {
                            if (linear.layer() != layer) return;
                            String in = linear.input();
                            if (readers.get(in) == linear) feed(acc.get(in), x, n, counting);
                        }

                        @Override
                        public void keyValue(int l, float[] keys, float[] values, int n) {
                            if (l != layer) return;
                            feed(acc.get("k_cache"), keys, n, counting);
                            feed(acc.get("v_cache"), values, n, counting);
                        }
                    });
                }
                for (var e : acc.entrySet()) {
                    String module = e.getKey();
                    String kind = switch (module) {
                        case "k_cache" -> "key";
                        case "v_cache" -> "value";
                        default -> "activation";
                    };
                    String name = prefix + (kind.equals("activation") ? "." : ".self_attn.") + module;
                    TensorAccumulator a = e.getValue();
                    if (a.rows() == 0) throw new IllegalStateException(name + ": the forward pass never produced this tensor");
                    float[] cmax = a.channelMaxAbs();
                    channelMax.put(name, cmax);
                    rows.add(row(layer, module, name, kind, Math.toIntExact(a.rows()), a.cols, a.all, a.channelStd(), cmax,
                            a.tokenMaxAbs()));
                }
            }

            @Override
            public int passes() {
                return 2;
            }
        }, progress);
        return new Activations(table("activations", rows), channelMax);
    }

    private static void feed(TensorAccumulator a, float[] x, int n, boolean counting) {
        if (counting) a.countOutliers(x, n);
        else a.add(x, n);
    }

    /** The first linear of the block reading each input: the one whose input hook is measured. */
    private static Map<String, Linear> readers(List<Linear> linears) {
        Map<String, Linear> r = new LinkedHashMap<>();
        for (Linear lin : linears) r.putIfAbsent(lin.input(), lin);
        for (String in : INPUTS)
            if (!r.containsKey(in)) throw new IllegalArgumentException("block of " + linears + " has no linear reading " + in);
        return r;
    }

    /** model.layers.3.self_attn.q_proj -> model.layers.3 */
    private static String blockPrefix(Linear first) {
        String n = first.name();
        int a = n.lastIndexOf('.'), b = a > 0 ? n.lastIndexOf('.', a - 1) : -1;
        return b > 0 ? n.substring(0, b) : "layers." + first.layer();
    }

    /** weights(model) with activations(model, windows) appended: the one table. */
    public static Table combined(Transformer model, int[][] windows) {
        return weights(model).append(activations(model, windows)).setName("layer statistics");
    }

    // ---------------------------------------------------------------- Hessians

    /** {@link #hessians(Transformer, int[][], int, Progress)} without progress. */
    public static Table hessians(Transformer model, int[][] windows, int topK) {
        return hessians(model, windows, topK, Progress.NONE);
    }

    /**
     * GPTQ's Hessian H = 2/n sum_windows X^T X (running average over windows, {@link Hessian#add}) of every
     * distinct linear input of every block, on the full-precision model: columns layer, input, n (columns of
     * H), trace (sum of diag H), eig_1 .. eig_k (largest first, Lanczos: {@link TopEigen}).
     */
    public static Table hessians(Transformer model, int[][] windows, int topK, Progress progress) {
        if (topK < 1) throw new IllegalArgumentException("topK must be >= 1, got " + topK);
        IntColumn layerCol = IntColumn.create("layer"), nCol = IntColumn.create("n");
        StringColumn inputCol = StringColumn.create("input");
        DoubleColumn traceCol = DoubleColumn.create("trace");
        DoubleColumn[] eig = new DoubleColumn[topK];
        for (int i = 0; i < topK; i++) eig[i] = DoubleColumn.create("eig_" + (i + 1));
        try (Parallel par = new Parallel(model.threads())) {
            SequentialCalibration.run(model, windows, block -> {
                int layer = block.layer();
                Map<String, Linear> readers = readers(block.linears());
                for (String in : INPUTS) {
                    int n = readers.get(in).inFeatures();
                    if (topK > n) throw new IllegalArgumentException("topK " + topK + " exceeds the " + n + " columns of " + in);
                }
                InputHessians h = new InputHessians(layer, readers.values(), par);
                block.forward(h);
                for (String in : INPUTS) {
                    Hessian g = h.of(in);
                    int n = g.columns();
                    double[] hm = g.values();
                    double trace = g.trace();
                    double[] top = TopEigen.largest(hm, n, topK).values();
                    layerCol.append(layer);
                    inputCol.append(in);
                    nCol.append(n);
                    traceCol.append(trace);
                    for (int i = 0; i < topK; i++) eig[i].append(top[i]);
                }
            }, progress);
        }
        Table t = Table.create("hessians", layerCol, inputCol, nCol, traceCol);
        t.addColumns(eig);
        return t;
    }

    // ---------------------------------------------------------------- table

    private record Row(int layer, String module, String name, String kind, int rows, int cols, Moments m,
                       double chStdMin, double chStdMax, double chMaxMax, double chMaxMedian, double tokMaxMax,
                       double tokMaxMedian) {}

    private static Row row(int layer, String module, String name, String kind, int rows, int cols, Moments m,
                           double[] channelStd, float[] channelMax, float[] tokenMax) {
        double sMin = Double.POSITIVE_INFINITY, sMax = 0;
        for (double s : channelStd) {
            sMin = Math.min(sMin, s);
            sMax = Math.max(sMax, s);
        }
        return new Row(layer, module, name, kind, rows, cols, m, sMin, sMax, max(channelMax), median(channelMax),
                tokenMax == null ? Double.NaN : max(tokenMax), tokenMax == null ? Double.NaN : median(tokenMax));
    }

    static double max(float[] a) {
        double m = Double.NEGATIVE_INFINITY;
        for (float v : a) m = Math.max(m, v);
        return m;
    }

    /** The median (mean of the two middle values for an even count). */
    static double median(float[] a) {
        if (a.length == 0) return Double.NaN;
        float[] s = a.clone();
        Arrays.sort(s);
        int h = s.length / 2;
        return s.length % 2 == 1 ? s[h] : ((double) s[h - 1] + s[h]) / 2;
    }

    private static Table table(String title, List<Row> rows) {
        IntColumn layer = IntColumn.create("layer"), nRows = IntColumn.create("rows"), nCols = IntColumn.create("cols");
        StringColumn module = StringColumn.create("module"), name = StringColumn.create("name"), kind = StringColumn.create("kind");
        String[] doubles = {"mean", "std", "kurtosis", "max_abs", "max_over_mean_abs", "outlier_ratio", "channel_std_min",
                "channel_std_max", "channel_std_ratio", "channel_max_abs_max", "channel_max_abs_median", "token_max_abs_max",
                "token_max_abs_median"};
        DoubleColumn[] d = new DoubleColumn[doubles.length];
        for (int i = 0; i < d.length; i++) d[i] = DoubleColumn.create(doubles[i]);
        for (Row r : rows) {
            layer.append(r.layer());
            module.append(r.module());
            name.append(r.name());
            kind.append(r.kind());
            nRows.append(r.rows());
            nCols.append(r.cols());
            Moments m = r.m();
            double[] v = {m.mean(), m.std(), m.pearsonKurtosis(), m.maxAbs(), m.maxOverMeanAbs(), m.outlierRatio(),
                    r.chStdMin(), r.chStdMax(), r.chStdMax() / r.chStdMin(), r.chMaxMax(), r.chMaxMedian(), r.tokMaxMax(),
                    r.tokMaxMedian()};
            for (int i = 0; i < d.length; i++) d[i].append(v[i]);
        }
        Table t = Table.create(title, layer, module, name, kind, nRows, nCols);
        t.addColumns(d);
        return t;
    }
}
