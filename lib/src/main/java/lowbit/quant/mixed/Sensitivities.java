package lowbit.quant.mixed;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.InputHessians;
import lowbit.calibration.SequentialCalibration;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.stats.Moments;
import lowbit.tensor.Parallel;
import lowbit.tensor.VectorMath;
import org.apache.commons.math3.stat.correlation.SpearmansCorrelation;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * How much each block linear costs the model at each candidate width, measured and predicted.
 *
 * <p>Measured: the mean KL divergence to the float model ({@link KldProbe}) with that one linear at the probe width and
 * every other linear in float, per window, so that the split-half rank correlation (even windows against odd ones,
 * Spearman over the linears) says whether the ranking is stable at this many tokens. Predicted, from one calibration
 * pass over the float model (GPTQ's input Hessian H = 2/N sum x x^T of each linear's input):
 * <ul>
 * <li>hessian: the Hessian-weighted error sum over rows of d^T H d, d = w - q (GPTQ's layer objective);</li>
 * <li>fisher: HAWQ-V2's trace form trace(H) / n x ||W - Q||^2, with H the layer-local Hessian (the Fisher information of
 *     the layer's output under a Gaussian model; the runtime has no backward pass for the loss's own Fisher);</li>
 * <li>kurtosis: the weight's Pearson kurtosis times its relative error ||W - Q||^2 / ||W||^2; the activation kurtosis
 *     of each linear's input is reported beside it.</li>
 * </ul>
 * Each is computed at every width from the candidates' own weights (GPTQ's for GPTQ), so it predicts what the method does.
 */
public final class Sensitivities {
    public enum Predictor {
        KLD, HESSIAN, FISHER, KURTOSIS;

        public String label() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        public static Predictor parse(String s) {
            for (Predictor p : values()) if (p.label().equals(s)) return p;
            throw new IllegalArgumentException("--predictor must be one of kld, hessian, fisher, kurtosis, got '" + s + "'");
        }
    }

    private final List<String> linears;
    private final List<String> modules;
    private final int[] layers;
    private final List<Integer> widths;
    private final List<Integer> probeWidths;
    private final int probeWidth;        // the first probe width: the one split halves and correlations are reported at
    private final double[] kld;          // per linear at the probe width, NaN when not measured
    private final double[][] kldAt;      // [linear][width index], NaN where not measured
    private final double[][] kldWindows; // [linear][window] at the probe width, empty rows when not measured
    private int lazilyMeasured;
    private final double[][] hessian;    // [linear][width index]
    private final double[][] fisher;
    private final double[][] relError;
    private final double[] weightKurtosis;
    private final double[] activationKurtosis;
    private final long positions;
    private final double seconds;

    private Sensitivities(List<String> linears, List<String> modules, int[] layers, List<Integer> widths, List<Integer> probeWidths,
                          double[][] kldAt, double[][] kldWindows, double[][] hessian, double[][] fisher, double[][] relError, double[] weightKurtosis,
                          double[] activationKurtosis, long positions, double seconds) {
        this.linears = linears;
        this.modules = modules;
        this.layers = layers;
        this.widths = widths;
        this.probeWidths = List.copyOf(probeWidths);
        this.probeWidth = probeWidths.isEmpty() ? widths.get(0) : probeWidths.get(0);
        this.kldAt = kldAt;
        this.kld = new double[linears.size()];
        for (int i = 0; i < kld.length; i++) kld[i] = kldAt[i][widths.indexOf(probeWidth)];
        this.kldWindows = kldWindows;
        this.hessian = hessian;
        this.fisher = fisher;
        this.relError = relError;
        this.weightKurtosis = weightKurtosis;
        this.activationKurtosis = activationKurtosis;
        this.positions = positions;
        this.seconds = seconds;
    }

    /**
     * The proxies at every width from a calibration pass over {@code floatModel} on {@code calibration}, and, when
     * {@code probe} is given, each linear's KL divergence at each of {@code probeWidths} measured on the probe's windows
     * (the first is the one whose split halves and correlations are reported).
     */
    public static Sensitivities measure(Candidates candidates, Transformer floatModel, int[][] calibration, KldProbe probe,
                                        List<Integer> probeWidths, Progress progress) {
        return measure(candidates, floatModel, calibration, probe, probeWidths, true, progress);
    }

    /**
     * As above; without {@code everyHessianWidth} the Hessian-weighted error, which costs rows x columns^2 per linear and
     * width, is computed at the first probe width only (for the correlation table), and {@link Predictor#HESSIAN} is not
     * available.
     */
    public static Sensitivities measure(Candidates candidates, Transformer floatModel, int[][] calibration, KldProbe probe,
                                        List<Integer> probeWidths, boolean everyHessianWidth, Progress progress) {
        long t0 = System.nanoTime();
        List<Integer> widths = candidates.widths();
        if (probe != null && probeWidths.isEmpty()) throw new IllegalArgumentException("--probe-bits: give at least one width");
        for (int b : probeWidths)
            if (!widths.contains(b)) throw new IllegalArgumentException("--probe-bits " + probeWidths + ": " + b + " is not one of --candidates " + widths);
        if (new java.util.HashSet<>(probeWidths).size() != probeWidths.size())
            throw new IllegalArgumentException("--probe-bits " + probeWidths + " lists a width twice");
        List<Linear> all = new ArrayList<>();
        for (int l = 0; l < floatModel.config().numLayers(); l++) all.addAll(floatModel.blockLinears(l));
        int n = all.size(), k = widths.size();
        Map<String, Integer> index = new LinkedHashMap<>();
        for (int i = 0; i < n; i++) index.put(all.get(i).name(), i);
        double[][] hessian = new double[n][k], fisher = new double[n][k], rel = new double[n][k];
        double[] wk = new double[n], ak = new double[n];
        try (Parallel par = new Parallel(floatModel.threads())) {
            SequentialCalibration.run(floatModel, calibration, block -> {
                InputHessians h = new InputHessians(block.layer(), block.linears(), par);
                Map<String, Moments> inputs = new LinkedHashMap<>();
                block.forward(new ForwardHook() {
                    @Override
                    public void linearInput(Linear linear, float[] x, int rows) {
                        h.linearInput(linear, x, rows);
                        if (linear.layer() == block.layer())
                            inputs.computeIfAbsent(linear.input(), key -> new Moments()).addAll(x, 0, rows * linear.inFeatures());
                    }
                });
                for (Linear lin : block.linears()) {
                    int i = index.get(lin.name());
                    float[] w = lin.weight();
                    double[] hv = h.of(lin).values();
                    double trace = h.of(lin).trace(), norm = sumSquares(w);
                    wk[i] = Moments.of(w).pearsonKurtosis();
                    ak[i] = inputs.get(lin.input()).pearsonKurtosis();
                    for (int j = 0; j < k; j++) {
                        float[] q = candidates.get(lin.name(), widths.get(j)).dequantize();
                        hessian[i][j] = everyHessianWidth || widths.get(j).equals(probeWidths.isEmpty() ? widths.get(0) : probeWidths.get(0))
                                ? hessianError(w, q, hv, lin.outFeatures(), lin.inFeatures(), par) : Double.NaN;
                        double err = sumSquaredDifference(w, q);
                        fisher[i][j] = trace / lin.inFeatures() * err;
                        rel[i][j] = norm > 0 ? err / norm : 0;
                    }
                }
            }, progress);
        }
        double[][] kldAt = new double[n][k];
        double[][] perWindow = new double[n][0];
        for (double[] row : kldAt) java.util.Arrays.fill(row, Double.NaN);
        long positions = 0;
        List<Integer> probes = probe == null ? List.of() : probeWidths;
        if (probe != null) {
            positions = probe.positions();
            try (Progress.Task task = progress.start("sensitivity (kld)", (long) n * probes.size(), "linear")) {
                for (int i = 0; i < n; i++) {
                    Linear lin = all.get(i);
                    task.message(lin.name());
                    for (int b : probes) {
                        KldProbe.Measurement m = probe.with(Map.of(lin, candidates.get(lin.name(), b).dequantize()));
                        kldAt[i][widths.indexOf(b)] = m.meanKld();
                        if (b == probes.get(0)) perWindow[i] = m.kld();
                        task.step(1);
                    }
                }
            }
        }
        List<String> names = all.stream().map(Linear::name).toList();
        List<String> modules = all.stream().map(Linear::module).toList();
        int[] layers = all.stream().mapToInt(Linear::layer).toArray();
        return new Sensitivities(names, modules, layers, widths, probes, kldAt, perWindow, hessian, fisher, rel, wk, ak, positions,
                (System.nanoTime() - t0) / 1e9);
    }

    public List<String> linears() {
        return linears;
    }

    public List<Integer> widths() {
        return widths;
    }

    public int probeWidth() {
        return probeWidth;
    }

    /** Every width measured by KL divergence, the first being {@link #probeWidth()}. */
    public List<Integer> probeWidths() {
        return probeWidths;
    }

    public boolean measured() {
        return !Double.isNaN(kld[0]);
    }

    /** Tokens scored per measurement of one linear. */
    public long positions() {
        return positions;
    }

    public double seconds() {
        return seconds;
    }

    /**
     * Spearman correlation, over the linears, of the KL divergences measured on the even windows with those on the odd
     * ones: how stable the measured ranking is at half the tokens (NaN without a measurement on >= 2 windows).
     */
    public double splitHalfCorrelation() {
        return splitHalfCorrelation(measured() ? kldWindows[0].length : 0);
    }

    /**
     * {@link #splitHalfCorrelation()} over the first {@code windows} windows only (even ones against odd ones): how the
     * ranking's stability grows with the tokens measured, from one measurement (NaN below 2 windows).
     */
    public double splitHalfCorrelation(int windows) {
        if (!measured() || windows < 2 || windows > kldWindows[0].length) return Double.NaN;
        double[] a = new double[linears.size()], b = new double[linears.size()];
        for (int i = 0; i < a.length; i++) {
            a[i] = half(kldWindows[i], windows, 0);
            b[i] = half(kldWindows[i], windows, 1);
        }
        return spearman(a, b);
    }

    private static double half(double[] v, int windows, int parity) {
        double s = 0;
        int n = 0;
        for (int w = parity; w < windows; w += 2) {
            s += v[w];
            n++;
        }
        return s / n;
    }

    /** Whether linear i's KL divergence at width index j was measured (not carried from another width). */
    public boolean measuredAt(int i, int j) {
        return !Double.isNaN(kldAt[i][j]);
    }

    /**
     * Measures linear i at width index j with {@code probe} (the probe the sensitivities came from) and keeps the value,
     * so that {@link #losses} uses it instead of a carried one from now on.
     */
    void measureAt(KldProbe probe, Candidates candidates, int i, int j) {
        String name = linears.get(i);
        kldAt[i][j] = probe.with(Map.of(probe.model().linear(name), candidates.get(name, widths.get(j)).dequantize())).meanKld();
        lazilyMeasured++;
    }

    /** Widths measured after the sensitivities, because an allocation chose them (see MixedPrecision.Session#allocate). */
    public int lazilyMeasured() {
        return lazilyMeasured;
    }

    /** Windows measured per linear (0 when not measured). */
    public int windows() {
        return measured() ? kldWindows[0].length : 0;
    }

    /**
     * Split-half rank correlation at 2, 4, ... windows (every even prefix of the windows measured), with the Spearman-Brown
     * reliability of the whole prefix: what the default token budget is chosen from.
     */
    public Table reliability() {
        Table t = Table.create("ranking stability against tokens measured", IntColumn.create("windows"), IntColumn.create("tokens"),
                DoubleColumn.create("split_half_spearman"), DoubleColumn.create("spearman_brown"));
        long perWindow = windows() == 0 ? 0 : positions / windows();
        for (int w = 2; w <= windows(); w += 2) {
            double r = splitHalfCorrelation(w);
            t.intColumn("windows").append(w);
            t.intColumn("tokens").append((int) (w * perWindow));
            t.doubleColumn("split_half_spearman").append(r);
            t.doubleColumn("spearman_brown").append(2 * r / (1 + r));
        }
        return t;
    }

    /** The Spearman-Brown step-up of {@link #splitHalfCorrelation}: the expected reliability at the full token count. */
    public double splitHalfReliability() {
        double r = splitHalfCorrelation();
        return 2 * r / (1 + r);
    }

    /**
     * Predicted loss of every linear at every width, in nats of KL divergence for {@link Predictor#KLD} (measured at the
     * probe widths, carried to the other widths from the nearest one measured, the lower on a tie, by the ratio of the
     * linear's own squared quantization errors ||W - Q_b||^2 / ||W - Q_measured||^2; then made non-increasing in the width, since more bits on the same grid never
     * cost more) and in the proxy's own units otherwise: only sums within one predictor are compared.
     */
    public double[][] losses(Predictor p) {
        int n = linears.size(), k = widths.size();
        double[][] out = new double[n][k];
        if (p == Predictor.KLD && !measured()) throw new IllegalStateException("the kld predictor needs measured sensitivities");
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < k; j++)
                out[i][j] = switch (p) {
                    case HESSIAN -> {
                        if (Double.isNaN(hessian[i][j])) throw new IllegalStateException("the hessian predictor needs the Hessian error at every width");
                        yield hessian[i][j];
                    }
                    case FISHER -> fisher[i][j];
                    case KURTOSIS -> weightKurtosis[i] * relError[i][j];
                    case KLD -> {
                        int m = nearestMeasured(i, j);
                        // a KL divergence is >= 0 in exact arithmetic; the floor keeps a cost for fewer bits on every linear
                        double k0 = Math.max(kldAt[i][m], 1e-9);
                        double e0 = relError[i][m];
                        yield j == m ? k0 : e0 > 0 ? k0 * relError[i][j] / e0 : k0;
                    }
                };
            if (p == Predictor.KLD)
                for (int j = 1; j < k; j++) out[i][j] = Math.min(out[i][j], out[i][j - 1]);
        }
        return out;
    }

    /** The index of linear i's measured width nearest to width index j (the lower on a tie). */
    private int nearestMeasured(int i, int j) {
        int best = -1;
        for (int m = 0; m < widths.size(); m++) {
            if (!measuredAt(i, m)) continue;
            int d = Math.abs(widths.get(m) - widths.get(j));
            if (best < 0 || d < Math.abs(widths.get(best) - widths.get(j))) best = m;
        }
        return best;
    }

    /** Spearman correlation of each predictor with the measured KL divergence at the probe width, over the linears. */
    public Table correlations() {
        Table t = Table.create("predictors against the measured KL divergence", StringColumn.create("predictor"),
                IntColumn.create("linears"), DoubleColumn.create("spearman"));
        if (!measured()) return t;
        int probe = widths.indexOf(probeWidth), n = linears.size();
        double[] he = new double[n], fi = new double[n], ku = new double[n], wk = new double[n], ak = new double[n];
        for (int i = 0; i < n; i++) {
            he[i] = hessian[i][probe];
            fi[i] = fisher[i][probe];
            ku[i] = weightKurtosis[i] * relError[i][probe];
            wk[i] = weightKurtosis[i];
            ak[i] = activationKurtosis[i];
        }
        Map<String, double[]> rows = new LinkedHashMap<>();
        rows.put("kld (split halves)", null);
        rows.put("hessian", he);
        rows.put("fisher", fi);
        rows.put("kurtosis", ku);
        rows.put("weight kurtosis alone", wk);
        rows.put("activation kurtosis alone", ak);
        for (var e : rows.entrySet()) {
            t.stringColumn("predictor").append(e.getKey());
            t.intColumn("linears").append(n);
            t.doubleColumn("spearman").append(e.getValue() == null ? splitHalfCorrelation() : spearman(kld, e.getValue()));
        }
        return t;
    }

    /** One row per linear: where it is, the measured KL divergence (and its halves) and every proxy at every width. */
    public Table table() {
        Table t = Table.create("sensitivity per linear", IntColumn.create("layer"), StringColumn.create("module"), StringColumn.create("name"),
                DoubleColumn.create("kld"), DoubleColumn.create("kld_even"), DoubleColumn.create("kld_odd"),
                DoubleColumn.create("weight_kurtosis"), DoubleColumn.create("activation_kurtosis"));
        for (int b : probeWidths) if (b != probeWidth) t.addColumns(DoubleColumn.create("kld_w" + b));
        for (int b : widths)
            t.addColumns(DoubleColumn.create("hessian_w" + b), DoubleColumn.create("fisher_w" + b), DoubleColumn.create("rel_error_w" + b));
        for (int i = 0; i < linears.size(); i++) {
            t.intColumn("layer").append(layers[i]);
            t.stringColumn("module").append(modules.get(i));
            t.stringColumn("name").append(linears.get(i));
            t.doubleColumn("kld").append(kld[i]);
            for (int b : probeWidths) if (b != probeWidth) t.doubleColumn("kld_w" + b).append(kldAt[i][widths.indexOf(b)]);
            t.doubleColumn("kld_even").append(measured() && windows() >= 2 ? half(kldWindows[i], windows(), 0) : Double.NaN);
            t.doubleColumn("kld_odd").append(measured() && windows() >= 2 ? half(kldWindows[i], windows(), 1) : Double.NaN);
            t.doubleColumn("weight_kurtosis").append(weightKurtosis[i]);
            t.doubleColumn("activation_kurtosis").append(activationKurtosis[i]);
            for (int j = 0; j < widths.size(); j++) {
                t.doubleColumn("hessian_w" + widths.get(j)).append(hessian[i][j]);
                t.doubleColumn("fisher_w" + widths.get(j)).append(fisher[i][j]);
                t.doubleColumn("rel_error_w" + widths.get(j)).append(relError[i][j]);
            }
        }
        return t;
    }

    public static double spearman(double[] a, double[] b) {
        if (a.length != b.length || a.length < 2) throw new IllegalArgumentException("need two equally long columns of >= 2 values");
        return new SpearmansCorrelation().correlation(a, b);
    }

    /** sum over rows of d^T H d with d = w - q; rows split over {@code par}, summed in row order (any thread count, same bits). */
    public static double hessianError(float[] w, float[] q, double[] h, int rows, int cols, Parallel par) {
        double[] perRow = new double[rows];
        par.forEach(rows, r -> {
            double[] d = new double[cols];
            for (int j = 0; j < cols; j++) d[j] = (double) w[r * cols + j] - q[r * cols + j];
            double total = 0;
            for (int i = 0; i < cols; i++) {
                if (d[i] == 0) continue;
                total += d[i] * VectorMath.dot(h, i * cols, d, cols);
            }
            perRow[r] = total;
        });
        double total = 0;
        for (double v : perRow) total += v;
        return total;
    }

    private static double sumSquares(float[] w) {
        double s = 0;
        for (float v : w) s += (double) v * v;
        return s;
    }

    private static double sumSquaredDifference(float[] w, float[] q) {
        double s = 0;
        for (int i = 0; i < w.length; i++) {
            double d = (double) w[i] - q[i];
            s += d * d;
        }
        return s;
    }
}
