package lowbit.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.memory.MemoryEstimate;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.mixed.Allocations;
import lowbit.quant.mixed.Candidates;
import lowbit.quant.mixed.MixedPrecision;
import lowbit.quant.mixed.Sensitivities;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "allocate", mixinStandardHelpOptions = true,
        description = "Choose a bit width per linear under a bits-per-weight budget (mixed precision), checked against uniform;"
                + " writes a bits map that quantize --bits-map reads.")
final class AllocateCommand implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--method", required = true, paramLabel = "rtn|gptq|awq", description = "the weight method the allocation is for")
    String method;

    @Option(names = "--budget", required = true, paramLabel = "BPW|wB",
            description = "bits per weight over the block linears, scales and zeros included (e.g. 3.5), or wB: what uniform B-bit takes")
    String budget;

    @Option(names = "--candidates", defaultValue = "2,3,4,8", split = ",", paramLabel = "B,B,...",
            description = "widths to choose from, 2..8 (default: ${DEFAULT-VALUE})")
    List<Integer> candidates;

    @Option(names = "--group", defaultValue = "128", paramLabel = "G", description = "input columns per group (default: ${DEFAULT-VALUE})")
    int group;

    @Option(names = "--predictor", defaultValue = "kld", paramLabel = "kld|hessian|fisher|kurtosis",
            description = "what the knapsack minimizes (default: ${DEFAULT-VALUE}, measured KL divergence)")
    String predictor;

    @Option(names = "--granularity", defaultValue = "linear", paramLabel = "linear|block|kind",
            description = "one width per linear, per block, or per kind of linear (default: ${DEFAULT-VALUE})")
    String granularity;

    @Option(names = "--refine", defaultValue = "24", paramLabel = "N",
            description = "swaps measured on the selection windows after the knapsack (0: only the check against uniform; default: ${DEFAULT-VALUE})")
    int refine;

    @Option(names = "--sensitivity-windows", defaultValue = "4", paramLabel = "N", description = "C4 windows measuring each linear (default: ${DEFAULT-VALUE})")
    int sensitivityWindows;

    @Option(names = "--selection-windows", defaultValue = "4", paramLabel = "N", description = "other C4 windows checking allocations (default: ${DEFAULT-VALUE})")
    int selectionWindows;

    @Option(names = "--window-tokens", defaultValue = "512", paramLabel = "L", description = "tokens per window (default: ${DEFAULT-VALUE})")
    int windowTokens;

    @Option(names = "--probe-bits", defaultValue = "3", paramLabel = "B", description = "width each linear's KL divergence is measured at (default: ${DEFAULT-VALUE})")
    int probeBits;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "the bits map to write (JSON)")
    Path out;

    @Override
    public Integer call() {
        List<Integer> widths = Candidates.checkWidths(candidates);
        Sensitivities.Predictor p = Sensitivities.Predictor.parse(predictor);
        Allocations.Granularity g = Allocations.Granularity.parse(granularity);
        if (refine < 0) throw new IllegalArgumentException("--refine must be >= 0, got " + refine);
        if (p == Sensitivities.Predictor.KLD && !widths.contains(probeBits))
            throw new IllegalArgumentException("--probe-bits " + probeBits + " is not one of --candidates " + widths);
        QuantConfig grid = QuantConfig.group(widths.get(0), group);
        QuantizationRecipe recipe = recipe(grid);
        MixedPrecision.Windows windows = new MixedPrecision.Windows(sensitivityWindows, selectionWindows, windowTokens, quantOptions.seed);
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            recipe.validate(model);
            MixedPrecision.Session session = MixedPrecision.prepare(model, () -> modelOptions.load(ckpt), Checkpoints.tokenizer(ckpt), recipe,
                    grid, widths, windows, probeBits, p == Sensitivities.Predictor.KLD, Progress.terminal());
            double target = target(session.candidates());
            MixedPrecision.Result r = session.allocate(target, p, g, refine, Progress.terminal());
            session.write(out, r);
            var ref = r.refinement();
            if (session.sensitivities().measured())
                System.out.printf(Locale.ROOT, "sensitivity: %d linears by KL divergence at %d bits on %d tokens each; split-half Spearman %.3f%n",
                        session.candidates().linears().size(), probeBits, session.sensitivities().positions(),
                        session.sensitivities().splitHalfCorrelation());
            System.out.printf(Locale.ROOT, "selection windows: knapsack KLD %.4f, uniform w%d KLD %.4f, chosen (%s) %.4f after %d swaps%n",
                    ref.knapsackKld(), r.uniformWidth(), ref.uniformKld(), ref.chosen(), ref.kld(), ref.measurements());
            System.out.printf(Locale.ROOT, "wrote %s: %s at %.4f bits/weight (budget %s), widths %s, %.1f s%n", out, method, r.bitsPerWeight(),
                    budget, Allocations.widths(r.bits()), (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    private QuantizationRecipe recipe(QuantConfig grid) {
        QuantSpec spec = QuantSpec.of(method, grid);
        if (!List.of("rtn", "gptq", "awq").contains(method))
            throw new IllegalArgumentException("--method must be rtn, gptq or awq, got '" + method + "'");
        if (quantOptions.quant != null) throw new IllegalArgumentException("allocate takes --method, not --quant");
        if (quantOptions.bitsMap != null) throw new IllegalArgumentException("allocate writes a bits map (--out); it does not read one (--bits-map)");
        return quantOptions.recipe(spec, null);
    }

    /** --budget as bits per weight: a number, or wB for uniform B-bit's exact figure on these candidates. */
    private double target(Candidates c) {
        String b = budget.trim().toLowerCase(Locale.ROOT);
        if (b.startsWith("w")) {
            int bits;
            try {
                bits = Integer.parseInt(b.substring(1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--budget must be bits per weight (e.g. 3.5) or wB (e.g. w4), got '" + budget + "'");
            }
            if (!c.widths().contains(bits))
                throw new IllegalArgumentException("--budget " + budget + ": " + bits + " is not one of --candidates " + c.widths());
            return c.bitsPerWeight(Allocations.uniform(c, bits)) + 1e-9;
        }
        try {
            return Double.parseDouble(b);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--budget must be bits per weight (e.g. 3.5) or wB (e.g. w4), got '" + budget + "'");
        }
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return MemoryEstimate.allocation(ckpt.config(), recipe(QuantConfig.group(Candidates.checkWidths(candidates).get(0), group)),
                    candidates.size(), sensitivityWindows + selectionWindows, windowTokens);
        }
    }
}
