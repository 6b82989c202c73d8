package lowbit.quant.mixed;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.cuda.Device;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.mixed.Allocations.Granularity;
import lowbit.quant.mixed.Sensitivities.Predictor;
import lowbit.results.Backend;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;

/**
 * Mixed precision that is checked against uniform: candidates by the method in the loop, sensitivities measured by KL
 * divergence (or predicted by a proxy), the exact knapsack at a budget, and refinement by re-measuring on selection
 * windows, with uniform allocation always a candidate. One {@link Session} measures once and allocates at any budget.
 *
 * <p>Three disjoint sets of text: the sensitivity windows and the selection windows are two halves of one seeded C4
 * draw; results are reported on held-out WikiText-2 test windows ({@link Comparison}), which neither ever sees.
 */
public final class MixedPrecision {
    private MixedPrecision() {}

    /**
     * Windows of {@code seqlen} C4 tokens drawn with {@code seed}: {@code sensitivity} of them measure each linear,
     * {@code selection} others check and refine allocations.
     */
    public record Windows(int sensitivity, int selection, int seqlen, long seed) {
        public Windows {
            if (sensitivity < 2) throw new IllegalArgumentException("--sensitivity-windows must be >= 2 (split halves), got " + sensitivity);
            if (selection < 1) throw new IllegalArgumentException("--selection-windows must be >= 1, got " + selection);
            if (seqlen < 16) throw new IllegalArgumentException("--window-tokens must be >= 16, got " + seqlen);
        }

        /**
         * The defaults: 2 x 256 tokens of sensitivity (on the default model the split-half rank correlation of the 210
         * linears' KL divergences at 255 against 255 tokens is 0.90, a Spearman-Brown reliability of 0.95 at 510; see the
         * README), 2 x 256 of selection.
         */
        public static Windows defaults() {
            return new Windows(2, 2, 256, 0);
        }

        public Windows withSeed(long s) {
            return new Windows(sensitivity, selection, seqlen, s);
        }

        public Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("source", "c4");
            m.put("sensitivity_windows", sensitivity);
            m.put("selection_windows", selection);
            m.put("seqlen", seqlen);
            m.put("seed", seed);
            return m;
        }
    }

    /** Rounds of measuring the widths the knapsack chose below every probe width, then solving again. */
    static final int LAZY_ROUNDS = 4;

    /** Everything measured once for one model, method and seed. */
    public static final class Session {
        private final Transformer floatModel;
        private final Candidates candidates;
        private final Sensitivities sensitivities;
        private final KldProbe selection;
        private final KldProbe sensitivityProbe;
        private final Windows windows;
        private final CalibrationSet draw;
        private final Map<String, Double> timings;

        private Session(Transformer floatModel, Candidates candidates, Sensitivities sensitivities, KldProbe sensitivityProbe, KldProbe selection,
                        Windows windows, CalibrationSet draw, Map<String, Double> timings) {
            this.sensitivityProbe = sensitivityProbe;
            this.floatModel = floatModel;
            this.candidates = candidates;
            this.sensitivities = sensitivities;
            this.selection = selection;
            this.windows = windows;
            this.draw = draw;
            this.timings = timings;
        }

        public Candidates candidates() {
            return candidates;
        }

        public Sensitivities sensitivities() {
            return sensitivities;
        }

        public Transformer floatModel() {
            return floatModel;
        }

        public Windows windows() {
            return windows;
        }

        /** Seconds spent on candidates, the float references, sensitivities. */
        public Map<String, Double> timings() {
            return timings;
        }

        /**
         * The allocation at {@code target} bits per weight: knapsack over {@code predictor}'s losses at
         * {@code granularity}, refined with at most {@code refine} measured swaps (0: checked against uniform only).
         */
        public Result allocate(double target, Predictor predictor, Granularity granularity, int refine, Progress progress) {
            long t0 = System.nanoTime();
            int base = Allocations.uniformWidth(candidates, target);
            double[][] losses = sensitivities.losses(predictor);
            Map<String, Integer> knapsack = Allocations.knapsack(candidates, losses, granularity, target);
            if (predictor == Predictor.KLD) {
                // Carried values are least trusted below the measured widths (2 bits can cost far more than the squared
                // error ratio says): measure what the knapsack chose there, solve again, until it chooses only measured ones.
                for (int round = 0; round < LAZY_ROUNDS; round++) {
                    List<int[]> unmeasured = new java.util.ArrayList<>();
                    List<String> names = candidates.linears();
                    int lowestProbe = candidates.widths().indexOf(sensitivities.probeWidths().stream().min(Integer::compare).orElseThrow());
                    for (int i = 0; i < names.size(); i++) {
                        int j = candidates.widths().indexOf(knapsack.get(names.get(i)));
                        if (j < lowestProbe && !sensitivities.measuredAt(i, j)) unmeasured.add(new int[] {i, j});
                    }
                    if (unmeasured.isEmpty()) break;
                    try (Progress.Task task = progress.start("measure chosen widths", unmeasured.size(), "linear")) {
                        for (int[] ij : unmeasured) {
                            sensitivities.measureAt(sensitivityProbe, candidates, ij[0], ij[1]);
                            task.step(1);
                        }
                    }
                    losses = sensitivities.losses(predictor);
                    knapsack = Allocations.knapsack(candidates, losses, granularity, target);
                }
            }
            Map<String, Integer> uniform = Allocations.uniform(candidates, base);
            Refinement.Result r = Refinement.refine(candidates, selection, knapsack, uniform, losses, granularity, target, refine, progress);
            Map<String, Integer> bits = r.bits();
            Realized realized = null;
            if (candidates.realizes()) {
                // GPTQ's and AWQ's assembled candidates are not what the method gives for a mixed allocation: run the method
                // on the answer and on uniform, and keep the answer only if its own run measures better on the selection windows
                // on selection windows; the best mixed answer is run even when its assembled form lost to uniform, since
                // assembling is what breaks GPTQ's error compensation
                Map<String, QuantizedTensor> uniformWeights = candidates.realize(uniform, progress);
                double uniformKld = measure(uniformWeights);
                bits = r.best();
                Map<String, QuantizedTensor> weights = bits.equals(uniform) ? uniformWeights : candidates.realize(bits, progress);
                double kld = weights == uniformWeights ? uniformKld : measure(weights);
                if (kld >= uniformKld) {
                    bits = uniform;
                    weights = uniformWeights;
                    kld = uniformKld;
                }
                realized = new Realized(weights, kld, uniformWeights, uniformKld);
            }
            return new Result(target, predictor, granularity, bits, knapsack, base, candidates.bitsPerWeight(bits),
                    Allocations.storage(candidates, bits), Allocations.predicted(candidates, losses, bits), r, realized,
                    (System.nanoTime() - t0) / 1e9);
        }

        /** Mean KL divergence on the selection windows of the float model with {@code weights} in place. */
        private double measure(Map<String, QuantizedTensor> weights) {
            Map<lowbit.model.Linear, float[]> all = new LinkedHashMap<>();
            for (var e : weights.entrySet()) all.put(floatModel.linear(e.getKey()), e.getValue().dequantize());
            return selection.with(all).meanKld();
        }

        /** What every bits map from this session records. */
        public Map<String, Object> provenance(Result r) {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("method", candidates.method());
            m.put("measured_with", candidates.measuredWith());
            m.put("candidates", candidates.widths());
            m.put("grid", candidates.grid().withBits(r.uniformWidth()).describe());
            m.put("target_bits_per_weight", r.target());
            m.put("predictor", r.predictor().label());
            m.put("granularity", r.granularity().label());
            m.put("probe_widths", sensitivities.probeWidths());
            m.put("windows", windows.describe());
            m.put("windows_sha256", draw.windowsSha256());
            if (candidates.calibration() != null) m.put("calibration", candidates.calibration());
            m.put("model_sha256", floatModel.sha256());
            m.put("code_version", lowbit.results.CodeVersion.current().toString());
            m.put("threads", floatModel.threads());
            m.putAll(Backend.of(Device.CPU, WeightFormat.FP32, floatModel.threads()).provenance());
            if (sensitivities.measured()) {
                m.put("lazily_measured", sensitivities.lazilyMeasured());
                m.put("split_half_spearman", sensitivities.splitHalfCorrelation());
                m.put("sensitivity_tokens", sensitivities.positions());
            }
            Refinement.Result ref = r.refinement();
            Map<String, Object> check = new LinkedHashMap<>();
            check.put("chosen", ref.chosen());
            check.put("selection_kld", ref.kld());
            check.put("knapsack_selection_kld", ref.knapsackKld());
            check.put("uniform_selection_kld", ref.uniformKld());
            check.put("uniform_bits", r.uniformWidth());
            check.put("swaps_measured", ref.measurements());
            if (r.realized() != null) {
                check.put("method_run_selection_kld", r.realized().selectionKld());
                check.put("method_run_uniform_selection_kld", r.realized().uniformSelectionKld());
                check.put("chosen_after_method_run", r.bits().equals(Allocations.uniform(candidates, r.uniformWidth())) ? "uniform" : "mixed");
            }
            m.put("refinement", check);
            return m;
        }

        /** Writes {@code r} as a bits map {@code quantize --bits-map} reads. */
        public void write(Path file, Result r) {
            BitsMap.write(file, r, candidates.grid().withBits(r.uniformWidth()), provenance(r));
        }

        /** Writes the weights' allocation and the KV cache's on top of it as one bits map. */
        public void write(Path file, Result r, KvAllocation.Result kv) {
            Map<String, Object> p = provenance(r);
            p.put("kv", kv.provenance());
            BitsMap.write(file, r, candidates.grid().withBits(r.uniformWidth()), kv.bitsMapKv(), p);
        }

        /**
         * KV-cache widths per layer on top of the weights of {@code weights}: measured and checked on this session's
         * windows with the allocated weights in place ({@link KvAllocation}), at {@code target} average bits per cached
         * element. The float model is restored afterwards.
         */
        public KvAllocation.Result allocateKv(Result weights, double target, List<Integer> widths, int probeWidth, int groupSize,
                                              Progress progress) {
            if (sensitivityProbe == null) throw new IllegalStateException("KV allocation needs the session's KL-divergence probe (the kld predictor)");
            Map<String, float[]> floats = new LinkedHashMap<>();
            for (String l : candidates.linears()) floats.put(l, floatModel.linear(l).weight());
            try {
                candidates.applyTo(floatModel, weights.bits());
                sensitivityProbe.recache(0);
                selection.recache(0);
                return KvAllocation.allocate(sensitivityProbe, selection, widths, probeWidth, groupSize, target, progress);
            } finally {
                floats.forEach((l, w) -> floatModel.linear(l).setWeight(w));
                sensitivityProbe.recache(0);
                selection.recache(0);
            }
        }
    }

    /**
     * One allocation and how it was reached.
     *
     * @param knapsack     the knapsack's answer before refinement
     * @param uniformWidth the widest uniform allocation within the budget (what the answer was checked against)
     * @param realized     the method's own runs (GPTQ, AWQ), or null when the candidates are exact (RTN)
     */
    public record Result(double target, Predictor predictor, Granularity granularity, Map<String, Integer> bits,
                         Map<String, Integer> knapsack, int uniformWidth, double bitsPerWeight, long storageBits, double predictedLoss,
                         Refinement.Result refinement, Realized realized, double seconds) implements BitsMap.Assignment {}

    /**
     * The method's own run of the answer and of uniform allocation (GPTQ, AWQ), with their selection KL divergences: the
     * weights results are reported with.
     */
    public record Realized(Map<String, QuantizedTensor> weights, double selectionKld, Map<String, QuantizedTensor> uniformWeights,
                           double uniformSelectionKld) {}

    /**
     * Draws the windows, builds the candidates and measures the sensitivities ({@code measure}: by KL divergence at
     * each of {@code probeWidths}, and the Hessian error at the first only; else the proxies at every width) of {@code floatModel}, which is left as it was.
     */
    public static Session prepare(Transformer floatModel, Supplier<Transformer> fresh, Tokenizer tokenizer, QuantizationRecipe recipe,
                                  QuantConfig grid, List<Integer> widths, Windows windows, List<Integer> probeWidths, boolean measure,
                                  Progress progress) {
        Map<String, Double> timings = new LinkedHashMap<>();
        long t0 = System.nanoTime();
        Candidates candidates = Candidates.of(recipe, grid, widths, floatModel, fresh, tokenizer, progress);
        timings.put("candidates_seconds", (System.nanoTime() - t0) / 1e9);
        CalibrationSet draw = CalibrationSampler.of(tokenizer).source("c4").nsamples(windows.sensitivity() + windows.selection())
                .seqlen(windows.seqlen()).seed(windows.seed()).sample();
        int[][] all = draw.windows();
        int[][] sens = Arrays.copyOfRange(all, 0, windows.sensitivity());
        int[][] sel = Arrays.copyOfRange(all, windows.sensitivity(), all.length);
        long t1 = System.nanoTime();
        KldProbe sensProbe = measure ? KldProbe.of(floatModel, sens, progress) : null;
        KldProbe selection = KldProbe.of(floatModel, sel, progress);
        timings.put("reference_seconds", (System.nanoTime() - t1) / 1e9);
        long t2 = System.nanoTime();
        Sensitivities s = Sensitivities.measure(candidates, floatModel, sens, sensProbe, probeWidths, !measure, progress);
        timings.put("sensitivity_seconds", (System.nanoTime() - t2) / 1e9);
        return new Session(floatModel, candidates, s, sensProbe, selection, windows, draw, timings);
    }
}
