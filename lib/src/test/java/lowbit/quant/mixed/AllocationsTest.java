package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import lowbit.checkpoint.Checkpoint;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.mixed.Allocations.Granularity;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The allocations at a budget on stories260K's 35 linears (RTN candidates 2, 3, 4, 8 bits, g32). */
class AllocationsTest {
    private static Candidates c;
    private static int layers;

    @BeforeAll
    static void candidates() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            c = Candidates.rtn(model, QuantConfig.group(2, 32), List.of(2, 3, 4, 8));
            layers = model.config().numLayers();
        }
    }

    private static double bpw(int bits) {
        return c.bitsPerWeight(Allocations.uniform(c, bits));
    }

    @Test
    void q4kmLayersAreLlamaCppsUseMoreBits() {
        // llama.cpp's use_more_bits(i, n) for n = 30 (SmolLM2-135M) and n = 32 (Llama 7B): listed by hand from its formula
        assertEquals(List.of(0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 26, 27, 28, 29),
                IntStream.range(0, 30).filter(i -> Allocations.q4kmLayer(i, 30)).boxed().toList());
        assertEquals(List.of(0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31),
                IntStream.range(0, 32).filter(i -> Allocations.q4kmLayer(i, 32)).boxed().toList());
    }

    @Test
    void budgetOutsideTheCandidatesIsRefusedWithTheRange() {
        var below = assertThrows(IllegalArgumentException.class, () -> Allocations.uniformWidth(c, 2.0));
        assertTrue(below.getMessage().startsWith("--budget 2.0 bits/weight is below the smallest candidate's: candidates [2, 3, 4, 8] give "),
                below.getMessage());
        assertTrue(below.getMessage().contains(String.format(java.util.Locale.ROOT, "%.4f (all 2-bit)", bpw(2))), below.getMessage());
        var above = assertThrows(IllegalArgumentException.class, () -> Allocations.uniformWidth(c, 9));
        assertTrue(above.getMessage().contains("above the largest candidate's"), above.getMessage());
        assertEquals(3, Allocations.uniformWidth(c, 3.9));
        assertEquals(4, Allocations.uniformWidth(c, bpw(4) + 1e-9), "uniform 4-bit fits its own figure");
        assertEquals(3, Allocations.uniformWidth(c, bpw(4) - 1e-3));
    }

    @Test
    void knapsackGroupsShareAWidthAndStayWithinBudget() {
        double target = 3.5;
        double[][] losses = new double[c.linears().size()][4];
        for (int i = 0; i < losses.length; i++)
            for (int j = 0; j < 4; j++) losses[i][j] = (i % 7 + 1) * Math.pow(4, -c.widths().get(j));
        for (Granularity g : Granularity.values()) {
            Map<String, Integer> bits = Allocations.knapsack(c, losses, g, target);
            assertTrue(Allocations.storage(c, bits) <= Allocations.budgetBits(c, target), g + " within budget");
            for (String a : bits.keySet())
                for (String b : bits.keySet())
                    if (g.group(a).equals(g.group(b))) assertEquals(bits.get(a), bits.get(b), g + ": " + a + " and " + b);
        }
        assertEquals("model.layers.3", Granularity.BLOCK.group("model.layers.3.mlp.down_proj"));
        assertEquals("down_proj", Granularity.KIND.group("model.layers.3.mlp.down_proj"));
    }

    @Test
    void randomAllocationsAreSeededWithinBudgetAndLeaveNoStepThatFits() {
        double target = 3.5;
        long budget = Allocations.budgetBits(c, target);
        List<Map<String, Integer>> seen = new ArrayList<>();
        for (long seed = 1; seed <= 5; seed++) {
            Map<String, Integer> bits = Allocations.random(c, target, seed);
            assertEquals(bits, Allocations.random(c, target, seed), "same seed, same allocation");
            long s = Allocations.storage(c, bits);
            assertTrue(s <= budget);
            for (String l : c.linears()) {
                int k = c.widths().indexOf(bits.get(l));
                if (k + 1 < c.widths().size())
                    assertTrue(s - c.storageBits(l, bits.get(l)) + c.storageBits(l, c.widths().get(k + 1)) > budget, l + " could still step up");
            }
            assertFalse(seen.contains(bits), "seeds give different allocations");
            seen.add(bits);
        }
    }

    @Test
    void rulesUpgradeTheirLinearsAndPayWithTheMiddle() {
        // stories260K: 5 layers, use_more_bits gives layers 2 and 4 (n/8 = 0, 7n/8 = 4, (i - 0) % 3 == 2)
        double target = bpw(4) + 1e-9;
        Map<String, Integer> q = Allocations.q4km(c, target, layers);
        assertTrue(Allocations.storage(c, q) <= Allocations.budgetBits(c, target));
        for (String l : c.linears()) {
            boolean chosen = (l.endsWith("v_proj") || l.endsWith("down_proj")) && (Allocations.layer(l) == 2 || Allocations.layer(l) == 4);
            if (chosen) assertEquals(8, q.get(l), l + ": 4 + 2 is not a candidate, the next one up is 8");
            else assertTrue(q.get(l) == 4 || q.get(l) == 3, l + " at the uniform width or one below");
        }
        // paid for from the middle out: no linear of layer 0 or 4 steps down while one of layer 2 stays at 4
        boolean endsDown = c.linears().stream().anyMatch(l -> q.get(l) == 3 && (Allocations.layer(l) == 0 || Allocations.layer(l) == 4));
        boolean middleUp = c.linears().stream().anyMatch(l -> q.get(l) == 4 && Allocations.layer(l) == 2
                && !(l.endsWith("v_proj") || l.endsWith("down_proj")));
        assertFalse(endsDown && middleUp);
        Map<String, Integer> fl = Allocations.firstLast(c, target, layers);
        assertTrue(Allocations.storage(c, fl) <= Allocations.budgetBits(c, target));
        for (String l : c.linears()) if (Allocations.layer(l) == 0 || Allocations.layer(l) == layers - 1) assertTrue(fl.get(l) >= 4, l);
    }
}
