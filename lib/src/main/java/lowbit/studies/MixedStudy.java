package lowbit.studies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.Evaluator;
import lowbit.eval.TextDatasets;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.mixed.Allocations;
import lowbit.quant.mixed.Allocations.Granularity;
import lowbit.quant.mixed.Candidates;
import lowbit.quant.mixed.Comparison;
import lowbit.quant.mixed.KldProbe;
import lowbit.quant.mixed.MixedPrecision;
import lowbit.quant.mixed.Sensitivities.Predictor;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import lowbit.results.StoredTable;
import lowbit.tokenizer.Tokenizer;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * The study's mixed-precision part, through {@link MixedPrecision}: per allocation method and seed one session
 * (candidates by the method, per-linear KL divergence on the seed's C4 sensitivity windows, refinement on its selection
 * windows), an allocation at every target, and {@link Comparison} of it with uniform and the baselines on held-out
 * WikiText-2 test windows. Every (method, seed, target, allocation) is one store row with its per-window KL divergence
 * and NLL, so the summary's intervals can be recomputed from the store; a session whose rows are all stored is not
 * prepared again.
 */
final class MixedStudy {
    private MixedStudy() {}

    static final String STUDY = "mixed-precision";

    /**
     * The part's tables: the per-linear sensitivities and the predictors' correlations (first method, first seed),
     * {@link Comparison#summary} over every run, and one row per mixed allocation with its check on the selection windows.
     */
    record Part(Table sensitivity, Table correlations, Table summary, Table allocations, List<Comparison.Entry> entries) {}

    /**
     * A target as the plan gives it: uniform {@code width}'s bits per weight on the session's candidates (scales, zeros
     * and GPTQ's group index included), or {@code bits} as written.
     */
    record Target(String label, int width, double bits) {
        static List<Target> of(StudyPlan p) {
            List<Target> out = new ArrayList<>();
            for (int b : p.uniformTargets()) out.add(new Target("w" + b + "g" + p.allocationGroup(), b, Double.NaN));
            for (double t : p.extraTargets()) out.add(new Target(Double.toString(t), 0, t));
            return out;
        }

        double on(Candidates c) {
            // storage / parameters as a double can fall a hair below the exact ratio, and the budget (target x parameters,
            // rounded down) one bit below the uniform allocation; 1e-9 bits per weight is less than one bit.
            return width > 0 ? c.bitsPerWeight(Allocations.uniform(c, width)) + 1e-9 : bits;
        }
    }

    static Part run(StudyPlan plan, Path dir, ResultStore store, String sha, int threads, Progress progress) {
        List<Comparison.Entry> entries = new ArrayList<>();
        Table allocations = allocationsTable();
        Table sensitivity = null, correlations = null;
        try (Checkpoint ckpt = Checkpoints.open(plan.model(), null); FloatModel fm = new FloatModel(ckpt, threads)) {
            for (String method : plan.allocationMethods())
                for (long seed : plan.allocationSeeds()) {
                    Run run = new Run(plan, ckpt, fm, method, seed, progress);
                    Map<String, Object> base = sessionParams(plan, sha, method, seed);
                    if (sensitivity == null) {
                        Map<String, Object> sp = new LinkedHashMap<>(base);
                        sp.put("study", "sensitivity");
                        sensitivity = StoredTable.computeIfAbsent(store, dir, "sensitivity", sp, () -> run.session().sensitivities().table());
                        sp.put("study", "sensitivity-correlations");
                        correlations = StoredTable.computeIfAbsent(store, dir, "sensitivity-correlations", sp,
                                () -> run.session().sensitivities().correlations());
                    }
                    for (Target target : Target.of(plan)) {
                        Map<String, Map<String, Object>> params = new LinkedHashMap<>();
                        List<String> names = Comparison.allocationNames(run.method);
                        for (String a : names) params.put(a, rowParams(plan, base, target, a));
                        List<String> missing = names.stream().filter(a -> !store.contains(Row.key(params.get(a)))).toList();
                        if (!missing.isEmpty()) measure(plan, dir, store, run, target, params, missing, progress);
                        for (String a : names) {
                            Row r = store.get(Row.key(params.get(a))).orElseThrow();
                            entries.add(entry(r));
                            if (a.equals("mixed")) appendAllocation(allocations, r);
                        }
                    }
                }
        }
        if (sensitivity == null) {
            // no allocation method in the plan: the part is empty
            sensitivity = Table.create("sensitivity per linear");
            correlations = Table.create("predictors against the measured KL divergence");
        }
        return new Part(sensitivity, correlations, Comparison.summary(entries), allocations, entries);
    }

    /** The session's allocation at {@code target}, its bits map, and the held-out measurement of the allocations not yet stored. */
    private static void measure(StudyPlan plan, Path dir, ResultStore store, Run run, Target target, Map<String, Map<String, Object>> params,
                                List<String> missing, Progress progress) {
        MixedPrecision.Session s = run.session();
        Candidates c = s.candidates();
        double bits = target.on(c);
        MixedPrecision.Result r = s.allocate(bits, Predictor.KLD, Granularity.LINEAR, plan.refine(), progress);
        Path file = dir.resolve("bits-maps").resolve(String.format(Locale.ROOT, "mixed-%s-seed%d-%s.json", run.method, run.seed, target.label()));
        s.write(file, r);
        Map<String, Map<String, Integer>> all = Comparison.allocations(r, c, bits, s.floatModel().config().numLayers(), run.seed);
        Map<String, Map<String, Integer>> todo = new LinkedHashMap<>();
        for (String a : missing) todo.put(a, all.get(a));
        long t0 = System.nanoTime();
        List<Comparison.Entry> measured = Comparison.evaluate(run.heldOut(), c, bits, run.seed, todo, Comparison.ownWeights(r), progress);
        double seconds = (System.nanoTime() - t0) / 1e9 / todo.size();
        Map<String, Object> session = new LinkedHashMap<>(s.provenance(r));
        session.remove("refinement");
        session.remove("target_bits_per_weight");
        session.remove("grid");
        session.put("timings", s.timings());
        for (Comparison.Entry e : measured) {
            Map<String, Object> p = params.get(e.allocation());
            Row row = Row.of(Row.key(p)).withAll(p).with("target_bits", bits).with("bits_per_weight", e.bitsPerWeight())
                    .with("widths", e.widths()).with("kld_mean", mean(e.kld())).with("ppl", Math.exp(mean(e.nll())))
                    .with("kld", boxed(e.kld())).with("nll", boxed(e.nll())).with("bits", todo.get(e.allocation()))
                    .with("session", session).with("allocation_seconds", r.seconds()).with("seconds", seconds);
            if (e.allocation().equals("mixed"))
                row = row.with("bits_map", dir.relativize(file).toString()).with("refinement", s.provenance(r).get("refinement"))
                        .with("knapsack_widths", Allocations.widths(r.knapsack()));
            store.tryAppend(row.withProvenance());
        }
    }

    /** What one session is: the method, its seed and windows, the candidates, how sensitivity is measured and used. */
    static Map<String, Object> sessionParams(StudyPlan plan, String sha, String method, long seed) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("study", STUDY);
        p.put("model", plan.model());
        p.put("model_sha256", sha);
        p.put("method", method);
        p.put("seed", seed);
        p.put("candidates", plan.candidates());
        p.put("group", plan.allocationGroup());
        p.put("probe_bits", plan.probeBits());
        p.put("windows", plan.allocationWindows().withSeed(seed).describe());
        QuantizationRecipe r = recipe(plan, method, seed);
        if (r.calibrates()) {
            QuantizationRecipe.Calibration cal = r.calibration();
            p.put("calibration", Map.of("source", cal.source(), "nsamples", cal.nsamples(), "seqlen", cal.seqlen(), "seed", cal.seed()));
        }
        return p;
    }

    private static Map<String, Object> rowParams(StudyPlan plan, Map<String, Object> session, Target target, String allocation) {
        Map<String, Object> p = new LinkedHashMap<>(session);
        p.put("target", target.label());
        p.put("allocation", allocation);
        p.put("predictor", Predictor.KLD.label());
        p.put("granularity", Granularity.LINEAR.label());
        p.put("refine", plan.refine());
        p.put("held_out", Map.of("dataset", "wikitext2", "windows", plan.heldOutWindows(), "seqlen", plan.heldOutSeqlen()));
        return p;
    }

    /** The study's recipe for {@code method} at the lowest candidate width, calibrated (GPTQ) on the allocation seed's draw. */
    static QuantizationRecipe recipe(StudyPlan plan, String method, long seed) {
        QuantizationRecipe r = Study.recipe(plan, QuantSpec.of(method, QuantConfig.group(plan.candidates().get(0), plan.allocationGroup())));
        if (!r.calibrates()) return r;
        QuantizationRecipe.Calibration c = r.calibration();
        return r.withCalibration(new QuantizationRecipe.Calibration(c.source(), c.nsamples(), c.seqlen(), seed, c.mode()));
    }

    /** A stored row as the comparison's entry. */
    static Comparison.Entry entry(Row r) {
        return new Comparison.Entry((String) r.get("method"), num(r, "target_bits"), (String) r.get("allocation"),
                ((Number) r.get("seed")).longValue(), num(r, "bits_per_weight"), (String) r.get("widths"), doubles(r.get("kld")),
                doubles(r.get("nll")));
    }

    static Table allocationsTable() {
        return Table.create("mixed allocations (checked on the selection windows)", StringColumn.create("method"), LongColumn.create("seed"),
                StringColumn.create("target"), DoubleColumn.create("bits_per_weight"), StringColumn.create("knapsack_widths"),
                StringColumn.create("widths"), StringColumn.create("chosen"), DoubleColumn.create("knapsack_selection_kld"),
                DoubleColumn.create("uniform_selection_kld"), DoubleColumn.create("selection_kld"), IntColumn.create("swaps_measured"),
                DoubleColumn.create("held_out_kld"), StringColumn.create("bits_map"));
    }

    private static void appendAllocation(Table t, Row r) {
        t.stringColumn("method").append((String) r.get("method"));
        t.longColumn("seed").append(((Number) r.get("seed")).longValue());
        t.stringColumn("target").append((String) r.get("target"));
        t.doubleColumn("bits_per_weight").append(num(r, "bits_per_weight"));
        t.stringColumn("knapsack_widths").append((String) r.get("knapsack_widths"));
        t.stringColumn("widths").append((String) r.get("widths"));
        t.stringColumn("chosen").append(String.valueOf(r.at("refinement.chosen")));
        t.doubleColumn("knapsack_selection_kld").append(((Number) r.at("refinement.knapsack_selection_kld")).doubleValue());
        t.doubleColumn("uniform_selection_kld").append(((Number) r.at("refinement.uniform_selection_kld")).doubleValue());
        t.doubleColumn("selection_kld").append(((Number) r.at("refinement.selection_kld")).doubleValue());
        t.intColumn("swaps_measured").append(((Number) r.at("refinement.swaps_measured")).intValue());
        t.doubleColumn("held_out_kld").append(num(r, "kld_mean"));
        t.stringColumn("bits_map").append((String) r.get("bits_map"));
    }

    /**
     * One (method, seed) run: its session and held-out probe are made on first use, so a run whose rows are all stored
     * loads nothing; the held-out probe holds its float log-probabilities only while the run needs them.
     */
    private static final class Run {
        final StudyPlan plan;
        final Checkpoint ckpt;
        final FloatModel fm;
        final String method;
        final long seed;
        final Progress progress;
        private MixedPrecision.Session session;
        private KldProbe heldOut;

        Run(StudyPlan plan, Checkpoint ckpt, FloatModel fm, String method, long seed, Progress progress) {
            this.plan = plan;
            this.ckpt = ckpt;
            this.fm = fm;
            this.method = method;
            this.seed = seed;
            this.progress = progress;
        }

        MixedPrecision.Session session() {
            if (session == null) {
                Transformer model = fm.get();
                QuantizationRecipe recipe = recipe(plan, method, seed);
                session = MixedPrecision.prepare(model, () -> Checkpoints.load(ckpt, fm.threads), fm.tokenizer(), recipe,
                        QuantConfig.group(plan.candidates().get(0), plan.allocationGroup()), plan.candidates(),
                        plan.allocationWindows().withSeed(seed), List.of(plan.probeBits()), true, progress);
            }
            return session;
        }

        KldProbe heldOut() {
            if (heldOut == null) {
                int[] ids = Evaluator.tokens(ckpt, fm.tokenizer(), TextDatasets.load("wikitext2"));
                heldOut = KldProbe.of(fm.get(), Comparison.windows(ids, plan.heldOutSeqlen(), plan.heldOutWindows()), progress);
            }
            return heldOut;
        }
    }

    /** The float model every session measures on, loaded on first use. */
    private static final class FloatModel implements AutoCloseable {
        final Checkpoint ckpt;
        final int threads;
        private Transformer model;
        private Tokenizer tokenizer;

        FloatModel(Checkpoint ckpt, int threads) {
            this.ckpt = ckpt;
            this.threads = threads;
        }

        Transformer get() {
            if (model == null) model = Checkpoints.load(ckpt, threads);
            return model;
        }

        Tokenizer tokenizer() {
            if (tokenizer == null) tokenizer = Checkpoints.tokenizer(ckpt);
            return tokenizer;
        }

        @Override
        public void close() {
            if (model != null) model.close();
        }
    }

    private static double num(Row r, String field) {
        return ((Number) r.get(field)).doubleValue();
    }

    private static double[] doubles(Object list) {
        List<?> l = (List<?>) list;
        double[] out = new double[l.size()];
        for (int i = 0; i < out.length; i++) out[i] = ((Number) l.get(i)).doubleValue();
        return out;
    }

    private static List<Double> boxed(double[] a) {
        List<Double> out = new ArrayList<>(a.length);
        for (double v : a) out.add(v);
        return out;
    }

    private static double mean(double[] a) {
        double s = 0;
        for (double v : a) s += v;
        return s / a.length;
    }
}
