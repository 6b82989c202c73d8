package lowbit.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.Evaluator;
import lowbit.eval.TextDatasets;
import lowbit.memory.MemoryEstimate;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.mixed.Comparison;
import lowbit.quant.mixed.KldProbe;
import lowbit.quant.mixed.MixedPrecision;
import lowbit.quant.mixed.Sensitivities;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import tech.tablesaw.api.Table;

@Command(name = "allocate", mixinStandardHelpOptions = true,
        description = "Times a mixed-precision allocation: candidates, float references, per-linear sensitivity by KL divergence, the"
                + " knapsack and the refinement, and prints how stable the sensitivity ranking is at every even number of windows"
                + " measured. With --held-out-windows, also measures the allocation against uniform and the baselines on WikiText-2"
                + " test windows for every --seeds and --budgets, with bootstrap intervals.")
final class AllocateBench implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Mixin
    AllocationOptions allocation;

    @Option(names = "--held-out-windows", defaultValue = "0", paramLabel = "N",
            description = "WikiText-2 test windows of --window-tokens to compare on (0: time the allocation only; default: ${DEFAULT-VALUE})")
    int heldOutWindows;

    @Option(names = "--seeds", split = ",", paramLabel = "S,S,...", description = "seeds of the windows and calibration (default: --seed)")
    List<Long> seeds;

    @Option(names = "--budgets", split = ",", paramLabel = "BPW|wB,...", description = "budgets to compare at (default: --budget)")
    List<String> budgets;

    @Option(names = "--entries", paramLabel = "FILE",
            description = "JSON lines of every held-out measurement, appended as each finishes; a run resumes from what is there")
    Path entries;

    private static final ObjectMapper JSON = new ObjectMapper();

    @Override
    public Integer call() {
        modelOptions.cpuOnly("bench allocate");
        allocation.check();
        QuantizationRecipe recipe = allocation.recipe(quantOptions);
        Sensitivities.Predictor p = allocation.predictor();
        List<Long> runSeeds = seeds == null ? List.of(quantOptions.calibration.seed) : seeds;
        List<String> runBudgets = budgets == null ? List.of(allocation.budget) : budgets;
        if (heldOutWindows < 0) throw new IllegalArgumentException("--held-out-windows must be >= 0, got " + heldOutWindows);
        List<Comparison.Entry> done = entries == null ? new ArrayList<>() : readEntries(entries);
        System.out.printf(Locale.ROOT, "allocate  model=%s method=%s candidates=%s predictor=%s granularity=%s windows=%d+%dx%d refine=%d threads=%d"
                        + " code=%s load average at start %s%n", modelOptions.model, allocation.method, allocation.widths(), p.label(),
                allocation.granularity().label(), allocation.sensitivityWindows, allocation.selectionWindows, allocation.windowTokens,
                allocation.refine, modelOptions.threads(), CodeVersion.current(), BenchCommand.Eval.loadAverage());
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            recipe.validate(model);
            Map<String, Double> targets = new LinkedHashMap<>();
            for (String budget : runBudgets) targets.put(budget, allocation.target(model, recipe, budget));
            var tok = Checkpoints.tokenizer(ckpt);
            KldProbe heldOut = null;
            if (heldOutWindows > 0) {
                int[] ids = Evaluator.tokens(ckpt, tok, TextDatasets.load("wikitext2"));
                heldOut = KldProbe.of(model, Comparison.windows(ids, allocation.windowTokens, heldOutWindows), Progress.terminal());
            }
            for (long seed : runSeeds) {
                if (heldOut != null && allDone(done, runBudgets, seed)) {
                    System.out.printf(Locale.ROOT, "seed %d: every budget already measured in %s%n", seed, entries);
                    continue;
                }
                long t0 = System.nanoTime();
                MixedPrecision.Session session = MixedPrecision.prepare(model, () -> modelOptions.load(ckpt), tok,
                        recipe.withCalibration(withSeed(recipe.calibration(), seed)), allocation.grid(), allocation.widths(),
                        allocation.windows(seed), allocation.probeBits, p == Sensitivities.Predictor.KLD, Progress.terminal());
                double prepared = (System.nanoTime() - t0) / 1e9;
                Sensitivities s = session.sensitivities();
                System.out.printf(Locale.ROOT, "seed %d: prepared in %.1f s:", seed, prepared);
                session.timings().forEach((k, v) -> System.out.printf(Locale.ROOT, "  %s %.1f", k.replace("_seconds", ""), v));
                System.out.println();
                if (s.measured()) {
                    System.out.printf(Locale.ROOT, "  sensitivity: %d linears at %s bits, %d tokens each, %.2f s per linear%n", s.linears().size(),
                            s.probeWidths(), s.positions(), session.timings().get("sensitivity_seconds") / s.linears().size());
                    print(s.reliability());
                    print(s.correlations());
                }
                for (String budget : runBudgets) {
                    double target = targets.get(budget);
                    if (heldOut != null && done.stream().anyMatch(e -> e.seed() == seed && e.method().equals(allocation.method) && e.target() == target)) {
                        System.out.printf(Locale.ROOT, "  budget %s: already measured in %s%n", budget, entries);
                        continue;
                    }
                    MixedPrecision.Result r = session.allocate(target, p, allocation.granularity(), allocation.refine, Progress.terminal());
                    var ref = r.refinement();
                    System.out.printf(Locale.ROOT, "  budget %s (%.4f bits/weight): knapsack %.3f s, refinement %.1f s (%d swaps); selection KLD"
                                    + " knapsack %.4f, uniform w%d %.4f, chosen %s %.4f; widths %s%n", budget, r.bitsPerWeight(),
                            r.seconds() - ref.seconds(), ref.seconds(), ref.measurements(), ref.knapsackKld(), r.uniformWidth(), ref.uniformKld(),
                            ref.chosen(), ref.kld(), lowbit.quant.mixed.Allocations.widths(r.bits()));
                    if (r.realized() != null)
                        System.out.printf(Locale.ROOT, "  %s's own run: selection KLD %.4f against uniform's %.4f: %s%n", allocation.method,
                                r.realized().selectionKld(), r.realized().uniformSelectionKld(),
                                r.realized().weights() == r.realized().uniformWeights() ? "uniform kept" : "mixed kept");
                    System.out.printf(Locale.ROOT, "  whole allocation at %s: %.1f s%n", budget, prepared + r.seconds());
                    if (heldOut == null) continue;
                    var allocations = Comparison.allocations(r, session.candidates(), target, model.config().numLayers(), seed);
                    for (Comparison.Entry e : Comparison.evaluate(heldOut, session.candidates(), target, seed, allocations,
                            Comparison.ownWeights(r), Progress.terminal())) {
                        done.add(e);
                        if (entries != null) append(entries, e);
                        System.out.printf(Locale.ROOT, "    %-18s %.4f bits/weight  held-out KLD %.4f  ppl %.3f  (%s)%n", e.allocation(), e.bitsPerWeight(),
                                mean(e.kld()), Math.exp(mean(e.nll())), e.widths());
                    }
                }
            }
            if (heldOut != null) print(Comparison.summary(done));
        }
        System.out.printf(Locale.ROOT, "load average at the end %s%n", BenchCommand.Eval.loadAverage());
        return 0;
    }

    /** Whether this seed's every budget is in {@code done} (then its session is not prepared at all). */
    private boolean allDone(List<Comparison.Entry> done, List<String> budgets, long seed) {
        long n = done.stream().filter(e -> e.seed() == seed && e.method().equals(allocation.method)).map(Comparison.Entry::target).distinct().count();
        return n >= budgets.size();
    }

    private static QuantizationRecipe.Calibration withSeed(QuantizationRecipe.Calibration c, long seed) {
        return new QuantizationRecipe.Calibration(c.source(), c.nsamples(), c.seqlen(), seed, c.mode());
    }

    private static double mean(double[] a) {
        return java.util.Arrays.stream(a).average().orElseThrow();
    }

    private static void print(Table t) {
        System.out.println(t.name());
        System.out.println(t.printAll());
    }

    private static void append(Path file, Comparison.Entry e) {
        try {
            Files.writeString(file, JSON.writeValueAsString(e) + "\n", StandardCharsets.UTF_8, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException ex) {
            throw new UncheckedIOException("cannot append to " + file, ex);
        }
    }

    private static List<Comparison.Entry> readEntries(Path file) {
        List<Comparison.Entry> out = new ArrayList<>();
        if (!Files.exists(file)) return out;
        try {
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) continue;
                try {
                    out.add(JSON.readValue(line, Comparison.Entry.class));
                } catch (IOException cut) {
                    // a line cut short by a kill: its allocation is measured again
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        return out;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            MemoryEstimate m = allocation.memoryEstimate(ckpt.config(), quantOptions);
            if (heldOutWindows == 0) return m;
            Map<String, Long> parts = new LinkedHashMap<>(m.parts());
            long tokens = (long) heldOutWindows * allocation.windowTokens;
            parts.merge("float log-probabilities", 2 * 4 * tokens * ckpt.config().vocabSize(), Long::sum);
            parts.merge("block inputs", 4 * tokens * ckpt.config().hiddenSize() * ckpt.config().numLayers(), Long::sum);
            return new MemoryEstimate(m.job(), parts, m.remedy() + ", or fewer --held-out-windows");
        }
    }
}
