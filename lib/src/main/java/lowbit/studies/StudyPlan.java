package lowbit.studies;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.quant.QuantSpec;
import lowbit.quant.mixed.Candidates;
import lowbit.quant.mixed.MixedPrecision;

/**
 * Everything a study runs. Sizes are in windows of tokens; calibration draws use {@code seed}.
 *
 * @param calibSamples        calibration windows for GPTQ, SmoothQuant, statistics and the ablation
 * @param awqSamples          calibration windows for AWQ (its scale search runs the block 20 times per group)
 * @param methods             the specs compared (the float model is always included)
 * @param candidates          widths mixed precision chooses from per linear (2..8), on groups of {@code allocationGroup}
 * @param probeBits           the width each linear's KL divergence is measured at (one of the candidates)
 * @param uniformTargets      widths whose uniform bits per weight (on the candidates, overhead included) become targets
 * @param extraTargets        further targets in bits per weight
 * @param allocationMethods   methods allocated and evaluated with their own candidates (rtn, gptq)
 * @param allocationSeeds     one allocation per seed: the C4 draw of sensitivity and selection windows, GPTQ's
 *                            calibration and the random baselines; the intervals are over these runs
 * @param allocationWindows   sensitivity and selection windows (their seed is replaced by each allocation seed)
 * @param heldOutWindows      WikiText-2 test windows every allocation is compared on (never used to choose one)
 * @param heldOutSeqlen       tokens per held-out window
 * @param refine              swaps measured on the selection windows after the knapsack (0: only the check against uniform)
 * @param ablationSpecs       specs of the calibration-size ablation (rtn runs once, as the control)
 * @param diversitySources    calibration sources compared at {@code diversitySamples} windows, concatenated mode
 * @param zeroShotTasks       lm-eval tasks (names of {@link lowbit.eval.tasks.Tasks}) scored on the float model and on
 *                            each of {@code zeroShotMethods}, with the same quantized model as its perplexity row
 * @param zeroShotLimit       the first N items of each task, as lm-eval's --limit (0: every item)
 * @param zeroShotMethods     the specs of {@code methods} that are also scored on the tasks
 */
public record StudyPlan(String model,
                        String dataset,
                        int evalSeqlen,
                        int evalWindows,
                        int calibSamples,
                        int calibSeqlen,
                        int awqSamples,
                        long seed,
                        List<String> methods,
                        List<Integer> candidates,
                        int allocationGroup,
                        int probeBits,
                        List<Integer> uniformTargets,
                        List<Double> extraTargets,
                        List<String> allocationMethods,
                        List<Long> allocationSeeds,
                        MixedPrecision.Windows allocationWindows,
                        int heldOutWindows,
                        int heldOutSeqlen,
                        int refine,
                        List<String> ablationSpecs,
                        List<Integer> ablationSamples,
                        List<Long> ablationSeeds,
                        List<String> diversitySources,
                        int diversitySamples,
                        int statisticsTopEigen,
                        List<String> zeroShotTasks,
                        int zeroShotLimit,
                        List<String> zeroShotMethods) {

    /** Every check that needs no model: specs parse, sizes are positive, the probe width and targets are candidates. */
    public StudyPlan {
        if (evalSeqlen < 2) throw new IllegalArgumentException("study: eval seqlen must be >= 2, got " + evalSeqlen);
        if (evalWindows < 0) throw new IllegalArgumentException("study: --eval-windows must be >= 0 (0: the whole test set), got " + evalWindows);
        methods = List.copyOf(methods);
        zeroShotTasks = List.copyOf(zeroShotTasks);
        zeroShotMethods = List.copyOf(zeroShotMethods);
        if (zeroShotLimit < 0)
            throw new IllegalArgumentException("study: the zero-shot limit must be >= 1 (0: every item), got " + zeroShotLimit);
        for (String t : zeroShotTasks) lowbit.eval.tasks.Tasks.get(t);
        for (String m : zeroShotMethods)
            if (!methods.contains(m))
                throw new IllegalArgumentException("study: zero-shot spec " + m + " is not one of the compared specs " + methods);
        ablationSpecs = List.copyOf(ablationSpecs);
        for (String s : methods) QuantSpec.parse(s);
        for (String s : ablationSpecs) QuantSpec.parse(s);
        candidates = Candidates.checkWidths(candidates);
        if (!candidates.contains(probeBits))
            throw new IllegalArgumentException("study: the probe width " + probeBits + " is not one of the candidates " + candidates);
        uniformTargets = List.copyOf(uniformTargets);
        for (int b : uniformTargets)
            if (!candidates.contains(b)) throw new IllegalArgumentException("study: uniform target " + b + " is not a candidate width " + candidates);
        extraTargets = List.copyOf(extraTargets);
        for (double t : extraTargets)
            if (!(t > 0)) throw new IllegalArgumentException("study: a target in bits per weight must be > 0, got " + t);
        allocationMethods = List.copyOf(allocationMethods);
        for (String m : allocationMethods)
            if (!m.equals("rtn") && !m.equals("gptq")) throw new IllegalArgumentException("study: allocations are evaluated with rtn or gptq, got " + m);
        allocationSeeds = List.copyOf(allocationSeeds);
        if (!allocationMethods.isEmpty() && allocationSeeds.isEmpty())
            throw new IllegalArgumentException("study: mixed precision needs at least one allocation seed");
        if (new java.util.HashSet<>(allocationSeeds).size() != allocationSeeds.size())
            throw new IllegalArgumentException("study: allocation seeds " + allocationSeeds + " list a seed twice");
        java.util.Objects.requireNonNull(allocationWindows, "allocationWindows");
        if (heldOutWindows < 1) throw new IllegalArgumentException("study: held-out windows must be >= 1, got " + heldOutWindows);
        if (heldOutSeqlen < 16) throw new IllegalArgumentException("study: held-out windows need >= 16 tokens, got " + heldOutSeqlen);
        if (refine < 0) throw new IllegalArgumentException("study: refine must be >= 0 swaps, got " + refine);
    }

    /**
     * About 24 minutes on 2 cores for the default model. Mixed precision: RTN, one seed, each linear's KL divergence on
     * 4 x 128 C4 tokens (split halves of 2 windows; Spearman 0.90 between them on the default model), 2 x 128 selection
     * tokens and 4 refinement swaps, compared on 6 x 256 held-out tokens: about 5 minutes (the sensitivity measurement and
     * the predictors' calibration pass are most of it).
     */
    public static StudyPlan quick(String model) {
        return new StudyPlan(model, "wikitext2", 2048, 2, 16, 512, 4, 0,
                List.of("rtn:w8", "rtn:w4", "rtn:w4g128", "rtn:w3g128", "gptq:w4g128", "gptq:w3g128", "awq:w4g128",
                        "smoothquant:w8a8", "smoothquant:w4a8", "rtn:w4g128+kv8", "rtn:w4g128+kv4", "rtn:w4g128+kv2"),
                List.of(2, 3, 4, 8), 128, 3, List.of(3, 4), List.of(3.5), List.of("rtn"), List.of(0L),
                new MixedPrecision.Windows(4, 2, 128, 0), 6, 256, 4,
                List.of("rtn:w3g128", "gptq:w3g128"), List.of(4, 16), List.of(0L, 1L),
                List.of("c4", "tasks", "tasks:lambada_openai"), 16, 4,
                ZERO_SHOT_TASKS, 20, List.of("rtn:w4g128", "rtn:w3g128", "gptq:w4g128", "gptq:w3g128"));
    }

    /** lm-eval's zero-shot tasks of the Qwen3 quantization study's table (MMLU is 5-shot and needs its download). */
    public static final List<String> ZERO_SHOT_TASKS =
            List.of("piqa", "arc_easy", "arc_challenge", "hellaswag", "winogrande", "boolq", "lambada_openai");

    /**
     * The full-size study: the GPTQ protocol's evaluation and calibration, several seeds, and QuaRot's W4A8/W4A4 comparison
     * with BiLLM (hours on 2 cores). The quick plan leaves rotation and BiLLM out to stay within its time: `--methods`
     * adds them to it.
     */
    public static StudyPlan full(String model) {
        return quick(model).toBuilder().evalWindows(0).calibSamples(128).calibSeqlen(2048).awqSamples(128)
                .methods(List.of("rtn:w8", "rtn:w4", "rtn:w3", "rtn:w4g128", "rtn:w3g128", "rtn:w2g128",
                        "gptq:w4", "gptq:w3", "gptq:w4g128", "gptq:w3g128", "gptq:w2g128", "awq:w4", "awq:w3",
                        "awq:w4g128", "awq:w3g128", "smoothquant:w8a8", "smoothquant:w4a8",
                        "rtn:w4g128+kv8", "rtn:w4g128+kv4", "rtn:w4g128+kv3", "rtn:w4g128+kv2",
                        "rtn:w4a8", "quarot+rtn:w4a8", "gptq:w4a8", "quarot+gptq:w4a8", "rtn:w4a4", "quarot+rtn:w4a4",
                        "gptq:w4a4", "quarot+gptq:w4a4", "quarot+rtn:w4a4+kv4", "quarot+gptq:w4a4+kv4", "billm:w1g128"))
                .allocationMethods(List.of("rtn", "gptq")).allocationSeeds(List.of(0L, 1L, 2L))
                .allocationWindows(MixedPrecision.Windows.defaults()).heldOutWindows(16).heldOutSeqlen(512).refine(24)
                .ablationSpecs(List.of("rtn:w3g128", "gptq:w3g128", "awq:w3g128")).ablationSamples(List.of(8, 16, 32, 64, 128, 256))
                .ablationSeeds(List.of(0L, 1L, 2L, 3L, 4L)).diversitySamples(128).statisticsTopEigen(8)
                .zeroShotLimit(0).zeroShotMethods(List.of("rtn:w4g128", "rtn:w3g128", "gptq:w4g128", "gptq:w3g128", "awq:w4g128", "awq:w3g128"))
                .build();
    }

    /** Every parameter, for the report and the rows. */
    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (var c : StudyPlan.class.getRecordComponents()) {
            try {
                m.put(c.getName(), c.getAccessor().invoke(this));
            } catch (ReflectiveOperationException e) {
                throw new IllegalStateException(e);
            }
        }
        return m;
    }

    /** The specs compared, parsed. */
    public List<QuantSpec> methodSpecs() {
        return methods.stream().map(QuantSpec::parse).toList();
    }

    /** A builder starting from this plan: change what differs, keep the rest. */
    public Builder toBuilder() {
        return new Builder(this);
    }

    /** Sets any of the 29 parameters by name; {@link #build} validates the whole plan. */
    public static final class Builder {
        private String model;
        private String dataset;
        private int evalSeqlen;
        private int evalWindows;
        private int calibSamples;
        private int calibSeqlen;
        private int awqSamples;
        private long seed;
        private List<String> methods;
        private List<Integer> candidates;
        private int allocationGroup;
        private int probeBits;
        private List<Integer> uniformTargets;
        private List<Double> extraTargets;
        private List<String> allocationMethods;
        private List<Long> allocationSeeds;
        private MixedPrecision.Windows allocationWindows;
        private int heldOutWindows;
        private int heldOutSeqlen;
        private int refine;
        private List<String> ablationSpecs;
        private List<Integer> ablationSamples;
        private List<Long> ablationSeeds;
        private List<String> diversitySources;
        private int diversitySamples;
        private int statisticsTopEigen;
        private List<String> zeroShotTasks;
        private int zeroShotLimit;
        private List<String> zeroShotMethods;

        private Builder(StudyPlan p) {
            model = p.model();
            dataset = p.dataset();
            evalSeqlen = p.evalSeqlen();
            evalWindows = p.evalWindows();
            calibSamples = p.calibSamples();
            calibSeqlen = p.calibSeqlen();
            awqSamples = p.awqSamples();
            seed = p.seed();
            methods = p.methods();
            candidates = p.candidates();
            allocationGroup = p.allocationGroup();
            probeBits = p.probeBits();
            uniformTargets = p.uniformTargets();
            extraTargets = p.extraTargets();
            allocationMethods = p.allocationMethods();
            allocationSeeds = p.allocationSeeds();
            allocationWindows = p.allocationWindows();
            heldOutWindows = p.heldOutWindows();
            heldOutSeqlen = p.heldOutSeqlen();
            refine = p.refine();
            ablationSpecs = p.ablationSpecs();
            ablationSamples = p.ablationSamples();
            ablationSeeds = p.ablationSeeds();
            diversitySources = p.diversitySources();
            diversitySamples = p.diversitySamples();
            statisticsTopEigen = p.statisticsTopEigen();
            zeroShotTasks = p.zeroShotTasks();
            zeroShotLimit = p.zeroShotLimit();
            zeroShotMethods = p.zeroShotMethods();
        }

        public Builder model(String v) {
            this.model = v;
            return this;
        }

        public Builder dataset(String v) {
            this.dataset = v;
            return this;
        }

        public Builder evalSeqlen(int v) {
            this.evalSeqlen = v;
            return this;
        }

        public Builder evalWindows(int v) {
            this.evalWindows = v;
            return this;
        }

        public Builder calibSamples(int v) {
            this.calibSamples = v;
            return this;
        }

        public Builder calibSeqlen(int v) {
            this.calibSeqlen = v;
            return this;
        }

        public Builder awqSamples(int v) {
            this.awqSamples = v;
            return this;
        }

        public Builder seed(long v) {
            this.seed = v;
            return this;
        }

        public Builder methods(List<String> v) {
            this.methods = v;
            return this;
        }

        public Builder allocationGroup(int v) {
            this.allocationGroup = v;
            return this;
        }

        public Builder candidates(List<Integer> v) {
            this.candidates = v;
            return this;
        }

        public Builder probeBits(int v) {
            this.probeBits = v;
            return this;
        }

        public Builder allocationSeeds(List<Long> v) {
            this.allocationSeeds = v;
            return this;
        }

        public Builder allocationWindows(MixedPrecision.Windows v) {
            this.allocationWindows = v;
            return this;
        }

        public Builder heldOutWindows(int v) {
            this.heldOutWindows = v;
            return this;
        }

        public Builder heldOutSeqlen(int v) {
            this.heldOutSeqlen = v;
            return this;
        }

        public Builder refine(int v) {
            this.refine = v;
            return this;
        }

        public Builder uniformTargets(List<Integer> v) {
            this.uniformTargets = v;
            return this;
        }

        public Builder extraTargets(List<Double> v) {
            this.extraTargets = v;
            return this;
        }

        public Builder allocationMethods(List<String> v) {
            this.allocationMethods = v;
            return this;
        }

        public Builder ablationSpecs(List<String> v) {
            this.ablationSpecs = v;
            return this;
        }

        public Builder ablationSamples(List<Integer> v) {
            this.ablationSamples = v;
            return this;
        }

        public Builder ablationSeeds(List<Long> v) {
            this.ablationSeeds = v;
            return this;
        }

        public Builder diversitySources(List<String> v) {
            this.diversitySources = v;
            return this;
        }

        public Builder diversitySamples(int v) {
            this.diversitySamples = v;
            return this;
        }

        public Builder statisticsTopEigen(int v) {
            this.statisticsTopEigen = v;
            return this;
        }

        public Builder zeroShotTasks(List<String> v) {
            this.zeroShotTasks = v;
            return this;
        }

        public Builder zeroShotLimit(int v) {
            this.zeroShotLimit = v;
            return this;
        }

        public Builder zeroShotMethods(List<String> v) {
            this.zeroShotMethods = v;
            return this;
        }

        public StudyPlan build() {
            return new StudyPlan(model, dataset, evalSeqlen, evalWindows, calibSamples, calibSeqlen, awqSamples, seed, methods, candidates,
                    allocationGroup, probeBits, uniformTargets, extraTargets, allocationMethods, allocationSeeds, allocationWindows,
                    heldOutWindows, heldOutSeqlen, refine, ablationSpecs, ablationSamples, ablationSeeds, diversitySources, diversitySamples,
                    statisticsTopEigen, zeroShotTasks, zeroShotLimit, zeroShotMethods);
        }
    }
}
