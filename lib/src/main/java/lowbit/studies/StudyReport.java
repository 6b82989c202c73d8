package lowbit.studies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lowbit.plots.Charts;
import lowbit.plots.Figure;
import lowbit.plots.Html;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.mixed.Comparison;
import lowbit.results.CodeVersion;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The study's report: every chart is a function of one of {@link Study.Result}'s tables, so a notebook draws
 * the same figure with one call ({@code StudyReport.methodsChart(result.methods())}). Charts come first in each
 * part, with axis titles in words and units; tables follow, rounded to meaningful digits, long ones folded.
 */
public final class StudyReport {
    private StudyReport() {}

    /** Tables longer than this are folded under their caption ({@code <details>}). */
    static final int INLINE_ROWS = 20;

    /** Sensitivity bars shown: the most harmful linears. */
    static final int TOP_LINEARS = 30;

    static final String BPW_TITLE = "Bits per weight (scales and zeros included)";

    /** Heatmap of one statistic of one tensor kind (weight, activation, key, value) by block x module. */
    public static Figure statisticHeatmap(Table statistics, String kind, String column, String title) {
        return Charts.heatmap(ofKind(statistics, kind), "layer", "module", column, title).withAxisTitles(moduleTitle(kind), "Block");
    }

    /** {@link #statisticHeatmap} on a log colour scale: for kurtosis and max |x|, which span decades. */
    public static Figure logStatisticHeatmap(Table statistics, String kind, String column, String title) {
        return Charts.logHeatmap(ofKind(statistics, kind), "layer", "module", column, title).withAxisTitles(moduleTitle(kind), "Block");
    }

    /** Trace of each Hessian by block x input, log colour scale (a few inputs carry most of it). */
    public static Figure hessianTraceHeatmap(Table hessians) {
        return Charts.logHeatmap(hessians, "layer", "input", "trace", "Hessian trace (2/n X^T X) by block and input")
                .withAxisTitles("Linear input", "Block").withColorbarTitle("trace (log scale)");
    }

    /**
     * Perplexity against bits per weight, one line per method and grouping (per-channel and g128 are different
     * grids, so they are never joined), weights only (activation and KV variants are in the table and the bars),
     * with the float model as a dashed line.
     */
    public static Figure methodsChart(Table methods, String dataset) {
        Figure f = Charts.lines(weightOnly(methods).sortAscendingOn("bits_per_weight"), "bits_per_weight", "ppl", "series",
                "Perplexity vs bits per weight, weight-only quantization", true);
        return withFloat(f, methods).withAxisTitles(BPW_TITLE, "Perplexity on " + dataset + " (log scale)");
    }

    /**
     * Mean KL divergence to the float model against bits per weight, the same lines as {@link #methodsChart}; rows
     * without a KL divergence (stored before it was measured) are left out. It separates configurations whose
     * perplexities are within noise of each other (W8 and the float model, KV8 and KV-float).
     */
    public static Figure kldChart(Table methods, String dataset) {
        Table t = weightOnly(methods);
        t = t.where(t.doubleColumn("kld_mean").isNotMissing());
        return Charts.lines(t.sortAscendingOn("bits_per_weight"), "bits_per_weight", "kld_mean", "series",
                        "KL divergence to the float model vs bits per weight, weight-only quantization", true)
                .withAxisTitles(BPW_TITLE, "Mean KL(float || quantized) per token on " + dataset + " (nats, log scale)");
    }

    /**
     * The zero-shot table as the Qwen3 quantization study prints it: one row per configuration, a column per task
     * (acc_norm where lm-eval reports it, else acc), the mean over tasks, and the items per task.
     */
    public static Table zeroShotWide(Table zeroShot) {
        // in the order the study ran them (Tablesaw's unique() does not keep it)
        List<String> tasks = List.copyOf(new java.util.LinkedHashSet<>(zeroShot.stringColumn("task").asList()));
        Table t = Table.create("zero-shot accuracy by configuration (acc_norm where lm-eval reports it, else acc)",
                StringColumn.create("spec"), StringColumn.create("method"), DoubleColumn.create("bits_per_weight"));
        for (String task : tasks) t.addColumns(DoubleColumn.create(task));
        t.addColumns(DoubleColumn.create("mean"), IntColumn.create("items_per_task"));
        for (String spec : new java.util.LinkedHashSet<>(zeroShot.stringColumn("spec").asList())) {
            Table rows = zeroShot.where(zeroShot.stringColumn("spec").isEqualTo(spec));
            t.stringColumn("spec").append(spec);
            t.stringColumn("method").append(rows.stringColumn("method").get(0));
            t.doubleColumn("bits_per_weight").append(rows.doubleColumn("bits_per_weight").get(0));
            double sum = 0;
            int n = 0;
            for (String task : tasks) {
                Table one = rows.where(rows.stringColumn("task").isEqualTo(task));
                double v = one.rowCount() == 0 ? Double.NaN : headline(one, 0);
                t.doubleColumn(task).append(v);
                if (!Double.isNaN(v)) {
                    sum += v;
                    n++;
                }
            }
            t.doubleColumn("mean").append(n == 0 ? Double.NaN : sum / n);
            t.intColumn("items_per_task").append(rows.intColumn("items").get(0));
        }
        return t;
    }

    /** The accuracy a task is judged by: acc_norm where lm-eval reports it (HellaSwag, ARC, PIQA), else acc. */
    private static double headline(Table zeroShot, int row) {
        double norm = zeroShot.doubleColumn("acc_norm").getDouble(row);
        return Double.isNaN(norm) ? zeroShot.doubleColumn("acc").getDouble(row) : norm;
    }

    /** Mean zero-shot accuracy over the tasks against bits per weight, a line per method and grouping, the float model dashed. */
    public static Figure zeroShotChart(Table zeroShot) {
        Table wide = zeroShotWide(zeroShot);
        Table q = wide.where(wide.stringColumn("method").isNotEqualTo("fp"));
        StringColumn series = StringColumn.create("series");
        for (int i = 0; i < q.rowCount(); i++) {
            QuantSpec s = QuantSpec.parse(q.stringColumn("spec").get(i));
            series.append(s.method() + (s.groupSize() == QuantConfig.PER_CHANNEL ? " per-channel" : " g" + s.groupSize()));
        }
        q.addColumns(series);
        Figure f = Charts.lines(q.sortAscendingOn("bits_per_weight"), "bits_per_weight", "mean", "series",
                "Zero-shot accuracy vs bits per weight (mean over " + (wide.columnCount() - 5) + " tasks, first "
                        + wide.intColumn("items_per_task").get(0) + " items each)", false);
        for (int i = 0; i < wide.rowCount(); i++)
            if (wide.stringColumn("method").get(i).equals("fp"))
                f = Charts.withReferenceLine(f, wide.doubleColumn("mean").get(i),
                        String.format(Locale.ROOT, "float model (fp32): %.3f", wide.doubleColumn("mean").get(i)));
        return f.withAxisTitles(BPW_TITLE, "Mean accuracy (acc_norm where lm-eval reports it)");
    }

    /**
     * The float model's mean accuracy, and each configuration's difference from it with the standard error of that
     * difference: at a small limit most differences are noise, and the finding says how large the noise is.
     */
    static List<String> zeroShotFindings(Table zeroShot) {
        if (zeroShot.rowCount() == 0) return List.of();
        Table wide = zeroShotWide(zeroShot);
        int fpRow = -1;
        for (int i = 0; i < wide.rowCount(); i++) if (wide.stringColumn("method").get(i).equals("fp")) fpRow = i;
        if (fpRow < 0) return List.of();
        double fp = wide.doubleColumn("mean").getDouble(fpRow);
        double fpSe = meanStderr(zeroShot, wide.stringColumn("spec").get(fpRow));
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "Zero-shot (lm-eval 0.4.13 tasks, first %d items each): the float model's mean accuracy is %.3f; change per configuration:",
                wide.intColumn("items_per_task").get(fpRow), fp));
        for (int i = 0; i < wide.rowCount(); i++) {
            if (i == fpRow) continue;
            String spec = wide.stringColumn("spec").get(i);
            sb.append(String.format(Locale.ROOT, " %s %+.3f (± %.3f);", spec, wide.doubleColumn("mean").getDouble(i) - fp,
                    Math.hypot(meanStderr(zeroShot, spec), fpSe)));
        }
        sb.setLength(sb.length() - 1);
        return List.of(sb.append(". The ± is one standard error of the difference, counting the two as independent (an overestimate: both score the same items).").toString());
    }

    /** Standard error of a configuration's mean over tasks: sqrt(sum of the tasks' squared stderrs) / tasks. */
    private static double meanStderr(Table zeroShot, String spec) {
        Table rows = zeroShot.where(zeroShot.stringColumn("spec").isEqualTo(spec));
        double var = 0;
        for (int i = 0; i < rows.rowCount(); i++) {
            double norm = rows.doubleColumn("acc_norm").getDouble(i);
            double se = Double.isNaN(norm) ? rows.doubleColumn("acc_stderr").getDouble(i) : rows.doubleColumn("acc_norm_stderr").getDouble(i);
            var += Double.isNaN(se) ? 0 : se * se;
        }
        return Math.sqrt(var) / rows.rowCount();
    }

    /** Whether any configuration carries a KL divergence. */
    static boolean hasKld(Table methods) {
        return methods.doubleColumn("kld_mean").isNotMissing().size() > 0;
    }

    /** The weight-only quantized rows, with a series per method, grouping (per-channel and g128 are different grids) and rotation. */
    private static Table weightOnly(Table methods) {
        Table t = methods.where(methods.stringColumn("activations").isEqualTo("fp").and(methods.stringColumn("kv_cache").isEqualTo("fp"))
                .and(methods.stringColumn("method").isNotEqualTo("fp")));
        StringColumn series = StringColumn.create("series");
        for (int i = 0; i < t.rowCount(); i++) series.append(weightSeries(QuantSpec.parse(t.stringColumn("spec").get(i))));
        return t.addColumns(series);
    }

    /** "gptq g128", "rtn per-channel + QuaRot": a spec's weight method, grouping and rotation. */
    private static String weightSeries(QuantSpec q) {
        return q.method() + (q.groupSize() == QuantConfig.PER_CHANNEL ? " per-channel" : " g" + q.groupSize()) + (q.rotates() ? " + QuaRot" : "");
    }

    /**
     * QuaRot's comparison: 4-bit weights with float, 8-bit and 4-bit activations (and a 4-bit KV cache), one bar per
     * weight method, grouping and rotation, for every method and grouping that the table has with quantized activations
     * and a rotated counterpart or a float-activation baseline. Empty when the table has no rotated row.
     */
    public static Table rotationTable(Table methods) {
        Table t = methods.where(methods.intColumn("weight_bits").isEqualTo(4).and(methods.stringColumn("method").isNotEqualTo("fp")));
        Table out = Table.create("rotation", StringColumn.create("precision"), StringColumn.create("series"),
                StringColumn.create("spec"), DoubleColumn.create("ppl"));
        if (!methods.stringColumn("rotation").contains(QuantSpec.Rotation.QUAROT.term())) return out;
        java.util.Set<String> withActivations = new java.util.HashSet<>();
        for (int i = 0; i < t.rowCount(); i++) {
            QuantSpec q = QuantSpec.parse(t.stringColumn("spec").get(i));
            if (q.activationBits() != 0) withActivations.add(q.withRotation(QuantSpec.Rotation.NONE).withActivations(0).withKv(0).text());
        }
        for (int i = 0; i < t.rowCount(); i++) {
            QuantSpec q = QuantSpec.parse(t.stringColumn("spec").get(i));
            if (!withActivations.contains(q.withRotation(QuantSpec.Rotation.NONE).withActivations(0).withKv(0).text())) continue;
            out.stringColumn("precision").append("W4A" + (q.activationBits() == 0 ? 16 : q.activationBits()) + (q.kvBits() == 0 ? "" : " KV" + q.kvBits()));
            out.stringColumn("series").append(weightSeries(q));
            out.stringColumn("spec").append(q.text());
            out.doubleColumn("ppl").append(t.doubleColumn("ppl").get(i));
        }
        return out;
    }

    /** {@link #rotationTable} as grouped bars (a log axis when one configuration collapses), the float perplexity in the title. */
    public static Figure rotationChart(Table methods, String dataset) {
        double fp = value(methods, "spec", "fp", "ppl");
        return Charts.groupedBars(rotationTable(methods), "precision", "ppl", "series",
                        String.format(Locale.ROOT, "4-bit weights with quantized activations, with and without QuaRot's rotation (float: %.2f)", fp))
                .withAxisTitles("Weights, activations (W4A16: float activations) and KV cache", "Perplexity on " + dataset);
    }

    /** Per rotated spec: its perplexity beside the same spec without rotation and the weight-only baseline (W4A16). */
    static List<String> rotationFindings(Table methods) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < methods.rowCount(); i++) {
            QuantSpec q = QuantSpec.parse(methods.stringColumn("spec").get(i));
            if (!q.rotates() || !q.quantizesWeights()) continue;
            String plain = q.withRotation(QuantSpec.Rotation.NONE).text(), weightsOnly = q.withRotation(QuantSpec.Rotation.NONE).withActivations(0).withKv(0).text();
            StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "%s: perplexity %.3f", q.text(), methods.doubleColumn("ppl").get(i)));
            if (methods.stringColumn("spec").contains(plain))
                sb.append(String.format(Locale.ROOT, ", %.3f without rotation", value(methods, "spec", plain, "ppl")));
            if (!weightsOnly.equals(plain) && methods.stringColumn("spec").contains(weightsOnly))
                sb.append(String.format(Locale.ROOT, ", %.3f with float activations and cache (%s)", value(methods, "spec", weightsOnly, "ppl"), weightsOnly));
            out.add(sb.append('.').toString());
        }
        return out;
    }

    /** Every configuration's perplexity as a bar, float model included; a log axis when one bar would flatten the rest. */
    public static Figure methodsBars(Table methods, String dataset) {
        Table t = methods.copy();
        StringColumn label = StringColumn.create("configuration");
        for (int i = 0; i < t.rowCount(); i++) label.append(specLabel(t.stringColumn("spec").get(i)));
        t.addColumns(label);
        return Charts.bars(t, "configuration", "ppl", "Perplexity of every configuration")
                .withAxisTitles("Configuration (quantization spec)", "Perplexity on " + dataset);
    }

    /**
     * The {@code top} linears with the largest measured KL divergence to the float model (each alone at the probe width),
     * labelled L{block}.{module}, full name on hover.
     */
    public static Figure sensitivityChart(Table sensitivity, int top) {
        Table t = sensitivity.sortDescendingOn("kld").first(top);
        StringColumn label = StringColumn.create("linear");
        for (int i = 0; i < t.rowCount(); i++) label.append(shortName(((Number) t.column("layer").get(i)).intValue(), t.stringColumn("module").get(i)));
        t.addColumns(label);
        return Charts.bars(t, "linear", "kld", "name", "KL divergence to the float model with one linear quantized (top " + top + ")")
                .withAxisTitles("Linear (block.module)", "Mean KL(float || quantized) per token (nats)");
    }

    /** Measured sensitivity per block and module: where the sensitive linears are (log colour scale when all are positive). */
    public static Figure sensitivityHeatmap(Table sensitivity) {
        boolean positive = sensitivity.doubleColumn("kld").min() > 0;
        String title = "Measured sensitivity (KL divergence with one linear quantized) by block and module";
        Figure f = positive ? Charts.logHeatmap(sensitivity, "layer", "module", "kld", title)
                : Charts.heatmap(sensitivity, "layer", "module", "kld", title);
        return f.withAxisTitles("Linear (module)", "Block").withColorbarTitle("KL divergence (nats" + (positive ? ", log scale)" : ")"));
    }

    /**
     * Mixed precision against uniform and every baseline on the held-out windows: one bar per allocation and (method,
     * target) with its 95% interval over seeds and windows, the allocations in {@link Comparison#ALLOCATIONS}' order.
     */
    public static Figure mixedChart(Table summary) {
        Table t = summary.copy();
        StringColumn series = StringColumn.create("series");
        for (int i = 0; i < t.rowCount(); i++)
            series.append(String.format(Locale.ROOT, "%s at %.3f bits/weight", t.stringColumn("method").get(i), t.doubleColumn("target_bits").get(i)));
        t.addColumns(series);
        int runs = t.rowCount() == 0 ? 0 : (int) t.intColumn("runs").max();
        return Charts.groupedBars(t, "allocation", "kld", "kld_lo", "kld_hi", "series",
                        "Mixed precision vs uniform and the baselines at equal bits: held-out KL divergence (95% interval over "
                                + runs + (runs == 1 ? " run" : " runs") + " and the windows)")
                .withAxisTitles("Allocation", "Mean KL(float || quantized) per token on held-out windows (nats)");
    }

    /**
     * Calibration-size curves: the geometric mean over seeds with its 95% interval (log scale, never below zero),
     * one band per spec, and the calibration-free RTN control as a dashed line.
     */
    public static Figure ablationChart(Table ablation) {
        Table t = ablation.where(ablation.stringColumn("calib_source").isNotEqualTo("none"));
        int seeds = t.rowCount() == 0 ? 0 : (int) t.intColumn("seeds").max();
        Figure f = Charts.band(t.sortAscendingOn("nsamples"), "nsamples", "ppl_geomean", "ci95_low", "ci95_high", "spec",
                "Perplexity vs calibration samples (geometric mean and 95% interval over " + seeds + " seeds)", true, true);
        Table control = ablation.where(ablation.stringColumn("calib_source").isEqualTo("none"));
        for (int i = 0; i < control.rowCount(); i++)
            f = Charts.withReferenceLine(f, control.doubleColumn("ppl_mean").get(i), control.stringColumn("spec").get(i) + " (no calibration)");
        int seqlen = t.rowCount() == 0 ? 0 : t.intColumn("calib_seqlen").get(0);
        return f.withAxisTitles("Calibration windows of " + seqlen + " tokens (log scale)", "Perplexity (log scale)");
    }

    /** Geometric-mean perplexity per calibration source at equal token counts, with the 95% interval over seeds. */
    public static Figure diversityChart(Table diversity) {
        return Charts.groupedBars(diversity, "calib_source", "ppl_geomean", "ci95_low", "ci95_high", "spec",
                        "Calibration text: perplexity per source (geometric mean, 95% interval over seeds)")
                .withAxisTitles("Calibration text", "Perplexity");
    }

    /** The sentences at the top of the report, each computed from the tables. */
    public static List<String> findings(Study.Result r) {
        List<String> out = new ArrayList<>();
        Table m = r.methods();
        double fp = value(m, "spec", "fp", "ppl");
        out.add(String.format(Locale.ROOT, "Float model: perplexity %.3f on %s (%s windows of %d tokens), weights held as float32 "
                        + "(32 bits per weight as evaluated, whatever the checkpoint stores).", fp, r.plan().dataset(),
                r.plan().evalWindows() == 0 ? "all" : Integer.toString(r.plan().evalWindows()), r.plan().evalSeqlen()));
        Table w4 = m.where(m.intColumn("weight_bits").isEqualTo(4).and(m.stringColumn("activations").isEqualTo("fp"))
                .and(m.stringColumn("kv_cache").isEqualTo("fp")));
        if (w4.rowCount() > 0) {
            Table best = w4.sortAscendingOn("ppl").first(1);
            out.add(String.format(Locale.ROOT, "Best 4-bit weight-only configuration: %s, perplexity %.3f (%.2fx the float model).",
                    best.stringColumn("spec").get(0), best.doubleColumn("ppl").get(0), best.doubleColumn("ppl_vs_fp").get(0)));
        }
        for (String spec : List.of("smoothquant:w8a8", "smoothquant:w4a8", "rtn:w4g128+kv4", "rtn:w4g128+kv2"))
            if (m.stringColumn("spec").contains(spec))
                out.add(String.format(Locale.ROOT, "%s: perplexity %.3f (%.2fx the float model).", spec, value(m, "spec", spec, "ppl"),
                        value(m, "spec", spec, "ppl_vs_fp")));
        out.addAll(rotationFindings(m));
        out.addAll(kldFindings(m));
        out.addAll(zeroShotFindings(r.zeroShot()));
        out.addAll(sensitivityFindings(r.correlations(), r.sensitivity(), r.plan()));
        out.addAll(mixedFindings(r.mixed()));
        out.addAll(ablationFindings(r.ablation()));
        out.addAll(diversityFindings(r.diversity()));
        return out;
    }

    /** Every configuration's mean KL divergence and same-top-token share, most faithful first. */
    static List<String> kldFindings(Table methods) {
        if (!hasKld(methods)) return List.of();
        Table t = methods.where(methods.doubleColumn("kld_mean").isNotMissing()).sortAscendingOn("kld_mean");
        StringBuilder sb = new StringBuilder("KL divergence to the float model (mean per token; same top token):");
        for (int i = 0; i < t.rowCount(); i++)
            sb.append(String.format(Locale.ROOT, "%s %s %.4f (%.1f%%)", i == 0 ? "" : ";", t.stringColumn("spec").get(i),
                    t.doubleColumn("kld_mean").get(i), 100 * t.doubleColumn("same_top_p").get(i)));
        return List.of(sb.append('.').toString());
    }

    /** The split-half reliability of the measured sensitivity, each predictor's rank correlation with it, and the most sensitive linear. */
    static List<String> sensitivityFindings(Table correlations, Table sensitivity, StudyPlan plan) {
        if (correlations == null || correlations.rowCount() == 0) return List.of();
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT,
                "Sensitivity by KL divergence (%s, each linear alone at %d bits, %d x %d C4 tokens): split-half Spearman %.3f over %d linears; "
                        + "rank correlation of the predictors with it:", plan.allocationMethods().get(0), plan.probeBits(),
                plan.allocationWindows().sensitivity(), plan.allocationWindows().seqlen(), correlations.doubleColumn("spearman").get(0),
                ((Number) correlations.column("linears").get(0)).intValue()));
        for (int i = 1; i < correlations.rowCount(); i++)
            sb.append(String.format(Locale.ROOT, "%s %s %.3f", i == 1 ? "" : ";", correlations.stringColumn("predictor").get(i),
                    correlations.doubleColumn("spearman").get(i)));
        List<String> out = new ArrayList<>(List.of(sb.append('.').toString()));
        Table s = sensitivity.sortDescendingOn("kld");
        out.add(String.format(Locale.ROOT, "Most sensitive linear: %s (KL divergence %.4f alone at %d bits; median linear %.4f).",
                s.stringColumn("name").get(0), s.doubleColumn("kld").get(0), plan.probeBits(), sensitivity.doubleColumn("kld").median()));
        return out;
    }

    /**
     * Per (method, target): mixed against uniform on the held-out windows, KL divergence and perplexity with their 95%
     * intervals, the paired difference and its verdict, and how mixed fared against the random allocations at the same bits.
     */
    public static List<String> mixedFindings(Table summary) {
        List<String> out = new ArrayList<>();
        int beats = 0, cells = 0;
        for (int i = 0; i < summary.rowCount(); i++) {
            if (!summary.stringColumn("allocation").get(i).equals("mixed")) continue;
            String method = summary.stringColumn("method").get(i);
            double target = summary.doubleColumn("target_bits").get(i);
            int u = summaryRow(summary, method, target, "uniform");
            if (u < 0) continue;
            cells++;
            String verdict = summary.stringColumn("verdict").get(i);
            if (verdict.equals("beats uniform")) beats++;
            int randoms = 0, lower = 0, separate = 0;
            for (int j = 0; j < summary.rowCount(); j++) {
                if (!summary.stringColumn("allocation").get(j).startsWith("random") || !summary.stringColumn("method").get(j).equals(method)
                        || summary.doubleColumn("target_bits").get(j) != target) continue;
                randoms++;
                if (summary.doubleColumn("kld").get(i) < summary.doubleColumn("kld").get(j)) lower++;
                if (summary.doubleColumn("kld_hi").get(i) < summary.doubleColumn("kld_lo").get(j)) separate++;
            }
            String vsRandom = randoms == 0 ? "" : lower == randoms
                    ? String.format(Locale.ROOT, " It beat every random allocation (lower mean KL divergence than all %d; intervals apart from %d).",
                    randoms, separate)
                    : String.format(Locale.ROOT, " It did not beat every random allocation: lower mean KL divergence than %d of %d.", lower, randoms);
            out.add(String.format(Locale.ROOT, "%s at %.3f bits/weight (%d %s, held-out): mixed KL divergence %.4f [%.4f, %.4f], perplexity "
                            + "%.3f [%.3f, %.3f] (%.3f bits/weight, widths %s); uniform KL divergence %.4f [%.4f, %.4f], perplexity %.3f "
                            + "[%.3f, %.3f]; mixed - uniform %+.4f [%+.4f, %+.4f]: %s.%s",
                    method, target, summary.intColumn("runs").get(i), summary.intColumn("runs").get(i) == 1 ? "run" : "runs",
                    summary.doubleColumn("kld").get(i), summary.doubleColumn("kld_lo").get(i), summary.doubleColumn("kld_hi").get(i),
                    summary.doubleColumn("ppl").get(i), summary.doubleColumn("ppl_lo").get(i), summary.doubleColumn("ppl_hi").get(i),
                    summary.doubleColumn("bits_per_weight").get(i), summary.stringColumn("widths").get(i),
                    summary.doubleColumn("kld").get(u), summary.doubleColumn("kld_lo").get(u), summary.doubleColumn("kld_hi").get(u),
                    summary.doubleColumn("ppl").get(u), summary.doubleColumn("ppl_lo").get(u), summary.doubleColumn("ppl_hi").get(u),
                    summary.doubleColumn("kld_minus_uniform").get(i), summary.doubleColumn("diff_lo").get(i), summary.doubleColumn("diff_hi").get(i),
                    verdict, vsRandom));
        }
        if (cells > 0)
            out.add(String.format(Locale.ROOT, "Mixed precision beats uniform, with a paired 95%% interval below zero, in %d of %d (method, budget) cells.",
                    beats, cells));
        return out;
    }

    /** The calibration-size cells against the calibration-free control. */
    static List<String> ablationFindings(Table a) {
        List<String> out = new ArrayList<>();
        Map<String, Double> control = new LinkedHashMap<>();
        for (int i = 0; i < a.rowCount(); i++)
            if (a.stringColumn("calib_source").get(i).equals("none")) {
                control.put(a.stringColumn("spec").get(i), a.doubleColumn("ppl_mean").get(i));
                out.add(String.format(Locale.ROOT, "Control: %s, no calibration, perplexity %.3f.", a.stringColumn("spec").get(i),
                        a.doubleColumn("ppl_mean").get(i)));
            }
        for (int i = 0; i < a.rowCount(); i++) {
            if (a.intColumn("seeds").get(i) < 2) continue;
            String spec = a.stringColumn("spec").get(i);
            double low = a.doubleColumn("ci95_low").get(i), high = a.doubleColumn("ci95_high").get(i);
            String vs = "";
            Double rtn = control.get("rtn:" + spec.substring(spec.indexOf(':') + 1));
            if (rtn != null)
                vs = high < rtn ? "; below the RTN control" : low > rtn ? "; above the RTN control" : "; the interval contains the RTN control";
            out.add(String.format(Locale.ROOT, "%s with %d calibration samples of %d tokens: perplexity %.3f (geometric mean over %d seeds, "
                            + "95%% interval [%.3f, %.3f]%s).", spec, a.intColumn("nsamples").get(i), a.intColumn("calib_seqlen").get(i),
                    a.doubleColumn("ppl_geomean").get(i), a.intColumn("seeds").get(i), low, high, vs));
        }
        return out;
    }

    /** Each calibration source, and whether the sources' intervals separate them. */
    static List<String> diversityFindings(Table d) {
        if (d.rowCount() == 0) return List.of();
        StringBuilder sb = new StringBuilder(String.format(Locale.ROOT, "Calibration text (%s, %d windows of %d tokens each, %d seeds):",
                d.stringColumn("spec").get(0), d.intColumn("nsamples").get(0), d.intColumn("calib_seqlen").get(0), d.intColumn("seeds").get(0)));
        double maxLow = Double.NEGATIVE_INFINITY, minHigh = Double.POSITIVE_INFINITY;
        for (int i = 0; i < d.rowCount(); i++) {
            sb.append(String.format(Locale.ROOT, "%s %s %.3f [%.3f, %.3f]", i == 0 ? "" : ";", d.stringColumn("calib_source").get(i),
                    d.doubleColumn("ppl_geomean").get(i), d.doubleColumn("ci95_low").get(i), d.doubleColumn("ci95_high").get(i)));
            maxLow = Math.max(maxLow, d.doubleColumn("ci95_low").get(i));
            minHigh = Math.min(minHigh, d.doubleColumn("ci95_high").get(i));
        }
        sb.append(maxLow <= minHigh ? ". The intervals overlap: these seeds do not separate the sources."
                : ". Not every interval overlaps: at least two sources differ beyond the spread over seeds.");
        return List.of(sb.toString());
    }

    /** Writes dir/index.html: findings, then each part's charts and tables. */
    public static Path write(Study.Result r) {
        String dataset = r.plan().dataset();
        List<Object> parts = new ArrayList<>();
        parts.add(new Html.Raw("<p>Model <code>" + esc(r.plan().model()) + "</code> (sha256 " + r.modelSha256().substring(0, 16)
                + "...), code " + esc(CodeVersion.current().toString()) + ". Every number below is a row of <code>store.jsonl</code> "
                + "with its parameters and provenance (every digit there; tables here are rounded); re-running "
                + "<code>./lowbit study</code> with the same options skips what is stored.</p>"));
        parts.add(new Html.Heading("Findings"));
        StringBuilder ul = new StringBuilder("<ul>");
        for (String f : findings(r)) ul.append("<li>").append(esc(f)).append("</li>");
        parts.add(new Html.Raw(ul.append("</ul>").toString()));

        parts.add(new Html.Heading("Methods x bits"));
        parts.add(methodsChart(r.methods(), dataset));
        if (hasKld(r.methods())) parts.add(kldChart(r.methods(), dataset));
        if (rotationTable(r.methods()).rowCount() > 0) parts.add(rotationChart(r.methods(), dataset));
        parts.add(methodsBars(r.methods(), dataset));
        parts.add(table(r.methods()));
        if (r.zeroShot().rowCount() > 0) {
            parts.add(new Html.Heading("Zero-shot accuracy"));
            parts.add(new Html.Raw("<p>lm-evaluation-harness 0.4.13's task definitions on the shipped files (the first "
                    + r.plan().zeroShotLimit() + " items of each; HellaSwag's shipped text is pre-processed, so its scores can differ "
                    + "slightly from lm-eval's on the original data), scored with the same quantized weights as the perplexity above.</p>"));
            parts.add(zeroShotChart(r.zeroShot()));
            parts.add(table(zeroShotWide(r.zeroShot())));
            parts.add(table(r.zeroShot()));
        }

        if (r.sensitivity() != null && r.sensitivity().rowCount() > 0) {
            parts.add(new Html.Heading("Sensitivity"));
            parts.add(sensitivityChart(r.sensitivity(), TOP_LINEARS));
            parts.add(sensitivityHeatmap(r.sensitivity()));
            parts.add(table(r.correlations()));
            parts.add(table(r.sensitivity()));
        }

        if (r.mixed().rowCount() > 0) {
            parts.add(new Html.Heading("Mixed precision under a bit budget"));
            parts.add(mixedChart(r.mixed()));
            parts.add(table(r.mixed()));
            parts.add(table(r.allocations()));
        }

        parts.add(new Html.Heading("Calibration ablation"));
        if (r.ablation().where(r.ablation().stringColumn("calib_source").isNotEqualTo("none")).rowCount() > 0) parts.add(ablationChart(r.ablation()));
        if (r.diversity().rowCount() > 0) parts.add(diversityChart(r.diversity()));
        parts.add(table(r.ablation()));
        parts.add(table(r.diversity()));

        parts.add(new Html.Heading("Per-layer statistics"));
        parts.add(logStatisticHeatmap(r.statistics(), "weight", "kurtosis", "Weight kurtosis (Pearson) by block and module")
                .withColorbarTitle("kurtosis (log scale; normal = 3)"));
        parts.add(statisticHeatmap(r.statistics(), "weight", "std", "Weight std by block and module").withColorbarTitle("std"));
        // Activation kurtosis spans 3 to about 1e6 (massive activations): a log scale keeps the ordinary blocks visible.
        parts.add(logStatisticHeatmap(r.statistics(), "activation", "kurtosis", "Linear input kurtosis by block and input")
                .withColorbarTitle("kurtosis (log scale; normal = 3)"));
        parts.add(logStatisticHeatmap(r.statistics(), "activation", "channel_max_abs_max", "Largest per-channel max |x| of linear inputs")
                .withColorbarTitle("max |x| (log scale)"));
        Table kv = r.statistics().where(r.statistics().stringColumn("kind").isIn("key", "value"));
        parts.add(Charts.logHeatmap(kv, "layer", "module", "kurtosis", "K/V cache kurtosis by block")
                .withAxisTitles("Cache (keys after RoPE, values)", "Block").withColorbarTitle("kurtosis (log scale; normal = 3)"));
        parts.add(hessianTraceHeatmap(r.hessians()));
        parts.add(table(r.statistics()));
        parts.add(table(r.hessians()));

        parts.add(new Html.Heading("Plan"));
        Table plan = Table.create("study plan", StringColumn.create("parameter"), StringColumn.create("value"));
        for (Map.Entry<String, Object> e : r.plan().describe().entrySet()) {
            plan.stringColumn("parameter").append(e.getKey());
            plan.stringColumn("value").append(String.valueOf(e.getValue()));
        }
        parts.add(table(plan));
        Path index = r.dir().resolve("index.html");
        Html.write(index, "lowbit study: " + r.plan().model(), parts);
        return index;
    }

    /** "L29.down_proj" for block 29's down_proj: short enough to label a bar. */
    static String shortName(int layer, String module) {
        return "L" + layer + "." + module;
    }

    /** The float row as what it is; every other spec as written. */
    static String specLabel(String spec) {
        return spec.equals("fp") ? "float (fp32)" : spec;
    }

    private static Figure withFloat(Figure f, Table methods) {
        for (int i = 0; i < methods.rowCount(); i++)
            if (methods.stringColumn("spec").get(i).equals("fp"))
                return Charts.withReferenceLine(f, methods.doubleColumn("ppl").get(i),
                        String.format(Locale.ROOT, "float model (fp32): %.3f", methods.doubleColumn("ppl").get(i)));
        return f;
    }

    private static Object table(Table t) {
        return t.rowCount() > INLINE_ROWS ? new Html.Collapsed(t) : t;
    }

    private static Table ofKind(Table statistics, String kind) {
        Table t = statistics.where(statistics.stringColumn("kind").isEqualTo(kind));
        if (t.rowCount() == 0) throw new IllegalArgumentException("no rows of kind '" + kind + "' in " + statistics.name());
        return t;
    }

    private static String moduleTitle(String kind) {
        return kind.equals("activation") ? "Linear input" : "Linear (module)";
    }

    /** The summary row of (method, target, allocation), or -1. */
    private static int summaryRow(Table summary, String method, double target, String allocation) {
        for (int j = 0; j < summary.rowCount(); j++)
            if (summary.stringColumn("allocation").get(j).equals(allocation) && summary.stringColumn("method").get(j).equals(method)
                    && summary.doubleColumn("target_bits").get(j) == target) return j;
        return -1;
    }

    private static double value(Table t, String keyCol, String key, String col) {
        for (int i = 0; i < t.rowCount(); i++)
            if (t.stringColumn(keyCol).get(i).equals(key)) return t.doubleColumn(col).get(i);
        throw new IllegalArgumentException("no row with " + keyCol + " = " + key + " in " + t.name());
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
