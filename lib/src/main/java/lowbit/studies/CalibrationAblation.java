package lowbit.studies;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.CalibrationSampler;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import org.apache.commons.math3.distribution.TDistribution;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The calibration-size ablation: every (spec, calibration source, nsamples, seqlen, seed) cell quantizes a
 * fresh copy of the model and evaluates its perplexity; each finished cell is one row in the results store,
 * so an interrupted run resumes and a re-run skips what is done. Calibration-free specs (rtn) run once per
 * spec, as the control. {@link #summary} gives mean, std, geometric mean and a 95% interval per cell over seeds.
 */
public final class CalibrationAblation {
    private CalibrationAblation() {}

    /** Where and how perplexity is measured. */
    public record Evaluation(String model, String dataset, int seqlen, int windows) {}

    /**
     * One cell of the grid. {@code mode} cuts the windows: "documents" (the GPTQ protocol) or "concatenated"
     * (needed for sources of short documents, such as the task files; the diversity comparison uses it for every
     * source so that only the text differs).
     */
    public record Cell(String spec, String source, int nsamples, int seqlen, long seed, CalibrationSampler.Mode mode) {
        public Cell(String spec, String source, int nsamples, int seqlen, long seed) {
            this(spec, source, nsamples, seqlen, seed, CalibrationSampler.Mode.DOCUMENTS);
        }

        Map<String, Object> parameters(Evaluation e) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("study", "calibration-ablation");
            m.put("model", e.model());
            m.put("dataset", e.dataset());
            m.put("eval_seqlen", e.seqlen());
            m.put("eval_windows", e.windows());
            m.put("spec", spec);
            m.put("calib_source", source);
            m.put("nsamples", nsamples);
            m.put("calib_seqlen", seqlen);
            m.put("seed", seed);
            // Only when not the default, so rows stored before the mode existed keep their keys.
            if (mode != CalibrationSampler.Mode.DOCUMENTS) m.put("calib_mode", mode.name().toLowerCase(java.util.Locale.ROOT));
            return m;
        }
    }

    /** The grid: specs x sources x nsamples x seeds at one calibration length; rtn specs once each. */
    public static List<Cell> grid(List<String> specs, List<String> sources, List<Integer> nsamples, int seqlen, List<Long> seeds) {
        List<Cell> cells = new ArrayList<>();
        for (String spec : specs) {
            if (spec.startsWith("rtn:")) {
                cells.add(new Cell(spec, "none", 0, 0, 0));
                continue;
            }
            for (String src : sources)
                for (int n : nsamples)
                    for (long seed : seeds) cells.add(new Cell(spec, src, n, seqlen, seed));
        }
        return cells;
    }

    /** Runs the cells missing from {@code store}; returns all rows of this evaluation's cells. */
    public static List<Row> run(ResultStore store, Evaluation eval, List<Cell> cells, int threads, Progress progress) {
        List<Row> rows = new ArrayList<>();
        try (Progress.Task task = progress.start("ablation", cells.size(), "cell")) {
            for (Cell cell : cells) {
                Map<String, Object> params = cell.parameters(eval);
                String key = Row.key(params);
                rows.add(store.computeIfAbsent(key, () -> runCell(key, params, eval, cell, threads)));
                task.step(1);
            }
        }
        return rows;
    }

    private static Row runCell(String key, Map<String, Object> params, Evaluation eval, Cell cell, int threads) {
        QuantizationRecipe recipe = QuantizationRecipe.of(cell.spec());
        if (!cell.source().equals("none"))
            recipe = recipe.withCalibration(new QuantizationRecipe.Calibration(cell.source(), cell.nsamples(), cell.seqlen(),
                    cell.seed(), cell.mode()));
        return Experiments.run(params, new Experiments.Evaluation(eval.model(), eval.dataset(), eval.seqlen(), eval.windows()), recipe, threads);
    }

    /**
     * Per (spec, source, nsamples, calib_seqlen): the number of seeds, mean and sample std of the perplexity, its
     * geometric mean, and the 95% interval of the geometric mean: the t-interval of the mean log-perplexity,
     * exp(mean log ppl -/+ t(0.975, n-1) std(log ppl) / sqrt(n)) (NaN for one seed). Perplexity is positive and its
     * spread over seeds multiplicative; a t-interval on the perplexity itself goes below zero with few seeds
     * (t(0.975, 1) = 12.7), this one cannot, and it costs no more runs.
     */
    public static Table summary(List<Row> rows) {
        Map<String, List<Row>> cells = new LinkedHashMap<>();
        for (Row r : rows)
            cells.computeIfAbsent(r.get("spec") + "|" + r.get("calib_source") + "|" + r.get("nsamples") + "|" + r.get("calib_seqlen")
                            + "|" + r.get("calib_mode"),
                    k -> new ArrayList<>()).add(r);
        Table t = Table.create("calibration ablation", StringColumn.create("spec"), StringColumn.create("calib_source"),
                StringColumn.create("calib_mode"), IntColumn.create("nsamples"), IntColumn.create("calib_seqlen"), IntColumn.create("seeds"),
                DoubleColumn.create("ppl_mean"), DoubleColumn.create("ppl_std"), DoubleColumn.create("ppl_geomean"),
                DoubleColumn.create("ci95_low"), DoubleColumn.create("ci95_high"));
        for (List<Row> group : cells.values()) {
            int n = group.size();
            double mean = 0;
            for (Row r : group) mean += ((Number) r.get("ppl")).doubleValue();
            mean /= n;
            double ss = 0;
            for (Row r : group) ss += Math.pow(((Number) r.get("ppl")).doubleValue() - mean, 2);
            double std = n > 1 ? Math.sqrt(ss / (n - 1)) : Double.NaN;
            double logMean = 0;
            for (Row r : group) logMean += Math.log(((Number) r.get("ppl")).doubleValue());
            logMean /= n;
            double logSs = 0;
            for (Row r : group) logSs += Math.pow(Math.log(((Number) r.get("ppl")).doubleValue()) - logMean, 2);
            double half = n > 1 ? new TDistribution(n - 1).inverseCumulativeProbability(0.975) * Math.sqrt(logSs / (n - 1)) / Math.sqrt(n)
                    : Double.NaN;
            Row first = group.get(0);
            t.stringColumn("spec").append((String) first.get("spec"));
            t.stringColumn("calib_source").append((String) first.get("calib_source"));
            t.stringColumn("calib_mode").append(first.get("calib_mode") == null ? (first.get("calib_source").equals("none") ? "" : "documents")
                    : (String) first.get("calib_mode"));
            t.intColumn("nsamples").append(((Number) first.get("nsamples")).intValue());
            t.intColumn("calib_seqlen").append(((Number) first.get("calib_seqlen")).intValue());
            t.intColumn("seeds").append(n);
            t.doubleColumn("ppl_mean").append(mean);
            t.doubleColumn("ppl_std").append(std);
            t.doubleColumn("ppl_geomean").append(Math.exp(logMean));
            t.doubleColumn("ci95_low").append(Math.exp(logMean - half));
            t.doubleColumn("ci95_high").append(Math.exp(logMean + half));
        }
        return t;
    }
}
