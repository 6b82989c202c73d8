package lowbit.studies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.CalibrationSampler;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.eval.tasks.Task;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.io.FormatException;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.gptq.Gptq;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import lowbit.results.StoredTable;
import lowbit.stats.LayerStatistics;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The main study of one model, in five parts, every result written into one {@link ResultStore} as it finishes
 * (so an interrupted study resumes and a re-run skips what is done):
 * <ol>
 * <li>per-layer statistics of weights, linear inputs and the K/V cache, and Hessian trace and top eigenvalues;</li>
 * <li>methods x bits: perplexity of every spec in the plan against the float model;</li>
 * <li>sensitivity and mixed precision ({@link MixedStudy}, through {@code lowbit.quant.mixed}): each linear's KL
 *     divergence to the float model at the probe width with its split-half reliability, the cheap predictors' rank
 *     correlation with it, and per method and seed the refined allocation at the bits per weight of each uniform
 *     width and at extra targets, compared with uniform, llama.cpp's Q4_K_M rule, first-last higher and five random
 *     allocations on held-out windows; each mixed allocation is written as a bits map that
 *     {@code ./lowbit quantize --bits-map} accepts;</li>
 * <li>calibration ablation: number of samples x seeds, and calibration text diversity (C4, task files, one
 *     task's domain) at equal token counts ({@link CalibrationAblation}).</li>
 * </ol>
 * {@link StudyReport} turns the result into tables and charts.
 */
public final class Study {
    private Study() {}

    /** The study's tables, each also derivable from the store. */
    public record Result(StudyPlan plan, Path dir, ResultStore store, String modelSha256, Table statistics, Table hessians,
                         Table methods, Table sensitivity, Table correlations, Table mixed, Table allocations,
                         Table ablation, Table diversity, Table zeroShot, int experimentsRun, double seconds) {}

    /** The float model's log-probabilities for KL divergence, under the study's directory. */
    public static final String KLD_CACHE = "kld-cache";

    /** Runs (or resumes) the study into {@code dir}: the store is dir/store.jsonl, bits maps under dir/bits-maps. */
    public static Result run(StudyPlan plan, Path dir, int threads, Progress progress) {
        long t0 = System.nanoTime();
        ResultStore store = ResultStore.open(dir.resolve("store.jsonl"));
        int before = store.size();
        Experiments.Evaluation eval = new Experiments.Evaluation(plan.model(), plan.dataset(), plan.evalSeqlen(), plan.evalWindows());
        Map<String, Object> calibParams = Map.of("source", "c4", "nsamples", plan.calibSamples(), "seqlen", plan.calibSeqlen(), "seed", plan.seed());
        String sha;
        Table stats, hessians;
        String kldTooLarge;
        // One float model serves the statistics (they only read it); methods and the ablation quantize copies of their
        // own, and mixed precision loads its float model when a session is not yet stored.
        try (Checkpoint ckpt = Checkpoints.open(plan.model(), null); Transformer model = Checkpoints.load(ckpt, threads)) {
            sha = ckpt.sha256();
            // the full study's whole test set would need tens of GB of float log-probabilities: it reports perplexity alone
            var tok = Checkpoints.tokenizer(ckpt);
            kldTooLarge = Evaluator.referenceTooLarge(EvaluatedModel.of(ckpt, model, tok, null),
                    new Evaluator.Request(plan.dataset(), plan.evalSeqlen(), plan.evalWindows()), dir.resolve(KLD_CACHE));
            if (kldTooLarge != null) System.err.println("lowbit: note: methods x bits without KL divergence: " + kldTooLarge);
            // Refuse a spec that does not fit this model now, not after an hour of other parts.
            List<QuantSpec> specs = new ArrayList<>(plan.methodSpecs());
            for (String s : plan.ablationSpecs()) specs.add(QuantSpec.parse(s));
            for (QuantSpec spec : specs) recipe(plan, spec).validate(model);
            for (String method : plan.allocationMethods())
                for (int b : plan.candidates()) recipe(plan, QuantSpec.of(method, QuantConfig.group(b, plan.allocationGroup()))).validate(model);
            int[][] calib = CalibrationSampler.of(tok).source("c4").nsamples(plan.calibSamples())
                    .seqlen(plan.calibSeqlen()).seed(plan.seed()).sample().windows();
            Map<String, Object> sp = new LinkedHashMap<>(Map.of("study", "layer-statistics", "model_sha256", sha, "calibration", calibParams));
            stats = StoredTable.computeIfAbsent(store, dir, "layer-statistics", sp, () -> {
                Table w = LayerStatistics.weights(model);
                return w.append(LayerStatistics.collectActivations(model, calib, progress).table()).setName("layer statistics");
            });
            sp.put("study", "hessian-statistics");
            sp.put("top_eigen", plan.statisticsTopEigen());
            hessians = StoredTable.computeIfAbsent(store, dir, "hessian-statistics", sp,
                    () -> LayerStatistics.hessians(model, calib, plan.statisticsTopEigen(), progress));
        }

        // KL divergence to the float model beside every perplexity of methods x bits: the float row writes the
        // reference once (kept beside the store), each configuration compares with it in its one forward pass.
        Methods both = methods(plan, kldTooLarge == null ? eval.withKld(dir.resolve(KLD_CACHE)) : eval, store, threads, progress);
        Table methods = both.perplexity();
        MixedStudy.Part mixed = MixedStudy.run(plan, dir, store, sha, threads, progress);
        List<CalibrationAblation.Cell> cells = CalibrationAblation.grid(plan.ablationSpecs(), List.of("c4"), plan.ablationSamples(),
                plan.calibSeqlen(), plan.ablationSeeds());
        String diversitySpec = plan.ablationSpecs().stream().filter(s -> !"rtn".equals(QuantSpec.parse(s).method())).findFirst().orElse(null);
        List<CalibrationAblation.Cell> diversity = new ArrayList<>();
        if (diversitySpec != null)
            for (String src : plan.diversitySources())
                for (long seed : plan.ablationSeeds())
                    diversity.add(new CalibrationAblation.Cell(diversitySpec, src, plan.diversitySamples(), plan.calibSeqlen(), seed,
                            CalibrationSampler.Mode.CONCATENATED));
        CalibrationAblation.Evaluation ae = new CalibrationAblation.Evaluation(plan.model(), plan.dataset(), plan.evalSeqlen(), plan.evalWindows());
        Table ablation = CalibrationAblation.summary(CalibrationAblation.run(store, ae, cells, threads, progress));
        Table div = diversity.isEmpty() ? CalibrationAblation.summary(List.of()).setName("calibration diversity")
                : CalibrationAblation.summary(CalibrationAblation.run(store, ae, diversity, threads, progress)).setName("calibration diversity");
        return new Result(plan, dir, store, sha, stats, hessians, methods, mixed.sensitivity(), mixed.correlations(), mixed.summary(),
                mixed.allocations(), ablation, div, both.zeroShot(), store.size() - before, (System.nanoTime() - t0) / 1e9);
    }

    // ---------------------------------------------------------------- methods x bits

    static QuantizationRecipe recipe(StudyPlan plan, QuantSpec spec) {
        QuantizationRecipe r = QuantizationRecipe.of(spec);
        String method = spec.method();
        if ("gptq".equals(method)) r = r.withGptq(new QuantizationRecipe.GptqOptions(Gptq.Options.defaults().withActOrder(true), false));
        if (r.calibrates()) {
            int n = "awq".equals(method) ? plan.awqSamples() : plan.calibSamples();
            r = r.withCalibration(new QuantizationRecipe.Calibration("c4", n, plan.calibSeqlen(), plan.seed(), CalibrationSampler.Mode.DOCUMENTS));
        }
        return r;
    }


    static Map<String, Object> methodParams(StudyPlan plan, Experiments.Evaluation eval, QuantSpec spec) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("study", "methods");
        p.putAll(eval.parameters());
        p.put("spec", spec.text());
        if (spec.equals(QuantSpec.FP)) return p;
        QuantizationRecipe r = recipe(plan, spec);
        if ("gptq".equals(r.spec().method())) p.put("act_order", true);
        if (r.calibrates()) {
            QuantizationRecipe.Calibration c = r.calibration();
            p.put("calibration", Map.of("source", c.source(), "nsamples", c.nsamples(), "seqlen", c.seqlen(), "seed", c.seed()));
        }
        return p;
    }

    /** The methods x bits tables: perplexity (and KL divergence) of every spec, and zero-shot accuracy of some. */
    record Methods(Table perplexity, Table zeroShot) {}

    static Methods methods(StudyPlan plan, Experiments.Evaluation eval, ResultStore store, int threads, Progress progress) {
        List<QuantSpec> specs = new ArrayList<>(List.of(QuantSpec.FP));
        specs.addAll(plan.methodSpecs());
        List<ZeroShot.Prepared> tasks = zeroShotTasks(plan);
        List<Row> rows = new ArrayList<>();
        List<Row> taskRows = new ArrayList<>();
        List<QuantSpec> taskSpecs = new ArrayList<>();
        try (Progress.Task task = progress.start("methods", specs.size(), "config")) {
            for (QuantSpec spec : specs) {
                Map<String, Object> params = methodParams(plan, eval, spec);
                task.message(spec.text());
                boolean scored = spec.equals(QuantSpec.FP) || plan.zeroShotMethods().contains(spec.text());
                List<Experiments.TaskRun> runs = new ArrayList<>();
                if (scored) for (ZeroShot.Prepared p : tasks) runs.add(new Experiments.TaskRun(zeroShotParams(params, p), p));
                List<Row> done = Experiments.run(store, params, eval, spec.equals(QuantSpec.FP) ? null : recipe(plan, spec), runs, threads,
                        Progress.NONE);
                rows.add(done.get(0));
                for (Row r : done.subList(1, done.size())) {
                    taskRows.add(r);
                    taskSpecs.add(spec);
                }
                task.step(1);
            }
        }
        return new Methods(perplexityTable(specs, rows), zeroShotTable(taskSpecs, taskRows));
    }

    /** The plan's tasks with their items read; a task whose files are not in the data directory is left out with a note. */
    static List<ZeroShot.Prepared> zeroShotTasks(StudyPlan plan) {
        List<ZeroShot.Prepared> out = new ArrayList<>();
        for (String name : plan.zeroShotTasks()) {
            Task task = Tasks.get(name);
            try {
                task.paths();
            } catch (FormatException e) {
                System.err.println("lowbit: note: zero-shot task " + name + " left out: " + e.getMessage());
                continue;
            }
            out.add(ZeroShot.Prepared.of(task, plan.zeroShotLimit()));
        }
        return out;
    }

    /** A task's row on a configuration: the configuration's parameters without the perplexity protocol's, and the task's. */
    static Map<String, Object> zeroShotParams(Map<String, Object> methodParams, ZeroShot.Prepared p) {
        Map<String, Object> m = new LinkedHashMap<>(methodParams);
        m.put("study", "zero-shot");
        m.remove("dataset");
        m.remove("eval_seqlen");
        m.remove("eval_windows");
        m.put("task", p.task().name());
        m.put("data_sha256", p.dataSha256());
        m.put("limit", p.limit());
        m.put("num_fewshot", 0);
        m.put("lm_eval", ZeroShot.LM_EVAL_VERSION);
        return m;
    }

    /** One row per (configuration, task): lm-eval's metrics with their standard errors. */
    static Table zeroShotTable(List<QuantSpec> specs, List<Row> rows) {
        Table t = Table.create("zero-shot accuracy", StringColumn.create("spec"), StringColumn.create("method"),
                DoubleColumn.create("bits_per_weight"), StringColumn.create("task"), IntColumn.create("items"),
                DoubleColumn.create("acc"), DoubleColumn.create("acc_stderr"), DoubleColumn.create("acc_norm"),
                DoubleColumn.create("acc_norm_stderr"), DoubleColumn.create("perplexity"));
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            QuantSpec q = specs.get(i);
            t.stringColumn("spec").append(q.text());
            t.stringColumn("method").append(q.method() == null ? "fp" : q.method());
            t.doubleColumn("bits_per_weight").append(((Number) r.get("bits_per_weight")).doubleValue());
            t.stringColumn("task").append((String) r.get("task"));
            t.intColumn("items").append(((Number) r.get("items")).intValue());
            for (String metric : List.of("acc", "acc_stderr", "acc_norm", "acc_norm_stderr", "perplexity"))
                t.doubleColumn(metric).append(r.at("metrics." + metric) instanceof Number n ? n.doubleValue() : Double.NaN);
        }
        return t;
    }

    static Table perplexityTable(List<QuantSpec> specs, List<Row> rows) {
        Table t = Table.create("methods x bits", StringColumn.create("spec"), StringColumn.create("method"),
                IntColumn.create("weight_bits"), StringColumn.create("activations"), StringColumn.create("kv_cache"),
                StringColumn.create("rotation"), DoubleColumn.create("bits_per_weight"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_vs_fp"),
                DoubleColumn.create("kld_mean"), DoubleColumn.create("same_top_p"), DoubleColumn.create("seconds"));
        double fp = ((Number) rows.get(0).get("ppl")).doubleValue();
        for (int i = 0; i < rows.size(); i++) {
            Row r = rows.get(i);
            QuantSpec q = specs.get(i);
            t.stringColumn("spec").append(q.text());
            t.stringColumn("method").append(q.method() == null ? "fp" : q.method());
            // Unquantized weights are held and multiplied as float32 whatever the checkpoint stored (bf16, Q4_1, ...).
            t.intColumn("weight_bits").append(q.method() == null ? 32 : q.weightBits());
            t.stringColumn("activations").append(q.activationBits() == 0 ? "fp" : "a" + q.activationBits());
            t.stringColumn("kv_cache").append(q.kvBits() == 0 ? "fp" : "kv" + q.kvBits());
            t.stringColumn("rotation").append(q.rotates() ? q.rotation().term() : "none");
            t.doubleColumn("bits_per_weight").append(((Number) r.get("bits_per_weight")).doubleValue());
            double ppl = ((Number) r.get("ppl")).doubleValue();
            t.doubleColumn("ppl").append(ppl);
            t.doubleColumn("ppl_vs_fp").append(ppl / fp);
            // rows stored before KL divergence was measured, and the float model itself, have none
            t.doubleColumn("kld_mean").append(r.at("kld.mean") instanceof Number k ? k.doubleValue() : Double.NaN);
            t.doubleColumn("same_top_p").append(r.at("kld.same_top_p") instanceof Number k ? k.doubleValue() : Double.NaN);
            t.doubleColumn("seconds").append(((Number) r.get("seconds")).doubleValue());
        }
        return t;
    }
}
