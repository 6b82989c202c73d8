package lowbit.cli;

import java.util.List;
import java.util.Locale;
import lowbit.memory.MemoryEstimate;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.mixed.Allocations;
import lowbit.quant.mixed.Candidates;
import lowbit.quant.mixed.MixedPrecision;
import lowbit.quant.mixed.Sensitivities;
import picocli.CommandLine.Option;

/** The options of a mixed-precision allocation, shared by {@code allocate} and {@code bench allocate}. */
final class AllocationOptions {
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

    @Option(names = "--refine", defaultValue = "12", paramLabel = "N",
            description = "swaps measured on the selection windows after the knapsack (0: only the check against uniform; default: ${DEFAULT-VALUE})")
    int refine;

    @Option(names = "--sensitivity-windows", defaultValue = "2", paramLabel = "N", description = "C4 windows measuring each linear (default: ${DEFAULT-VALUE})")
    int sensitivityWindows;

    @Option(names = "--selection-windows", defaultValue = "2", paramLabel = "N", description = "other C4 windows checking allocations (default: ${DEFAULT-VALUE})")
    int selectionWindows;

    @Option(names = "--window-tokens", defaultValue = "256", paramLabel = "L", description = "tokens per window (default: ${DEFAULT-VALUE})")
    int windowTokens;

    @Option(names = "--probe-bits", defaultValue = "3", split = ",", paramLabel = "B,B,...",
            description = "widths each linear's KL divergence is measured at; the others are carried from the nearest by the"
                    + " squared-error ratio, and a narrower width the knapsack chooses is measured before it is kept (default: ${DEFAULT-VALUE})")
    List<Integer> probeBits;

    @Option(names = "--kv-budget", paramLabel = "B",
            description = "also allocate KV-cache bits per layer (keys and values apart) at B average bits per cached element, on top of the weights")
    Double kvBudget;

    @Option(names = "--kv-candidates", defaultValue = "2,3,4,8", split = ",", paramLabel = "B,B,...",
            description = "KV-cache widths to choose from, 2..8 (default: ${DEFAULT-VALUE})")
    List<Integer> kvCandidates;

    @Option(names = "--kv-probe-bits", defaultValue = "4", paramLabel = "B",
            description = "width each layer's keys and values are measured at (default: ${DEFAULT-VALUE})")
    int kvProbeBits;

    List<Integer> widths() {
        return Candidates.checkWidths(candidates);
    }

    Sensitivities.Predictor predictor() {
        return Sensitivities.Predictor.parse(predictor);
    }

    Allocations.Granularity granularity() {
        return Allocations.Granularity.parse(granularity);
    }

    QuantConfig grid() {
        return QuantConfig.group(widths().get(0), group);
    }

    MixedPrecision.Windows windows(long seed) {
        return new MixedPrecision.Windows(sensitivityWindows, selectionWindows, windowTokens, seed);
    }

    /** Checks the options that need no model; the budget is checked against the candidates once they exist. */
    void check() {
        if (kvBudget != null) {
            List<Integer> kv = Candidates.checkWidths(kvCandidates);
            if (!kv.contains(kvProbeBits)) throw new IllegalArgumentException("--kv-probe-bits " + kvProbeBits + " is not one of --kv-candidates " + kv);
            if (predictor() != Sensitivities.Predictor.KLD) throw new IllegalArgumentException("--kv-budget measures by KL divergence: use --predictor kld");
        }
        List<Integer> widths = widths();
        predictor();
        granularity();
        if (refine < 0) throw new IllegalArgumentException("--refine must be >= 0, got " + refine);
        if (predictor() == Sensitivities.Predictor.KLD)
            for (int b : probeBits)
                if (!widths.contains(b)) throw new IllegalArgumentException("--probe-bits " + probeBits + ": " + b + " is not one of --candidates " + widths);
    }

    QuantizationRecipe recipe(QuantOptions quantOptions) {
        QuantSpec spec = QuantSpec.of(method, grid());
        if (!List.of("rtn", "gptq", "awq").contains(method))
            throw new IllegalArgumentException("--method must be rtn, gptq or awq, got '" + method + "'");
        if (quantOptions.quant != null) throw new IllegalArgumentException("allocate takes --method, not --quant");
        if (quantOptions.bitsMap != null) throw new IllegalArgumentException("allocate writes a bits map (--out); it does not read one (--bits-map)");
        return quantOptions.recipe(spec, null);
    }

    /**
     * --budget as bits per weight on {@code model}'s block linears: a number, or wB for uniform B-bit's exact figure;
     * checked against the candidates' range before anything is measured.
     */
    double target(lowbit.model.Transformer model, QuantizationRecipe recipe, String budget) {
        boolean groupIndex = "gptq".equals(method) && recipe.gptq().layer().actOrder() && !recipe.gptq().layer().staticGroups();
        String b = budget.trim().toLowerCase(Locale.ROOT);
        double target;
        if (b.startsWith("w")) {
            int bits;
            try {
                bits = Integer.parseInt(b.substring(1));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--budget must be bits per weight (e.g. 3.5) or wB (e.g. w4), got '" + budget + "'");
            }
            if (!widths().contains(bits))
                throw new IllegalArgumentException("--budget " + budget + ": " + bits + " is not one of --candidates " + widths());
            // uniform's own figure, and a hair over it: storage / parameters as a double can fall below the exact ratio
            target = Allocations.uniformBitsPerWeight(model, grid(), bits, groupIndex) + 1e-9;
        } else {
            try {
                target = Double.parseDouble(b);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--budget must be bits per weight (e.g. 3.5) or wB (e.g. w4), got '" + budget + "'");
            }
            if (!Double.isFinite(target)) throw new IllegalArgumentException("--budget must be a finite number of bits per weight, got '" + budget + "'");
        }
        Allocations.uniformWidth(model, grid(), widths(), groupIndex, target);
        return target;
    }

    MemoryEstimate memoryEstimate(ModelConfig cfg, QuantOptions quantOptions) {
        return MemoryEstimate.allocation(cfg, recipe(quantOptions), widths().size(), sensitivityWindows + selectionWindows, windowTokens);
    }
}
