package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.mixed.BitAllocator.Allocation;
import org.junit.jupiter.api.Test;

class BitAllocatorTest {

    private static LayerOption opt(String layer, int bits, long params, long storage, double loss) {
        return new LayerOption(layer, bits, params, storage, loss);
    }

    /**
     * 4 layers of 100 weights, storage = 100 x bits, budget 1000 bits (2.5 bits/weight): 200 bits beyond
     * the all-2-bit floor. Greedy takes A's upgrade first (5 / 100 bits beats B's 9 / 200), which leaves 100
     * bits, then C's (0.5 / 100): loss 0 + 9 + 1.5 + 1 = 11.5. Spending all 200 on B gives 5 + 0 + 2 + 1 = 8.
     */
    private static List<LayerOption> greedyTrap() {
        return List.of(
                opt("A", 2, 100, 200, 5.0), opt("A", 3, 100, 300, 0.0),
                opt("B", 2, 100, 200, 9.0), opt("B", 4, 100, 400, 0.0),
                opt("C", 2, 100, 200, 2.0), opt("C", 3, 100, 300, 1.5),
                opt("D", 2, 100, 200, 1.0), opt("D", 8, 100, 800, 0.0));
    }

    @Test
    void exactBeatsGreedyOnAHandBuiltTrap() {
        Allocation exact = BitAllocator.allocate(greedyTrap(), 2.5);
        assertEquals(Map.of("A", 2, "B", 4, "C", 2, "D", 2), exact.bits());
        assertEquals(8.0, exact.predictedLoss(), 0);
        assertEquals(1000, exact.storageBits());
        assertEquals(2.5, exact.bitsPerWeight(), 0);
        assertEquals(List.of("A", "B", "C", "D"), List.copyOf(exact.bits().keySet()));

        Allocation greedy = BitAllocator.allocateGreedy(greedyTrap(), 2.5);
        assertEquals(Map.of("A", 3, "B", 2, "C", 3, "D", 2), greedy.bits());
        assertEquals(11.5, greedy.predictedLoss(), 0);
        assertEquals(1000, greedy.storageBits());

        assertEquals(brute(greedyTrap(), 1000), exact.predictedLoss(), 0);
    }

    @Test
    void budgetIsRespectedToTheBit() {
        // Budget exactly B's upgrade (1000 bits): taken. One bit less (999 at 2.4975 x 400): not.
        assertEquals(4, BitAllocator.allocate(greedyTrap(), 2.5).bits().get("B"));
        Allocation under = BitAllocator.allocate(greedyTrap(), 2.4975);
        assertEquals(2, under.bits().get("B"));
        assertEquals(900, under.storageBits());
        assertEquals(12.0, under.predictedLoss(), 0); // A upgraded (0+9+2+1); C instead would give 16.5
        assertEquals(3, under.bits().get("A"));
        // 3.3 is not exact in binary; the budget is 3.3 x 1000 = 3300 bits, not 3299.
        List<LayerOption> one = List.of(opt("x", 2, 1000, 2000, 1), opt("x", 3, 1000, 3300, 0.5), opt("x", 4, 1000, 4000, 0));
        assertEquals(3, BitAllocator.allocate(one, 3.3).bits().get("x"));
        assertEquals(2, BitAllocator.allocate(one, 3.2999).bits().get("x"));
    }

    @Test
    void matchesBruteForceOnRandomInstances() {
        Random rnd = new Random(2024);
        int[] widths = {2, 3, 4, 8};
        int[][] shapes = {{64, 96}, {96, 64}, {32, 200}, {128, 128}, {200, 72}};
        int greedyWorse = 0, instances = 0;
        for (int n = 1; n <= 8; n++)
            for (int rep = 0; rep < (n <= 6 ? 20 : 6); rep++) {
                List<LayerOption> options = new ArrayList<>();
                QuantConfig base = rnd.nextBoolean() ? QuantConfig.group(4, 32) : QuantConfig.perChannel(4);
                for (int l = 0; l < n; l++) {
                    int[] s = shapes[rnd.nextInt(shapes.length)];
                    double sens = Math.exp(2 * rnd.nextGaussian());
                    for (int b : widths) {
                        // Mostly falling with bits, sometimes not, so that dominated options occur too.
                        double loss = sens * Math.pow(4, -(b - 2)) * (0.5 + rnd.nextDouble()) + (rnd.nextInt(10) == 0 ? sens : 0);
                        options.add(LayerOption.of("layer" + l, s[0], s[1], base.withBits(b), loss));
                    }
                }
                long params = options.stream().filter(o -> o.bits() == 2).mapToLong(LayerOption::parameters).sum();
                long min = options.stream().filter(o -> o.bits() == 2).mapToLong(LayerOption::storageBits).sum();
                long max = options.stream().filter(o -> o.bits() == 8).mapToLong(LayerOption::storageBits).sum();
                double target = Math.round((min + rnd.nextDouble() * (max - min)) / (double) params * 1e4) / 1e4;
                if (budget(target, params) < min) target = Math.round(target * 1e4 + 1) / 1e4;
                if (budget(target, params) > max) target = Math.round(target * 1e4 - 1) / 1e4;
                long budget = budget(target, params);

                Allocation exact = BitAllocator.allocate(options, target);
                Allocation greedy = BitAllocator.allocateGreedy(options, target);
                double best = brute(options, budget);
                String what = "n=" + n + " rep=" + rep + " target=" + target;
                assertEquals(best, exact.predictedLoss(), 1e-9 * Math.max(1, best), what);
                assertTrue(exact.storageBits() <= budget, what);
                assertTrue(greedy.storageBits() <= budget, what);
                assertTrue(greedy.predictedLoss() >= exact.predictedLoss() - 1e-9 * Math.max(1, best), what);
                checkConsistent(options, exact);
                checkConsistent(options, greedy);
                if (greedy.predictedLoss() > exact.predictedLoss() * (1 + 1e-9)) greedyWorse++;
                instances++;
            }
        // The instances must exercise the case the exact method exists for.
        assertTrue(greedyWorse >= 5, "greedy was suboptimal on only " + greedyWorse + " of " + instances);
    }

    @Test
    void matchesAnIntegerBudgetDpOnFortyLayers() {
        // An independent exact method that only works for small integer costs: dp[c] = least loss within c bits.
        Random rnd = new Random(11);
        for (int rep = 0; rep < 10; rep++) {
            int n = 40;
            List<LayerOption> options = new ArrayList<>();
            long[][] cost = new long[n][4];
            double[][] loss = new double[n][4];
            int[] widths = {2, 3, 4, 8};
            for (int l = 0; l < n; l++)
                for (int k = 0; k < 4; k++) {
                    cost[l][k] = widths[k] * 10L + rnd.nextInt(8);
                    loss[l][k] = rnd.nextDouble() * Math.pow(3, -k) * (1 + l % 5);
                    options.add(opt("L" + l, widths[k], 10, cost[l][k], loss[l][k]));
                }
            double target = 2.2 + rnd.nextInt(500) / 100.0; // 2.2 .. 7.19 bits/weight of 400 weights
            int budget = (int) Math.round(target * 400);
            double[] dp = new double[budget + 1]; // over layers so far, least loss with total cost <= c
            for (int l = 0; l < n; l++) {
                double[] next = new double[budget + 1];
                Arrays.fill(next, Double.POSITIVE_INFINITY);
                for (int c = 0; c <= budget; c++)
                    for (int k = 0; k < 4; k++)
                        if (cost[l][k] <= c) next[c] = Math.min(next[c], dp[c - (int) cost[l][k]] + loss[l][k]);
                dp = next;
            }
            if (dp[budget] == Double.POSITIVE_INFINITY) {
                assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(options, target));
                continue;
            }
            Allocation a = BitAllocator.allocate(options, target);
            assertEquals(dp[budget], a.predictedLoss(), 1e-9, "rep " + rep);
            assertTrue(a.storageBits() <= budget);
            checkConsistent(options, a);
        }
    }

    /** The default model's 210 linears (30 blocks x 7) at w{2,3,4,8}g128 and w{3,4,6,8}g128. */
    @Test
    void defaultModelSizedProblemIsFast() {
        for (double spread : new double[] {1.5, 0.01, 0})
            defaultModelSized(spread);
    }

    private static void defaultModelSized(double spread) {
        String[] names = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj",
                "mlp.up_proj", "mlp.down_proj"};
        int[][] shapes = {{576, 576}, {192, 576}, {192, 576}, {576, 576}, {1536, 576}, {1536, 576}, {576, 1536}};
        for (int[] widths : new int[][] {{2, 3, 4, 8}, {3, 4, 6, 8}}) {
            Random rnd = new Random(widths[0]);
            List<LayerOption> options = new ArrayList<>();
            for (int block = 0; block < 30; block++)
                for (int m = 0; m < 7; m++) {
                    double sens = Math.exp(spread * rnd.nextGaussian()) * (block == 0 || block == 29 ? 10 : 1);
                    for (int b : widths)
                        options.add(LayerOption.of("model.layers." + block + "." + names[m], shapes[m][0], shapes[m][1],
                                QuantConfig.group(b, 128), sens * Math.pow(4, -b) * (spread == 0 ? 1 : 0.8 + 0.4 * rnd.nextDouble())));
                }
            for (double target : new double[] {3.5, 4.25}) {
                long t0 = System.nanoTime();
                Allocation exact = BitAllocator.allocate(options, target);
                long t1 = System.nanoTime();
                Allocation greedy = BitAllocator.allocateGreedy(options, target);
                long t2 = System.nanoTime();
                System.out.printf("spread %.2f, 210 x %s at %.2f: exact %.1f ms (loss %.6g, %.4f b/w), greedy %.1f ms (loss %.6g, %.4f b/w)%n",
                        spread, Arrays.toString(widths), target, (t1 - t0) / 1e6, exact.predictedLoss(), exact.bitsPerWeight(),
                        (t2 - t1) / 1e6, greedy.predictedLoss(), greedy.bitsPerWeight());
                assertEquals(210, exact.bits().size());
                assertTrue(exact.bitsPerWeight() <= target);
                assertTrue(exact.predictedLoss() <= greedy.predictedLoss());
                // The widest uniform allocation within the budget is one of the candidates.
                for (int b : widths) {
                    Allocation u = BitAllocator.uniform(options, b);
                    if (u.bitsPerWeight() <= target) assertTrue(exact.predictedLoss() <= u.predictedLoss(), "uniform " + b);
                }
                checkConsistent(options, exact);
                assertTrue((t1 - t0) / 1e9 < 20, "exact allocation took " + (t1 - t0) / 1e9 + " s");
            }
        }
    }

    @Test
    void uniformAllocation() {
        Allocation u = BitAllocator.uniform(greedyTrap(), 2);
        assertEquals(Map.of("A", 2, "B", 2, "C", 2, "D", 2), u.bits());
        assertEquals(800, u.storageBits());
        assertEquals(17.0, u.predictedLoss(), 0);
        var e = assertThrows(IllegalArgumentException.class, () -> BitAllocator.uniform(greedyTrap(), 4));
        assertTrue(e.getMessage().contains("layer A has no 4-bit option"), e.getMessage());
    }

    @Test
    void errors() {
        var low = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(greedyTrap(), 1.5));
        assertTrue(low.getMessage().contains("below the cheapest") && low.getMessage().contains("2.000000..4.500000"), low.getMessage());
        var high = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocateGreedy(greedyTrap(), 4.6));
        assertTrue(high.getMessage().contains("above the most expensive") && high.getMessage().contains("2.000000..4.500000"), high.getMessage());
        assertEquals(1800, BitAllocator.allocate(greedyTrap(), 4.5).storageBits());
        assertEquals(800, BitAllocator.allocate(greedyTrap(), 2).storageBits());

        var none = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(List.of("A", "B", "Z"),
                greedyTrap().subList(0, 4), 2.5));
        assertTrue(none.getMessage().contains("layer Z has no options"), none.getMessage());
        var stray = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(List.of("A"), greedyTrap(), 2.5));
        assertTrue(stray.getMessage().contains("not in the list of layers"), stray.getMessage());
        var dup = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(
                List.of(opt("A", 2, 100, 200, 1), opt("A", 2, 100, 210, 0.5)), 2.1));
        assertTrue(dup.getMessage().contains("duplicate option for layer A at 2 bits"), dup.getMessage());
        var params = assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(
                List.of(opt("A", 2, 100, 200, 1), opt("A", 3, 101, 300, 0.5)), 2.5));
        assertTrue(params.getMessage().contains("100 and 101 parameters"), params.getMessage());
        assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(List.of(), 3));
        assertThrows(IllegalArgumentException.class, () -> BitAllocator.allocate(greedyTrap(), Double.NaN));
        var cap = assertThrows(IllegalStateException.class, () -> BitAllocator.allocate(List.of("A", "B", "C", "D"), greedyTrap(), 2.5, 1));
        assertTrue(cap.getMessage().contains("more than 1 states"), cap.getMessage());
    }

    private static void checkConsistent(List<LayerOption> options, Allocation a) {
        long storage = 0, params = 0;
        double loss = 0;
        for (var e : a.bits().entrySet()) {
            LayerOption o = options.stream().filter(x -> x.layer().equals(e.getKey()) && x.bits() == e.getValue()).findFirst().orElseThrow();
            storage += o.storageBits();
            params += o.parameters();
            loss += o.predictedLoss();
        }
        assertEquals(storage, a.storageBits());
        assertEquals(loss, a.predictedLoss(), 1e-12 * Math.max(1, Math.abs(loss)));
        assertEquals((double) storage / params, a.bitsPerWeight(), 1e-15);
    }

    private static long budget(double target, long params) {
        return new java.math.BigDecimal(Double.toString(target)).multiply(java.math.BigDecimal.valueOf(params))
                .setScale(0, java.math.RoundingMode.FLOOR).longValueExact();
    }

    /** Least total loss over all K^n choices within {@code budget} bits. */
    private static double brute(List<LayerOption> options, long budget) {
        List<List<LayerOption>> layers = new ArrayList<>(options.stream()
                .collect(java.util.stream.Collectors.groupingBy(LayerOption::layer, java.util.LinkedHashMap::new,
                        java.util.stream.Collectors.toList())).values());
        return brute(layers, 0, 0, 0, budget);
    }

    private static double brute(List<List<LayerOption>> layers, int i, long storage, double loss, long budget) {
        if (storage > budget) return Double.POSITIVE_INFINITY;
        if (i == layers.size()) return loss;
        double best = Double.POSITIVE_INFINITY;
        for (LayerOption o : layers.get(i)) best = Math.min(best, brute(layers, i + 1, storage + o.storageBits(), loss + o.predictedLoss(), budget));
        return best;
    }
}
