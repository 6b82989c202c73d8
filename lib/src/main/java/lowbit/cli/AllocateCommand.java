package lowbit.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.memory.MemoryEstimate;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
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

    @Mixin
    AllocationOptions allocation;

    @Option(names = "--out", required = true, paramLabel = "FILE", description = "the bits map to write (JSON)")
    Path out;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("allocate");
        modelOptions.requireFp32Weights("allocate");
        allocation.check();
        QuantizationRecipe recipe = allocation.recipe(quantOptions);
        Sensitivities.Predictor p = allocation.predictor();
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            recipe.validate(model);
            double target = allocation.target(model, recipe, allocation.budget);
            if (allocation.kvBudget != null)
                lowbit.quant.mixed.KvAllocation.checkBudget(model.config(), Candidates.checkWidths(allocation.kvCandidates), quantOptions.kvGroup,
                        allocation.kvBudget);
            MixedPrecision.Session session = MixedPrecision.prepare(model, () -> modelOptions.load(ckpt), Checkpoints.tokenizer(ckpt), recipe,
                    allocation.grid(), allocation.widths(), allocation.windows(quantOptions.calibration.seed), allocation.probeBits,
                    p == Sensitivities.Predictor.KLD, Progress.terminal());
            MixedPrecision.Result r = session.allocate(target, p, allocation.granularity(), allocation.refine, Progress.terminal());
            lowbit.quant.mixed.KvAllocation.Result kv = allocation.kvBudget == null ? null
                    : session.allocateKv(r, allocation.kvBudget, Candidates.checkWidths(allocation.kvCandidates), allocation.kvProbeBits,
                    quantOptions.kvGroup, Progress.terminal());
            if (kv == null) session.write(out, r);
            else session.write(out, r, kv);
            var ref = r.refinement();
            if (session.sensitivities().measured())
                System.out.printf(Locale.ROOT, "sensitivity: %d linears by KL divergence at %s bits on %d tokens each; split-half Spearman %.3f%n",
                        session.candidates().linears().size(), allocation.probeBits, session.sensitivities().positions(),
                        session.sensitivities().splitHalfCorrelation());
            System.out.printf(Locale.ROOT, "selection windows: knapsack KLD %.4f, uniform w%d KLD %.4f, chosen (%s) %.4f after %d swaps%n",
                    ref.knapsackKld(), r.uniformWidth(), ref.uniformKld(), ref.chosen(), ref.kld(), ref.measurements());
            if (kv != null)
                System.out.printf(Locale.ROOT, "kv cache: %.4f bits per element (budget %s), selection KLD %.4f (uniform kv%d %.4f, %s), split-half Spearman %.3f%n",
                        kv.bitsPerElement(), allocation.kvBudget, kv.selectionKld(), kv.uniformWidth(), kv.uniformSelectionKld(), kv.chosen(),
                        kv.splitHalfSpearman());
            System.out.printf(Locale.ROOT, "wrote %s: %s at %.4f bits/weight (budget %s), widths %s, %.1f s%n", out, allocation.method,
                    r.bitsPerWeight(), allocation.budget, Allocations.widths(r.bits()), (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return allocation.memoryEstimate(ckpt.config(), quantOptions);
        }
    }
}
