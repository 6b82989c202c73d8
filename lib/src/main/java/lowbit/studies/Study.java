package lowbit.studies;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import lowbit.calibration.CalibrationSampler;
import lowbit.eval.Perplexity;
import lowbit.eval.TextDatasets;
import lowbit.io.Checkpoint;
import lowbit.io.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.Rtn;
import lowbit.quant.gptq.Gptq;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import lowbit.stats.LayerStatistics;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.columns.Column;

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

    /**
     * Everything a study runs. Sizes are in windows of tokens; calibration draws use {@code seed}.
     *
     * @param calibSamples        calibration windows for GPTQ, SmoothQuant, statistics and proxies
     * @param awqSamples          calibration windows for AWQ (its scale search runs the block 20 times per group)
     * @param methods             the specs compared (the float model is always included)
     * @param sensitivitySpec     the RTN grid one linear at a time is quantized with: the lowest candidate width, so that
     *                            the measured predictor scales a measured harm down to wider widths rather than
     *                            extrapolating a mild one up to where quantization breaks a layer
     * @param allocationBits      candidate widths per linear, on the group of {@code allocationGroup}
     * @param uniformTargets      widths whose uniform bits per weight become allocation targets
     * @param extraTargets        further targets in bits per weight
     * @param allocationMethods   methods the allocations are evaluated with (rtn, gptq)
     * @param ablationSpecs       specs of the calibration-size ablation (rtn runs once, as the control)
     * @param diversitySources    calibration sources compared at {@code diversitySamples} windows, concatenated mode
     */
    public record Plan(String model, String dataset, int evalSeqlen, int evalWindows,
                       int calibSamples, int calibSeqlen, int awqSamples, long seed,
                       List<String> methods,
                       String sensitivitySpec, int sensitivitySeqlen, int sensitivityWindows,
                       List<Integer> allocationBits, int allocationGroup, List<Integer> uniformTargets, List<Double> extraTargets,
                       List<String> allocationMethods,
                       List<String> ablationSpecs, List<Integer> ablationSamples, List<Long> ablationSeeds,
                       List<String> diversitySources, int diversitySamples, int statisticsTopEigen) {

        /**
         * About 15 minutes on 2 cores for the default model. Widths {3,4,6,8}: with 2-bit candidates every
         * additive predictor we tried (Hessian error, measured increase at 2 or 3 bits) chose allocations far
         * worse than uniform on this model (2-bit linears hurt together much more than alone).
         */
        public static Plan quick(String model) {
            return new Plan(model, "wikitext2", 2048, 2, 16, 512, 4, 0,
                    List.of("rtn:w8", "rtn:w4", "rtn:w4g128", "rtn:w3g128", "gptq:w4g128", "gptq:w3g128", "awq:w4g128",
                            "smoothquant:w8a8", "smoothquant:w4a8", "rtn:w4g128+kv8", "rtn:w4g128+kv4", "rtn:w4g128+kv2"),
                    "rtn:w3g128", 512, 1,
                    List.of(3, 4, 6, 8), 128, List.of(3, 4, 6), List.of(3.5), List.of("rtn"),
                    List.of("rtn:w3g128", "gptq:w3g128"), List.of(4, 16), List.of(0L, 1L),
                    List.of("c4", "tasks", "tasks:lambada_openai"), 16, 4);
        }

        /** The full-size study: the GPTQ protocol's evaluation and calibration, several seeds (hours on 2 cores). */
        public static Plan full(String model) {
            return new Plan(model, "wikitext2", 2048, 0, 128, 2048, 128, 0,
                    List.of("rtn:w8", "rtn:w4", "rtn:w3", "rtn:w4g128", "rtn:w3g128", "rtn:w2g128",
                            "gptq:w4", "gptq:w3", "gptq:w4g128", "gptq:w3g128", "gptq:w2g128", "awq:w4", "awq:w3",
                            "awq:w4g128", "awq:w3g128", "smoothquant:w8a8", "smoothquant:w4a8",
                            "rtn:w4g128+kv8", "rtn:w4g128+kv4", "rtn:w4g128+kv3", "rtn:w4g128+kv2"),
                    "rtn:w3g128", 2048, 4,
                    List.of(3, 4, 6, 8), 128, List.of(3, 4, 6), List.of(3.5, 5.0), List.of("rtn", "gptq"),
                    List.of("rtn:w3g128", "gptq:w3g128", "awq:w3g128"), List.of(8, 16, 32, 64, 128, 256), List.of(0L, 1L, 2L, 3L, 4L),
                    List.of("c4", "tasks", "tasks:lambada_openai"), 128, 8);
        }

        /** Every parameter, for the report and the rows. */
        public Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            for (var c : Plan.class.getRecordComponents()) {
                try {
                    m.put(c.getName(), c.getAccessor().invoke(this));
                } catch (ReflectiveOperationException e) {
                    throw new IllegalStateException(e);
                }
            }
            return m;
        }
    }

    /** The study's tables, each also derivable from the store. */
    public record Result(Plan plan, Path dir, ResultStore store, String modelSha256, Table statistics, Table hessians,
                         Table methods, Table sensitivity, Table proxies, Table correlations, Table mixed,
                         Table ablation, Table diversity, int experimentsRun, double seconds) {}

    /** Runs (or resumes) the study into {@code dir}: the store is dir/store.jsonl, bits maps under dir/bits-maps. */
    public static Result run(Plan plan, Path dir, int threads, Progress progress) {
        validate(plan);
        long t0 = System.nanoTime();
        ResultStore store = ResultStore.open(dir.resolve("store.jsonl"));
        int before = store.size();
        Experiments.Evaluation eval = new Experiments.Evaluation(plan.model(), plan.dataset(), plan.evalSeqlen(), plan.evalWindows());
        Map<String, Object> calibParams = Map.of("source", "c4", "nsamples", plan.calibSamples(), "seqlen", plan.calibSeqlen(), "seed", plan.seed());
        String sha;
        Table stats, hessians, proxies, sensitivity;
        Map<String, int[]> shapes = new LinkedHashMap<>();
        // One float model serves every part that reads it (statistics and proxies only read; sensitivity restores
        // each linear it quantizes); methods, allocations and the ablation quantize copies of their own.
        try (Checkpoint ckpt = Checkpoints.open(plan.model(), null); Transformer model = Transformer.load(ckpt, threads)) {
            sha = ckpt.sha256();
            for (int l = 0; l < model.config().numLayers(); l++)
                for (Linear lin : model.blockLinears(l)) shapes.put(lin.name(), new int[] {lin.outFeatures(), lin.inFeatures()});
            // Refuse a spec that does not fit this model now, not after an hour of other parts.
            List<String> specs = new ArrayList<>(plan.methods());
            specs.addAll(plan.ablationSpecs());
            specs.add(plan.sensitivitySpec());
            for (int b : plan.allocationBits()) specs.add("rtn:w" + b + "g" + plan.allocationGroup());
            for (String spec : specs) recipe(plan, spec).validate(model);
            int[][] calib = CalibrationSampler.of(Checkpoints.tokenizer(ckpt)).source("c4").nsamples(plan.calibSamples())
                    .seqlen(plan.calibSeqlen()).seed(plan.seed()).sample().windows();
            Map<String, Object> sp = new LinkedHashMap<>(Map.of("study", "layer-statistics", "model_sha256", sha, "calibration", calibParams));
            stats = storedTable(store, dir, "layer-statistics", sp, () -> {
                Table w = LayerStatistics.weights(model);
                return w.append(LayerStatistics.collectActivations(model, calib, progress).table()).setName("layer statistics");
            });
            sp.put("study", "hessian-statistics");
            sp.put("top_eigen", plan.statisticsTopEigen());
            hessians = storedTable(store, dir, "hessian-statistics", sp,
                    () -> LayerStatistics.hessians(model, calib, plan.statisticsTopEigen(), progress));
            Map<String, Object> pp = new LinkedHashMap<>(Map.of("study", "sensitivity-proxies", "model_sha256", sha, "calibration", calibParams,
                    "bits", plan.allocationBits(), "group", plan.allocationGroup()));
            proxies = storedTable(store, dir, "sensitivity-proxies", pp,
                    () -> Sensitivity.proxies(model, calib, allocationConfigs(plan), progress));
            sensitivity = measuredSensitivity(plan, store, sha, model, ckpt, threads, progress);
        }

        Table methods = methods(plan, eval, store, threads, progress);
        Table correlations = correlations(sensitivity, proxies, QuantSpec.parse(plan.sensitivitySpec()).weightBits());
        Table mixed = mixedPrecision(plan, eval, store, dir, sha, shapes, proxies, sensitivity, threads, progress);
        List<CalibrationAblation.Cell> cells = CalibrationAblation.grid(plan.ablationSpecs(), List.of("c4"), plan.ablationSamples(),
                plan.calibSeqlen(), plan.ablationSeeds());
        String diversitySpec = plan.ablationSpecs().stream().filter(s -> !s.startsWith("rtn:")).findFirst().orElse(null);
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
                store.size() - before, (System.nanoTime() - t0) / 1e9);
    }

    static void validate(Plan p) {
        if (p.evalSeqlen() < 2 || p.evalWindows() < 0) throw new IllegalArgumentException("study: eval seqlen must be >= 2 and windows >= 0");
        if (p.sensitivityWindows() < 1) throw new IllegalArgumentException("study: sensitivity windows must be >= 1");
        for (String s : p.methods()) QuantSpec.parse(s);
        for (String s : p.ablationSpecs()) QuantSpec.parse(s);
        QuantSpec sens = QuantSpec.parse(p.sensitivitySpec());
        if (!"rtn".equals(sens.method())) throw new IllegalArgumentException("study: the sensitivity spec must be an rtn spec, got " + p.sensitivitySpec());
        if (!p.allocationBits().contains(sens.weightBits()))
            throw new IllegalArgumentException("study: the sensitivity width " + sens.weightBits() + " must be one of the allocation widths "
                    + p.allocationBits() + " (the proxies are correlated with it)");
        for (int b : p.uniformTargets())
            if (!p.allocationBits().contains(b)) throw new IllegalArgumentException("study: uniform target " + b + " is not an allocation width " + p.allocationBits());
        for (String m : p.allocationMethods())
            if (!m.equals("rtn") && !m.equals("gptq")) throw new IllegalArgumentException("study: allocations are evaluated with rtn or gptq, got " + m);
    }

    static List<QuantConfig> allocationConfigs(Plan p) {
        List<QuantConfig> cfgs = new ArrayList<>();
        for (int b : p.allocationBits()) cfgs.add(QuantConfig.group(b, p.allocationGroup()));
        return cfgs;
    }

    // ---------------------------------------------------------------- methods x bits

    static QuantizationRecipe recipe(Plan plan, String spec) {
        QuantizationRecipe r = QuantizationRecipe.of(spec);
        String method = r.spec().method();
        if ("gptq".equals(method)) r = r.withGptq(Gptq.Options.defaults().withActOrder(true));
        if (needsCalibration(r)) {
            int n = "awq".equals(method) ? plan.awqSamples() : plan.calibSamples();
            r = r.withCalibration(new QuantizationRecipe.Calibration("c4", n, plan.calibSeqlen(), plan.seed(), CalibrationSampler.Mode.DOCUMENTS));
        }
        return r;
    }

    static boolean needsCalibration(QuantizationRecipe r) {
        String m = r.spec().method();
        return "gptq".equals(m) || "awq".equals(m) || "smoothquant".equals(m) || r.staticActivations();
    }

    static Map<String, Object> methodParams(Plan plan, Experiments.Evaluation eval, String spec) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("study", "methods");
        p.putAll(eval.parameters());
        p.put("spec", spec);
        if (spec.equals("fp")) return p;
        QuantizationRecipe r = recipe(plan, spec);
        if ("gptq".equals(r.spec().method())) p.put("act_order", true);
        if (needsCalibration(r)) {
            QuantizationRecipe.Calibration c = r.calibration();
            p.put("calibration", Map.of("source", c.source(), "nsamples", c.nsamples(), "seqlen", c.seqlen(), "seed", c.seed()));
        }
        return p;
    }

    static Table methods(Plan plan, Experiments.Evaluation eval, ResultStore store, int threads, Progress progress) {
        List<String> specs = new ArrayList<>(List.of("fp"));
        specs.addAll(plan.methods());
        List<Row> rows = new ArrayList<>();
        try (Progress.Task task = progress.start("methods", specs.size(), "config")) {
            for (String spec : specs) {
                Map<String, Object> params = methodParams(plan, eval, spec);
                task.message(spec);
                rows.add(store.computeIfAbsent(Row.key(params),
                        () -> Experiments.run(params, eval, spec.equals("fp") ? null : recipe(plan, spec), threads)));
                task.step(1);
            }
        }
        Table t = Table.create("methods x bits", StringColumn.create("spec"), StringColumn.create("method"),
                IntColumn.create("weight_bits"), StringColumn.create("activations"), StringColumn.create("kv_cache"),
                DoubleColumn.create("bits_per_weight"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_vs_fp"),
                DoubleColumn.create("seconds"));
        double fp = ((Number) rows.get(0).get("ppl")).doubleValue();
        for (Row r : rows) {
            String spec = (String) r.get("spec");
            QuantSpec q = spec.equals("fp") ? null : QuantSpec.parse(spec);
            t.stringColumn("spec").append(spec);
            t.stringColumn("method").append(q == null ? "fp" : q.method() == null ? "fp" : q.method());
            // Unquantized weights are held and multiplied as float32 whatever the checkpoint stored (bf16, Q4_1, ...).
            t.intColumn("weight_bits").append(q == null || q.method() == null ? 32 : q.weightBits());
            t.stringColumn("activations").append(q == null || q.activationBits() == 0 ? "fp" : "a" + q.activationBits());
            t.stringColumn("kv_cache").append(q == null || q.kvBits() == 0 ? "fp" : "kv" + q.kvBits());
            t.doubleColumn("bits_per_weight").append(((Number) r.get("bits_per_weight")).doubleValue());
            double ppl = ((Number) r.get("ppl")).doubleValue();
            t.doubleColumn("ppl").append(ppl);
            t.doubleColumn("ppl_vs_fp").append(ppl / fp);
            t.doubleColumn("seconds").append(((Number) r.get("seconds")).doubleValue());
        }
        return t;
    }

    // ---------------------------------------------------------------- sensitivity

    /** Perplexity with one linear at a time quantized; one store row per linear (and one for the float model). */
    static Table measuredSensitivity(Plan plan, ResultStore store, String sha, Transformer model, Checkpoint ckpt, int threads,
                                     Progress progress) {
        QuantConfig cfg = QuantizationRecipe.of(plan.sensitivitySpec()).weightConfig();
        Map<String, Object> base = new LinkedHashMap<>();
        base.put("study", "sensitivity");
        base.put("model", plan.model());
        base.put("model_sha256", sha);
        base.put("dataset", plan.dataset());
        base.put("eval_seqlen", plan.sensitivitySeqlen());
        base.put("eval_windows", plan.sensitivityWindows());
        base.put("spec", plan.sensitivitySpec());
        Table t = Table.create("sensitivity (measured, " + plan.sensitivitySpec() + ")", IntColumn.create("layer"), StringColumn.create("module"),
                StringColumn.create("name"), IntColumn.create("bits"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_increase"));
        TextDatasets.Text text = TextDatasets.load(plan.dataset());
        int[] ids = Experiments.tokens(ckpt, Checkpoints.tokenizer(ckpt), text);
        List<Linear> linears = new ArrayList<>();
        for (int l = 0; l < model.config().numLayers(); l++) linears.addAll(model.blockLinears(l));
        Map<String, Object> fpParams = new LinkedHashMap<>(base);
        fpParams.put("linear", "none");
        Row fp = store.computeIfAbsent(Row.key(fpParams), () -> sensitivityRow(fpParams, model, ids, plan, ckpt, text, threads, null, cfg));
        double fpPpl = ((Number) fp.get("ppl")).doubleValue();
        try (Progress.Task task = progress.start("sensitivity", linears.size(), "linear")) {
            for (Linear lin : linears) {
                Map<String, Object> p = new LinkedHashMap<>(base);
                p.put("linear", lin.name());
                Row r = store.computeIfAbsent(Row.key(p), () -> sensitivityRow(p, model, ids, plan, ckpt, text, threads, lin, cfg));
                double ppl = ((Number) r.get("ppl")).doubleValue();
                t.intColumn("layer").append(lin.layer());
                t.stringColumn("module").append(lin.module());
                t.stringColumn("name").append(lin.name());
                t.intColumn("bits").append(cfg.bits());
                t.doubleColumn("ppl").append(ppl);
                t.doubleColumn("ppl_increase").append(ppl - fpPpl);
                task.step(1);
            }
        }
        return t;
    }

    private static Row sensitivityRow(Map<String, Object> params, Transformer model, int[] ids, Plan plan, Checkpoint ckpt,
                                      TextDatasets.Text text, int threads, Linear lin, QuantConfig cfg) {
        long t0 = System.nanoTime();
        float[] w = lin == null ? null : lin.weight();
        double ppl;
        try {
            if (lin != null) lin.setWeight(Rtn.quantize(lin.name(), w, lin.outFeatures(), lin.inFeatures(), cfg).dequantize());
            ppl = Perplexity.evaluate(model, ids, plan.sensitivitySeqlen(), plan.sensitivityWindows(), Progress.NONE).ppl();
        } finally {
            if (lin != null) lin.setWeight(w);
        }
        return Row.of(Row.key(params)).withAll(params)
                .with("ppl", ppl)
                .with("grid", cfg.describe())
                .with("dataset_sha256", text.sha256())
                .with("threads", threads)
                .with("seconds", (System.nanoTime() - t0) / 1e9)
                .withProvenance();
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
         * The measured log-perplexity increase of each linear alone at the sensitivity width, carried to the other
         * widths by the linear's own Hessian-error ratio: loss(l, b) = dNLL(l) * he(l, b) / he(l, b_sens).
         */
        MEASURED("mixed (measured)");

        final String label;

        Predictor(String label) {
            this.label = label;
        }
    }

    /**
     * Per-(linear, width) options under each predictor. Measured increases below 1e-6 nats (noise on a short
     * window can make them negative) are floored there, so every linear keeps a cost for fewer bits.
     */
    static List<LayerOption> options(Predictor predictor, Plan plan, Map<String, int[]> shapes, Table proxies, Table measured) {
        int sensBits = QuantSpec.parse(plan.sensitivitySpec()).weightBits();
        Map<String, Double> dnll = new LinkedHashMap<>(), heAtSens = new LinkedHashMap<>();
        for (int i = 0; i < measured.rowCount(); i++) {
            double ppl = measured.doubleColumn("ppl").get(i), fp = ppl - measured.doubleColumn("ppl_increase").get(i);
            dnll.put(measured.stringColumn("name").get(i), Math.max(1e-6, Math.log(ppl) - Math.log(fp)));
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

    static Table mixedPrecision(Plan plan, Experiments.Evaluation eval, ResultStore store, Path dir, String sha,
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
                    String spec = method + ":w" + b + "g" + plan.allocationGroup();
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
                                : "measured log-perplexity increase at " + plan.sensitivitySpec() + ", scaled per width by the hessian_error ratio");
                        prov.put("target_bits_per_weight", target);
                        prov.put("model_sha256", sha);
                        BitsMap.write(file, a, base, prov);
                        BitsMap map = BitsMap.read(file);
                        String spec = method + ":w" + plan.allocationBits().get(0) + "g" + plan.allocationGroup();
                        Map<String, Object> p = allocationParams(plan, eval, method, "mixed", target, spec);
                        // The hessian predictor's rows predate the choice and keep their keys.
                        if (predictor != Predictor.HESSIAN) p.put("predictor", predictor.name().toLowerCase(Locale.ROOT));
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

    private static Map<String, Object> allocationParams(Plan plan, Experiments.Evaluation eval, String method, String allocation,
                                                        double target, String spec) {
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

    // ---------------------------------------------------------------- tables kept in the store

    /**
     * A table computed once per parameter set: its rows go to dir/tables/NAME-KEY.jsonl and, when complete,
     * a row with the same key into the store marks it done; a study that stopped half-way recomputes it.
     */
    static Table storedTable(ResultStore store, Path dir, String name, Map<String, Object> params, Supplier<Table> compute) {
        String key = Row.key(params);
        Path file = dir.resolve("tables").resolve(name + "-" + key.substring(0, 12) + ".jsonl");
        if (store.contains(key) && Files.isRegularFile(file)) {
            Table t = ResultStore.open(file).table().setName(name.replace('-', ' '));
            t.removeColumns(ResultStore.KEY_FIELD);
            return t;
        }
        long t0 = System.nanoTime();
        Table t = compute.get();
        try {
            Files.createDirectories(file.getParent());
            Files.deleteIfExists(file);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot write " + file, e);
        }
        ResultStore rows = ResultStore.open(file);
        for (int i = 0; i < t.rowCount(); i++) {
            Map<String, Object> f = new LinkedHashMap<>();
            for (Column<?> c : t.columns()) {
                Object v = c.get(i);
                f.put(c.name(), v instanceof Float x ? (double) x : v);
            }
            rows.append(new Row(key + "/" + i, f));
        }
        store.tryAppend(Row.of(key).withAll(params).with("table", dir.relativize(file).toString()).with("rows", t.rowCount())
                .with("seconds", (System.nanoTime() - t0) / 1e9).withProvenance());
        return t;
    }
}
