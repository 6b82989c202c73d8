package lowbit.studies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lowbit.plots.Charts;
import lowbit.plots.Html;
import lowbit.results.CodeVersion;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.plotly.components.Figure;

/**
 * The study's report: every chart is a function of one of {@link Study.Result}'s tables, so a notebook draws
 * the same figure with one call ({@code StudyReport.methodsChart(result.methods())}).
 */
public final class StudyReport {
    private StudyReport() {}

    /** Heatmap of one statistic of one tensor kind (weight, activation, key, value) by block x module. */
    public static Figure statisticHeatmap(Table statistics, String kind, String column, String title) {
        Table t = statistics.where(statistics.stringColumn("kind").isEqualTo(kind));
        if (t.rowCount() == 0) throw new IllegalArgumentException("no rows of kind '" + kind + "' in " + statistics.name());
        return Charts.heatmap(t, "layer", "module", column, title);
    }

    /** Trace of each Hessian by block x input. */
    public static Figure hessianTraceHeatmap(Table hessians) {
        return Charts.heatmap(hessians, "layer", "input", "trace", "Hessian trace (2/n X^T X) by block and input");
    }

    /** Perplexity against bits per weight, one line per method family (weights only; a/kv variants in the table). */
    public static Figure methodsChart(Table methods) {
        Table t = methods.where(methods.stringColumn("activations").isEqualTo("fp").and(methods.stringColumn("kv_cache").isEqualTo("fp"))
                .and(methods.stringColumn("method").isNotEqualTo("fp")));
        return Charts.lines(t.sortAscendingOn("bits_per_weight"), "bits_per_weight", "ppl", "method",
                "Perplexity vs bits per weight (log scale), by method", true);
    }

    /** Every configuration's perplexity as a bar, float model included. */
    public static Figure methodsBars(Table methods) {
        return Charts.bars(methods, "spec", "ppl", "Perplexity of every configuration");
    }

    /** The {@code top} linears with the largest measured perplexity increase. */
    public static Figure sensitivityChart(Table sensitivity, int top) {
        Table t = sensitivity.sortDescendingOn("ppl_increase").first(top);
        return Charts.bars(t, "name", "ppl_increase", "Perplexity increase with one linear quantized (top " + top + ")");
    }

    /** Measured sensitivity summed per block and module: where the sensitive linears are. */
    public static Figure sensitivityHeatmap(Table sensitivity) {
        return Charts.heatmap(sensitivity, "layer", "module", "ppl_increase", "Measured sensitivity (perplexity increase) by block and module");
    }

    /** Mixed and uniform allocation: perplexity against the bits per weight they reach, per method. */
    public static Figure mixedChart(Table mixed) {
        Table t = mixed.copy();
        StringColumn series = StringColumn.create("series");
        for (int i = 0; i < t.rowCount(); i++) series.append(t.stringColumn("allocation").get(i) + " " + t.stringColumn("method").get(i));
        t.addColumns(series);
        return Charts.lines(t.sortAscendingOn("bits_per_weight"), "bits_per_weight", "ppl", "series",
                "Mixed precision vs uniform: perplexity vs bits per weight", true);
    }

    /** Calibration-size curves with 95% intervals over seeds, one band per spec. */
    public static Figure ablationChart(Table ablation) {
        Table t = ablation.where(ablation.stringColumn("calib_source").isNotEqualTo("none"));
        return Charts.band(t.sortAscendingOn("nsamples"), "nsamples", "ppl_mean", "ci95_low", "ci95_high", "spec",
                "Perplexity vs calibration samples (mean and 95% interval over seeds)", true);
    }

    /** Mean perplexity per calibration source at equal token counts. */
    public static Figure diversityChart(Table diversity) {
        return Charts.groupedBars(diversity, "calib_source", "ppl_mean", "spec", "Calibration text: mean perplexity per source");
    }

    /** The sentences at the top of the report, each computed from the tables. */
    public static List<String> findings(Study.Result r) {
        List<String> out = new ArrayList<>();
        Table m = r.methods();
        double fp = value(m, "spec", "fp", "ppl");
        out.add(String.format(Locale.ROOT, "Float model: perplexity %.3f on %s (%s windows of %d tokens).", fp, r.plan().dataset(),
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
        Table c = r.correlations();
        out.add(String.format(Locale.ROOT, "Sensitivity proxies: Spearman rank correlation with the measured increase over %d linears: "
                + "Hessian-weighted error %.3f, weight kurtosis %.3f.", (int) c.intColumn("linears").get(0), c.doubleColumn("spearman").get(0),
                c.doubleColumn("spearman").get(1)));
        Table s = r.sensitivity().sortDescendingOn("ppl_increase");
        if (s.rowCount() > 0)
            out.add(String.format(Locale.ROOT, "Most sensitive linear at %s: %s (+%.3f perplexity alone).", r.plan().sensitivitySpec(),
                    s.stringColumn("name").get(0), s.doubleColumn("ppl_increase").get(0)));
        Table mix = r.mixed();
        for (int i = 0; i < mix.rowCount(); i++) {
            if (!mix.stringColumn("allocation").get(i).startsWith("mixed")) continue;
            double bpw = mix.doubleColumn("bits_per_weight").get(i);
            String method = mix.stringColumn("method").get(i);
            for (int j = 0; j < mix.rowCount(); j++)
                if (mix.stringColumn("allocation").get(j).equals("uniform") && mix.stringColumn("method").get(j).equals(method)
                        && Math.abs(mix.doubleColumn("bits_per_weight").get(j) - bpw) < 1e-3)
                    out.add(String.format(Locale.ROOT, "%s with %s at %.3f bits per weight: perplexity %.3f against %.3f for uniform "
                            + "allocation at the same bits (widths %s).", cap(mix.stringColumn("allocation").get(i)), method, bpw, mix.doubleColumn("ppl").get(i), mix.doubleColumn("ppl").get(j),
                            mix.stringColumn("widths").get(i)));
        }
        Table a = r.ablation();
        for (int i = 0; i < a.rowCount(); i++)
            if (a.intColumn("seeds").get(i) > 1)
                out.add(String.format(Locale.ROOT, "%s with %d calibration samples of %d tokens: perplexity %.3f, 95%% interval [%.3f, %.3f] over %d seeds.",
                        a.stringColumn("spec").get(i), a.intColumn("nsamples").get(i), a.intColumn("calib_seqlen").get(i),
                        a.doubleColumn("ppl_mean").get(i), a.doubleColumn("ci95_low").get(i), a.doubleColumn("ci95_high").get(i),
                        a.intColumn("seeds").get(i)));
        return out;
    }

    /** Writes dir/index.html: findings, then each part's charts and tables. */
    public static Path write(Study.Result r) {
        List<Object> parts = new ArrayList<>();
        parts.add(new Html.Raw("<p>Model <code>" + esc(r.plan().model()) + "</code> (sha256 " + r.modelSha256().substring(0, 16)
                + "...), code " + esc(CodeVersion.current().toString()) + ". Every number below is a row of <code>store.jsonl</code> "
                + "with its parameters and provenance; re-running <code>./lowbit study</code> with the same options skips what is stored.</p>"));
        parts.add(new Html.Heading("Findings"));
        StringBuilder ul = new StringBuilder("<ul>");
        for (String f : findings(r)) ul.append("<li>").append(esc(f)).append("</li>");
        parts.add(new Html.Raw(ul.append("</ul>").toString()));

        parts.add(new Html.Heading("Per-layer statistics"));
        parts.add(statisticHeatmap(r.statistics(), "weight", "kurtosis", "Weight kurtosis (Pearson) by block and module"));
        parts.add(statisticHeatmap(r.statistics(), "weight", "std", "Weight std by block and module"));
        // Activation kurtosis spans 3 to about 1e6 (massive activations): a log scale keeps the ordinary blocks visible.
        Table logged = withLog10(r.statistics(), "kurtosis", "channel_max_abs_max");
        parts.add(statisticHeatmap(logged, "activation", "log10_kurtosis", "Linear input kurtosis by block and input (log10)"));
        parts.add(statisticHeatmap(logged, "activation", "log10_channel_max_abs_max", "Largest per-channel max |x| of linear inputs (log10)"));
        Table kv = r.statistics().where(r.statistics().stringColumn("kind").isIn("key", "value"));
        parts.add(Charts.heatmap(kv, "layer", "module", "kurtosis", "K/V cache kurtosis by block"));
        parts.add(hessianTraceHeatmap(r.hessians()));
        parts.add(r.statistics());
        parts.add(r.hessians());

        parts.add(new Html.Heading("Methods x bits"));
        parts.add(methodsChart(r.methods()));
        parts.add(methodsBars(r.methods()));
        parts.add(r.methods());

        parts.add(new Html.Heading("Sensitivity"));
        parts.add(sensitivityChart(r.sensitivity(), 30));
        parts.add(sensitivityHeatmap(r.sensitivity()));
        parts.add(r.correlations());
        parts.add(r.sensitivity());

        parts.add(new Html.Heading("Mixed precision under a bit budget"));
        parts.add(mixedChart(r.mixed()));
        parts.add(r.mixed());

        parts.add(new Html.Heading("Calibration ablation"));
        if (r.ablation().where(r.ablation().stringColumn("calib_source").isNotEqualTo("none")).rowCount() > 0) parts.add(ablationChart(r.ablation()));
        parts.add(r.ablation());
        if (r.diversity().rowCount() > 0) parts.add(diversityChart(r.diversity()));
        parts.add(r.diversity());

        parts.add(new Html.Heading("Plan"));
        Table plan = Table.create("study plan", StringColumn.create("parameter"), StringColumn.create("value"));
        for (Map.Entry<String, Object> e : r.plan().describe().entrySet()) {
            plan.stringColumn("parameter").append(e.getKey());
            plan.stringColumn("value").append(String.valueOf(e.getValue()));
        }
        parts.add(plan);
        Path index = r.dir().resolve("index.html");
        Html.write(index, "lowbit study: " + r.plan().model(), parts);
        return index;
    }

    /** The table with a log10_NAME column added for each named column. */
    public static Table withLog10(Table t, String... columns) {
        Table out = t.copy();
        for (String c : columns) {
            DoubleColumn log = DoubleColumn.create("log10_" + c);
            for (int i = 0; i < t.rowCount(); i++) log.append(Math.log10(t.numberColumn(c).getDouble(i)));
            out.addColumns(log);
        }
        return out;
    }

    private static double value(Table t, String keyCol, String key, String col) {
        for (int i = 0; i < t.rowCount(); i++)
            if (t.stringColumn(keyCol).get(i).equals(key)) return ((DoubleColumn) t.column(col)).get(i);
        throw new IllegalArgumentException("no row with " + keyCol + " = " + key + " in " + t.name());
    }

    private static String cap(String s) {
        return s.isEmpty() ? s : Character.toUpperCase(s.charAt(0)) + s.substring(1);
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
