package lowbit.studies;

import lowbit.quant.mixed.BitAllocator;
import lowbit.quant.mixed.LayerOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
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
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.Rtn;
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
 * <li>sensitivity: perplexity with one linear at a time quantized (RTN), the Hessian-weighted error and kurtosis
 *     proxies at every candidate width, and their rank correlation with the measured increase;</li>
 * <li>mixed precision: the exact knapsack allocation ({@link BitAllocator}) over the proxies, at the bits per
 *     weight of each uniform width and at extra targets, evaluated next to uniform allocation; each allocation
 *     is written as a bits map that {@code ./lowbit quantize --bits-map} accepts;</li>
 * <li>calibration ablation: number of samples x seeds, and calibration text diversity (C4, task files, one
 *     task's domain) at equal token counts ({@link CalibrationAblation}).</li>
 * </ol>
 * {@link StudyReport} turns the result into tables and charts.
 */
public final class Study {
    private Study() {}

    /** The study's tables, each also derivable from the store. */
    public record Result(StudyPlan plan, Path dir, ResultStore store, String modelSha256, Table statistics, Table hessians,
                         Table methods, Table sensitivity, Table proxies, Table correlations, Table mixed,
                         Table ablation, Table diversity, Table zeroShot, int experimentsRun, double seconds) {}

    /** Runs (or resumes) the study into {@code dir}: the store is dir/store.jsonl, bits maps under dir/bits-maps. */
    /** The float model's log-probabilities for KL divergence, under the study's directory. */
    public static final String KLD_CACHE = "kld-cache";

    public static Result run(StudyPlan plan, Path dir, int threads, Progress progress) {
        long t0 = System.nanoTime();
        ResultStore store = ResultStore.open(dir.resolve("store.jsonl"));
        int before = store.size();
        Experiments.Evaluation eval = new Experiments.Evaluation(plan.model(), plan.dataset(), plan.evalSeqlen(), plan.evalWindows());
        Map<String, Object> calibParams = Map.of("source", "c4", "nsamples", plan.calibSamples(), "seqlen", plan.calibSeqlen(), "seed", plan.seed());
        String sha;
        Table stats, hessians, proxies, sensitivity;
        Map<String, int[]> shapes = new LinkedHashMap<>();
        String kldTooLarge;
        // One float model serves every part that reads it (statistics and proxies only read; sensitivity restores
        // each linear it quantizes); methods, allocations and the ablation quantize copies of their own.
        try (Checkpoint ckpt = Checkpoints.open(plan.model(), null); Transformer model = Checkpoints.load(ckpt, threads)) {
            sha = ckpt.sha256();
            // the full study's whole test set would need tens of GB of float log-probabilities: it reports perplexity alone
            var tok = Checkpoints.tokenizer(ckpt);
            kldTooLarge = Evaluator.referenceTooLarge(EvaluatedModel.of(ckpt, model, tok, null),
                    new Evaluator.Request(plan.dataset(), plan.evalSeqlen(), plan.evalWindows()), dir.resolve(KLD_CACHE));
            if (kldTooLarge != null) System.err.println("lowbit: note: methods x bits without KL divergence: " + kldTooLarge);
            for (int l = 0; l < model.config().numLayers(); l++)
                for (Linear lin : model.blockLinears(l)) shapes.put(lin.name(), new int[] {lin.outFeatures(), lin.inFeatures()});
            // Refuse a spec that does not fit this model now, not after an hour of other parts.
            List<QuantSpec> specs = new ArrayList<>(plan.methodSpecs());
            for (String s : plan.ablationSpecs()) specs.add(QuantSpec.parse(s));
            specs.add(plan.sensitivity());
            for (int b : plan.allocationBits()) specs.add(QuantSpec.of("rtn", QuantConfig.group(b, plan.allocationGroup())));
            for (QuantSpec spec : specs) recipe(plan, spec).validate(model);
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
            Map<String, Object> pp = new LinkedHashMap<>(Map.of("study", "sensitivity-proxies", "model_sha256", sha, "calibration", calibParams,
                    "bits", plan.allocationBits(), "group", plan.allocationGroup()));
            proxies = StoredTable.computeIfAbsent(store, dir, "sensitivity-proxies", pp,
                    () -> Sensitivity.proxies(model, calib, allocationConfigs(plan), progress));
            sensitivity = measuredSensitivity(plan, store, sha, model, ckpt, threads, dir.resolve(KLD_CACHE), progress);
        }

        // KL divergence to the float model beside every perplexity of methods x bits: the float row writes the
        // reference once (kept beside the store), each configuration compares with it in its one forward pass.
        Methods both = methods(plan, kldTooLarge == null ? eval.withKld(dir.resolve(KLD_CACHE)) : eval, store, threads, progress);
        Table methods = both.perplexity();
        Table correlations = correlations(sensitivity, proxies, plan.sensitivity().weightBits());
        Table mixed = mixedPrecision(plan, eval, store, dir, sha, shapes, proxies, sensitivity, threads, progress);
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
        return new Result(plan, dir, store, sha, stats, hessians, methods, sensitivity, proxies, correlations, mixed, ablation, div,
                both.zeroShot(), store.size() - before, (System.nanoTime() - t0) / 1e9);
    }

    static List<QuantConfig> allocationConfigs(StudyPlan p) {
        List<QuantConfig> cfgs = new ArrayList<>();
        for (int b : p.allocationBits()) cfgs.add(QuantConfig.group(b, p.allocationGroup()));
        return cfgs;
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

    // ---------------------------------------------------------------- sensitivity

    /**
     * Perplexity with one linear at a time quantized; one store row per linear (and one for the float model). With the
     * plan's sensitivity loss "kld", each row also carries the mean KL divergence to the float model on the same
     * window (the reference kept in {@code kldCache}), in a column kld_mean that the measured predictor then uses.
     */
    static Table measuredSensitivity(StudyPlan plan, ResultStore store, String sha, Transformer model, Checkpoint ckpt, int threads,
                                     Path kldCache, Progress progress) {
        boolean kld = plan.sensitivityLoss().equals("kld");
        QuantConfig cfg = QuantizationRecipe.of(plan.sensitivity()).weightConfig();
        Map<String, Object> base = new LinkedHashMap<>();
        base.put("study", "sensitivity");
        base.put("model", plan.model());
        base.put("model_sha256", sha);
        base.put("dataset", plan.dataset());
        base.put("eval_seqlen", plan.sensitivitySeqlen());
        base.put("eval_windows", plan.sensitivityWindows());
        base.put("spec", plan.sensitivitySpec());
        // the default (perplexity) rows keep the keys they had before the loss was a choice
        if (kld) base.put("loss", "kld");
        Table t = Table.create("sensitivity (measured, " + plan.sensitivitySpec() + ")", IntColumn.create("layer"), StringColumn.create("module"),
                StringColumn.create("name"), IntColumn.create("bits"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_increase"));
        if (kld) t.addColumns(DoubleColumn.create("kld_mean"));
        Evaluator.Request request = new Evaluator.Request(plan.dataset(), plan.sensitivitySeqlen(), plan.sensitivityWindows());
        // a view of the shared model: its provenance is the float checkpoint's, the linear quantized is in the parameters
        EvaluatedModel view = EvaluatedModel.of(ckpt, model, Checkpoints.tokenizer(ckpt), null);
        List<Linear> linears = new ArrayList<>();
        for (int l = 0; l < model.config().numLayers(); l++) linears.addAll(model.blockLinears(l));
        Map<String, Object> fpParams = new LinkedHashMap<>(base);
        fpParams.put("linear", "none");
        Row fp = store.computeIfAbsent(Row.key(fpParams), () -> sensitivityRow(fpParams, view, request, null, threads, null, cfg));
        if (kld) Evaluator.ensureReference(view, request, kldCache, Progress.NONE);
        double fpPpl = ((Number) fp.get("ppl")).doubleValue();
        try (Progress.Task task = progress.start("sensitivity", linears.size(), "linear")) {
            for (Linear lin : linears) {
                Map<String, Object> p = new LinkedHashMap<>(base);
                p.put("linear", lin.name());
                Row r = store.computeIfAbsent(Row.key(p), () -> sensitivityRow(p, view, request, kld ? kldCache : null, threads, lin, cfg));
                double ppl = ((Number) r.get("ppl")).doubleValue();
                t.intColumn("layer").append(lin.layer());
                t.stringColumn("module").append(lin.module());
                t.stringColumn("name").append(lin.name());
                t.intColumn("bits").append(cfg.bits());
                t.doubleColumn("ppl").append(ppl);
                t.doubleColumn("ppl_increase").append(ppl - fpPpl);
                if (kld) t.doubleColumn("kld_mean").append(((Number) r.at("kld.mean")).doubleValue());
                task.step(1);
            }
        }
        return t;
    }

    private static Row sensitivityRow(Map<String, Object> params, EvaluatedModel view, Evaluator.Request request, Path kldCache,
                                      int threads, Linear lin, QuantConfig cfg) {
        long t0 = System.nanoTime();
        float[] w = lin == null ? null : lin.weight();
        Evaluator.Report report;
        try {
            if (lin != null) lin.setWeight(Rtn.quantize(lin.name(), w, lin.outFeatures(), lin.inFeatures(), cfg).dequantize());
            Evaluator.Options options = Evaluator.Options.of(Progress.NONE);
            report = kldCache == null ? Evaluator.perplexity(view, request, options) : Evaluator.compare(view, request, options.withKld(kldCache));
        } finally {
            if (lin != null) lin.setWeight(w);
        }
        return report.row(params).with("grid", cfg.describe()).with("threads", threads).with("seconds", (System.nanoTime() - t0) / 1e9);
    }

    /** Spearman correlation of the measured increase with each proxy at the sensitivity width. */
    static Table correlations(Table measured, Table proxies, int bits) {
        Map<String, double[]> proxy = new LinkedHashMap<>();
        for (int i = 0; i < proxies.rowCount(); i++)
            if (((Number) proxies.column("bits").get(i)).intValue() == bits)
                proxy.put(proxies.stringColumn("name").get(i),
                        new double[] {proxies.numberColumn("hessian_error").getDouble(i), proxies.numberColumn("kurtosis").getDouble(i)});
        int n = measured.rowCount();
        double[] inc = new double[n], he = new double[n], ku = new double[n];
        for (int i = 0; i < n; i++) {
            double[] p = proxy.get(measured.stringColumn("name").get(i));
            if (p == null) throw new IllegalStateException("no proxy for " + measured.stringColumn("name").get(i) + " at " + bits + " bits");
            inc[i] = measured.doubleColumn("ppl_increase").get(i);
            he[i] = p[0];
            ku[i] = p[1];
        }
        Table t = Table.create("rank correlation with the measured perplexity increase", StringColumn.create("proxy"),
                IntColumn.create("linears"), DoubleColumn.create("spearman"));
        t.stringColumn("proxy").append("hessian_error").append("kurtosis");
        t.intColumn("linears").append(n).append(n);
        t.doubleColumn("spearman").append(n < 2 ? Double.NaN : Sensitivity.rankCorrelation(inc, he))
                .append(n < 2 ? Double.NaN : Sensitivity.rankCorrelation(inc, ku));
        return t;
    }

    // ---------------------------------------------------------------- mixed precision

    /** What a mixed allocation minimizes. */
    enum Predictor {
        /** The Hessian-weighted error sum d^T H d of each linear at each width: cheap, but blind to how much a linear's output matters downstream. */
        HESSIAN("mixed (hessian proxy)"),
        /**
         * The measured log-perplexity increase of each linear alone at the sensitivity width (or its mean KL divergence
         * to the float model, as the plan says), carried to the other widths by the linear's own Hessian-error ratio:
         * loss(l, b) = dNLL(l) * he(l, b) / he(l, b_sens).
         */
        MEASURED("mixed (measured)");

        final String label;

        Predictor(String label) {
            this.label = label;
        }
    }

    /**
     * Per-(linear, width) options under each predictor. The measured loss is the log-perplexity increase, or the mean
     * KL divergence when the measured table has kld_mean (the plan's sensitivity loss "kld"); values below 1e-6 nats
     * (noise on a short window can make an increase negative) are floored there, so every linear keeps a cost for
     * fewer bits.
     */
    static List<LayerOption> options(Predictor predictor, StudyPlan plan, Map<String, int[]> shapes, Table proxies, Table measured) {
        int sensBits = plan.sensitivity().weightBits();
        Map<String, Double> dnll = new LinkedHashMap<>(), heAtSens = new LinkedHashMap<>();
        boolean kld = measured.containsColumn("kld_mean");
        for (int i = 0; i < measured.rowCount(); i++) {
            double ppl = measured.doubleColumn("ppl").get(i), fp = ppl - measured.doubleColumn("ppl_increase").get(i);
            double loss = kld ? measured.doubleColumn("kld_mean").get(i) : Math.log(ppl) - Math.log(fp);
            dnll.put(measured.stringColumn("name").get(i), Math.max(1e-6, loss));
        }
        for (int i = 0; i < proxies.rowCount(); i++)
            if (((Number) proxies.column("bits").get(i)).intValue() == sensBits)
                heAtSens.put(proxies.stringColumn("name").get(i), proxies.numberColumn("hessian_error").getDouble(i));
        List<LayerOption> options = new ArrayList<>();
        for (int i = 0; i < proxies.rowCount(); i++) {
            String name = proxies.stringColumn("name").get(i);
            int bits = ((Number) proxies.column("bits").get(i)).intValue();
            double he = proxies.numberColumn("hessian_error").getDouble(i);
            double loss = predictor == Predictor.HESSIAN ? he : dnll.get(name) * (heAtSens.get(name) > 0 ? he / heAtSens.get(name) : 1);
            int[] s = shapes.get(name);
            options.add(LayerOption.of(name, s[0], s[1], QuantConfig.group(bits, plan.allocationGroup()), loss));
        }
        return options;
    }

    static Table mixedPrecision(StudyPlan plan, Experiments.Evaluation eval, ResultStore store, Path dir, String sha,
                                Map<String, int[]> shapes, Table proxies, Table measured, int threads, Progress progress) {
        List<LayerOption> hessian = options(Predictor.HESSIAN, plan, shapes, proxies, measured);
        List<Double> targets = new ArrayList<>();
        // storage / parameters as a double can fall a hair below the exact ratio, and the budget (target x
        // parameters, rounded down) one bit below the uniform allocation; 1e-9 bits per weight is less than one bit.
        for (int b : plan.uniformTargets()) targets.add(BitAllocator.uniform(hessian, b).bitsPerWeight() + 1e-9);
        targets.addAll(plan.extraTargets());
        Table t = Table.create("mixed precision vs uniform", StringColumn.create("method"), StringColumn.create("allocation"),
                DoubleColumn.create("target_bits"), DoubleColumn.create("bits_per_weight"), DoubleColumn.create("predicted_loss"),
                DoubleColumn.create("ppl"), StringColumn.create("bits_map"), StringColumn.create("widths"));
        int total = plan.allocationMethods().size() * (Predictor.values().length * targets.size() + plan.uniformTargets().size());
        try (Progress.Task task = progress.start("mixed precision", total, "config")) {
            for (String method : plan.allocationMethods()) {
                for (int b : plan.uniformTargets()) {
                    BitAllocator.Allocation a = BitAllocator.uniform(hessian, b);
                    QuantSpec spec = QuantSpec.of(method, QuantConfig.group(b, plan.allocationGroup()));
                    Map<String, Object> p = allocationParams(plan, eval, method, "uniform", a.bitsPerWeight(), spec);
                    Row r = store.computeIfAbsent(Row.key(p), () -> Experiments.run(p, eval, recipe(plan, spec), threads));
                    append(t, method, "uniform", a.bitsPerWeight(), a, r, "", widths(a));
                    task.step(1);
                }
                for (Predictor predictor : Predictor.values()) {
                    List<LayerOption> options = predictor == Predictor.HESSIAN ? hessian : options(predictor, plan, shapes, proxies, measured);
                    for (double target : targets) {
                        BitAllocator.Allocation a = BitAllocator.allocate(shapes.keySet(), options, target);
                        Path file = dir.resolve("bits-maps").resolve(String.format(Locale.ROOT, "mixed-%s-%s-%.3f.json", predictor.name().toLowerCase(Locale.ROOT),
                                method, target));
                        QuantConfig base = QuantConfig.group(plan.allocationBits().get(0), plan.allocationGroup());
                        Map<String, Object> prov = new LinkedHashMap<>();
                        prov.put("study", "mixed-precision");
                        prov.put("predicted_loss", predictor == Predictor.HESSIAN ? "hessian_error (RTN on the float model's calibration Hessians)"
                                : (plan.sensitivityLoss().equals("kld") ? "measured mean KL divergence to the float model" : "measured log-perplexity increase")
                                + " at " + plan.sensitivitySpec() + ", scaled per width by the hessian_error ratio");
                        prov.put("target_bits_per_weight", target);
                        prov.put("model_sha256", sha);
                        BitsMap.write(file, a, base, prov);
                        BitsMap map = BitsMap.read(file);
                        QuantSpec spec = QuantSpec.of(method, base);
                        Map<String, Object> p = allocationParams(plan, eval, method, "mixed", target, spec);
                        // The hessian predictor's rows predate the choice and keep their keys.
                        if (predictor != Predictor.HESSIAN) p.put("predictor", predictor.name().toLowerCase(Locale.ROOT));
                        if (predictor == Predictor.MEASURED && plan.sensitivityLoss().equals("kld")) p.put("sensitivity_loss", "kld");
                        p.put("bits", a.bits());
                        Row r = store.computeIfAbsent(Row.key(p), () -> Experiments.run(p, eval, recipe(plan, spec).withBitsMap(map), threads));
                        append(t, method, predictor.label, target, a, r, dir.relativize(file).toString(), widths(a));
                        task.step(1);
                    }
                }
            }
        }
        return t;
    }

    private static Map<String, Object> allocationParams(StudyPlan plan, Experiments.Evaluation eval, String method, String allocation,
                                                        double target, QuantSpec spec) {
        Map<String, Object> p = new LinkedHashMap<>(methodParams(plan, eval, spec));
        p.put("study", "mixed-precision");
        p.put("allocation", allocation);
        p.put("target_bits_per_weight", target);
        p.put("candidate_bits", plan.allocationBits());
        return p;
    }

    private static void append(Table t, String method, String allocation, double target, BitAllocator.Allocation a, Row r,
                               String file, String widths) {
        t.stringColumn("method").append(method);
        t.stringColumn("allocation").append(allocation);
        t.doubleColumn("target_bits").append(target);
        t.doubleColumn("bits_per_weight").append(((Number) r.get("bits_per_weight")).doubleValue());
        t.doubleColumn("predicted_loss").append(a.predictedLoss());
        t.doubleColumn("ppl").append(((Number) r.get("ppl")).doubleValue());
        t.stringColumn("bits_map").append(file);
        t.stringColumn("widths").append(widths);
    }

    /** "2:10 3:150 4:40 8:10": how many linears got each width. */
    static String widths(BitAllocator.Allocation a) {
        Map<Integer, Integer> count = new java.util.TreeMap<>();
        for (int b : a.bits().values()) count.merge(b, 1, Integer::sum);
        StringBuilder s = new StringBuilder();
        count.forEach((b, n) -> s.append(s.isEmpty() ? "" : " ").append(b).append(':').append(n));
        return s.toString();
    }
}
