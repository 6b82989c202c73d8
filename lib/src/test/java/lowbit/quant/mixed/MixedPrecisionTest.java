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

    @Test
    void gptqRunsTheAnswerItselfAndUniformIsItsOwnCandidate() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            QuantConfig grid = QuantConfig.group(2, 32);
            QuantizationRecipe recipe = QuantizationRecipe.of(QuantSpec.of("gptq", grid))
                    .withCalibration(new QuantizationRecipe.Calibration("c4", 4, 64, 0, lowbit.calibration.CalibrationSampler.Mode.DOCUMENTS));
            Candidates c = Candidates.of(recipe, grid, List.of(2, 3, 4), model, () -> Checkpoints.load(ckpt, 2), Checkpoints.tokenizer(ckpt),
                    Progress.NONE);
            assertTrue(c.realizes());
            var uniform = c.realize(Allocations.uniform(c, 3), Progress.NONE);
            for (String l : c.linears()) assertSame(c.get(l, 3), uniform.get(l), "uniform GPTQ is the 3-bit run itself");
            java.util.Map<String, Integer> mixed = new java.util.LinkedHashMap<>(Allocations.uniform(c, 3));
            String up = c.linears().get(3), down = c.linears().get(30);
            mixed.put(up, 4);
            mixed.put(down, 2);
            var run = c.realize(mixed, Progress.NONE);
            for (String l : c.linears())
                assertEquals(mixed.get(l), ((lowbit.quant.QuantizedWeight) run.get(l)).config().bits(), l + " quantized at its allocated width");
            // before the first changed layer GPTQ saw the same inputs as in the uniform run: the same weights, bit for bit
            assertArrayEquals(c.get(c.linears().get(0), 3).dequantize(), run.get(c.linears().get(0)).dequantize());
            // after it, the 3-bit linears were calibrated on the mixed model's outputs, not the uniform one's
            String after = c.linears().get(10);
            assertFalse(java.util.Arrays.equals(c.get(after, 3).dequantize(), run.get(after).dequantize()), after);
        }
    }

    @Test
    void aGptqSessionKeepsTheMethodsOwnRunOnlyWhenItMeasuresBetterThanUniform() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            QuantConfig grid = QuantConfig.group(2, 32);
            QuantizationRecipe recipe = QuantizationRecipe.of(QuantSpec.of("gptq", grid))
                    .withCalibration(new QuantizationRecipe.Calibration("c4", 4, 64, 0, lowbit.calibration.CalibrationSampler.Mode.DOCUMENTS));
            MixedPrecision.Session s = MixedPrecision.prepare(model, () -> Checkpoints.load(ckpt, 2), Checkpoints.tokenizer(ckpt), recipe, grid,
                    List.of(2, 3, 4), new MixedPrecision.Windows(2, 1, 32, 0), List.of(3), true, Progress.NONE);
            double target = s.candidates().bitsPerWeight(Allocations.uniform(s.candidates(), 3)) + 1e-9;
            MixedPrecision.Result r = s.allocate(target, Predictor.KLD, Granularity.LINEAR, 2, Progress.NONE);
            MixedPrecision.Realized run = r.realized();
            assertNotNull(run, "GPTQ runs its answer");
            assertTrue(run.selectionKld() <= run.uniformSelectionKld());
            var uniform = Allocations.uniform(s.candidates(), 3);
            if (r.bits().equals(uniform)) assertSame(run.uniformWeights(), run.weights());
            else {
                assertEquals(r.refinement().best(), r.bits(), "the best mixed answer, run by GPTQ, kept");
                assertTrue(run.selectionKld() < run.uniformSelectionKld());
            }
            for (String l : s.candidates().linears())
                assertEquals(r.bits().get(l), ((lowbit.quant.QuantizedWeight) run.weights().get(l)).config().bits(), l);
        }
    }
}
