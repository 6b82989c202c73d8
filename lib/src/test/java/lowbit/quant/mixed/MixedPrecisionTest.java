package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.mixed.Allocations.Granularity;
import lowbit.quant.mixed.Sensitivities.Predictor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A whole session on stories260K: measured once, allocated at a budget, written as a bits map. */
class MixedPrecisionTest {
    @Test
    void narrowWidthsAreMeasuredBeforeTheyAreKeptAndTheAnswerIsWithinBudget(@TempDir Path tmp) {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            QuantConfig grid = QuantConfig.group(2, 32);
            QuantizationRecipe recipe = QuantizationRecipe.of(QuantSpec.of("rtn", grid));
            MixedPrecision.Session s = MixedPrecision.prepare(model, () -> Checkpoints.load(ckpt, 2), Checkpoints.tokenizer(ckpt), recipe, grid,
                    List.of(2, 3, 4, 8), new MixedPrecision.Windows(2, 1, 32, 0), List.of(3), true, Progress.NONE);
            double target = s.candidates().bitsPerWeight(Allocations.uniform(s.candidates(), 3)) + 1e-9;
            MixedPrecision.Result r = s.allocate(target, Predictor.KLD, Granularity.LINEAR, 2, Progress.NONE);
            for (int i = 0; i < s.candidates().linears().size(); i++)
                if (r.knapsack().get(s.candidates().linears().get(i)) == 2)
                    assertTrue(s.sensitivities().measuredAt(i, 0), s.candidates().linears().get(i) + " chosen at 2 bits without a measurement");
            assertTrue(r.storageBits() <= Allocations.budgetBits(s.candidates(), target));
            assertTrue(r.refinement().kld() <= r.refinement().uniformKld());
            assertEquals(3, r.uniformWidth());

            Path file = tmp.resolve("bits.json");
            s.write(file, r);
            BitsMap map = BitsMap.read(file);
            assertEquals(r.bits(), map.layers());
            assertEquals(model.sha256(), map.provenance().get("model_sha256"));
            assertEquals(r.bitsPerWeight(), ((Number) map.provenance().get("target_bits_per_weight")).doubleValue(), 0.5);

            MixedPrecision.Result again = s.allocate(target, Predictor.KLD, Granularity.LINEAR, 2, Progress.NONE);
            assertEquals(r.bits(), again.bits(), "the same session gives the same answer");
        }
    }
}
