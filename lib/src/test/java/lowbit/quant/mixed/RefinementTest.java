package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.mixed.Allocations.Granularity;
import org.junit.jupiter.api.Test;

/** Refinement on stories260K: what it returns is what it measured, and never worse than uniform on its windows. */
class RefinementTest {
    @Test
    void aMispredictingKnapsackIsCaughtAndTheAnswerIsMeasured() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            Candidates c = Candidates.rtn(model, QuantConfig.group(2, 32), List.of(2, 3, 4, 8));
            KldProbe selection = KldProbe.of(model, MixedTestModel.windows(ckpt, 2, 64, 11), Progress.NONE);
            double target = c.bitsPerWeight(Allocations.uniform(c, 3)) + 1e-9;
            // predicted losses that call 2 bits free for the largest linears: the knapsack's answer is bad
            double[][] wrong = new double[c.linears().size()][4];
            for (int i = 0; i < wrong.length; i++)
                for (int j = 0; j < 4; j++) wrong[i][j] = c.parameters(c.linears().get(i)) > 4096 && j == 0 ? 0 : Math.pow(2, -j) * (i + 1);
            Map<String, Integer> knapsack = Allocations.knapsack(c, wrong, Granularity.LINEAR, target);
            Map<String, Integer> uniform = Allocations.uniform(c, 3);
            Map<String, float[]> before = new java.util.LinkedHashMap<>();
            for (String l : c.linears()) before.put(l, model.linear(l).weight());

            Refinement.Result r = Refinement.refine(c, selection, knapsack, uniform, wrong, Granularity.LINEAR, target, 6, Progress.NONE);
            for (String l : c.linears()) assertArrayEquals(before.get(l), model.linear(l).weight(), l + " restored");
            assertTrue(r.kld() <= r.uniformKld(), "never worse than uniform on the selection windows");
            assertTrue(r.kld() <= r.knapsackKld());
            assertTrue(Allocations.storage(c, r.bits()) <= Allocations.budgetBits(c, target));
            assertEquals(6, r.measurements());

            // the numbers are measurements: the answer, the knapsack's and uniform measured again from scratch
            KldProbe reference = KldProbe.of(model, MixedTestModel.windows(ckpt, 2, 64, 11), Progress.NONE);
            for (var pair : List.of(Map.entry(r.bits(), r.kld()), Map.entry(knapsack, r.knapsackKld()), Map.entry(uniform, r.uniformKld()))) {
                Map<lowbit.model.Linear, float[]> all = new java.util.LinkedHashMap<>();
                for (String l : c.linears()) all.put(model.linear(l), c.get(l, pair.getKey().get(l)).dequantize());
                assertEquals(pair.getValue(), reference.with(all).meanKld(), 1e-12);
            }
        }
    }
}
