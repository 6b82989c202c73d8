package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.activation.KvWidths;
import org.junit.jupiter.api.Test;

/** KV-cache widths per layer on llama2.c's stories260K (5 layers, 4 kv heads of 8 dimensions). */
class KvAllocationTest {
    private static final List<Integer> WIDTHS = List.of(2, 3, 4, 8);

    static Path stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        return bin;
    }

    private static int[][] windows(int n, int len, long seed) {
        Random r = new Random(seed);
        int[][] w = new int[n][];
        for (int i = 0; i < n; i++) w[i] = r.ints(len, 1, 512).toArray();
        return w;
    }

    /** Storage per token of one item (4 x 8 elements, whole-head groups of 8): codes, then per group an fp16 scale and a b-bit zero. */
    private static long itemBits(int b) {
        return 32L * b + 4L * (16 + b);
    }

    @Test
    void theAllocationFitsTheBudgetAndIsNeverWorseThanUniform() throws Exception {
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            ModelConfig cfg = m.config();
            KldProbe sens = KldProbe.of(m, windows(4, 64, 1), Progress.NONE), sel = KldProbe.of(m, windows(2, 64, 2), Progress.NONE);
            KvAllocation.Measured measured = KvAllocation.measure(sens, WIDTHS, 4, 0, Progress.NONE);
            assertEquals(2 * cfg.numLayers(), measured.items().size());
            for (int i = 0; i < measured.items().size(); i++) {
                assertTrue(measured.kld(i) > 0, measured.items().get(i) + " at 4 bits moves the model");
                for (int j = 1; j < WIDTHS.size(); j++)
                    assertTrue(measured.mse(i, j) < measured.mse(i, j - 1), "more bits, less error: " + measured.items().get(i));
            }
            assertTrue(Double.isFinite(measured.splitHalfCorrelation()));
            for (double target : new double[] {5.0, 6.0, 6.5, 7.2}) {
                KvAllocation.Result r = measured.allocate(sel, target, Progress.NONE);
                long storage = 0;
                for (int l = 0; l < cfg.numLayers(); l++) storage += itemBits(r.widths().key(l)) + itemBits(r.widths().value(l));
                assertEquals(storage / (32.0 * 10), r.bitsPerElement(), 1e-12, "bits per element by hand");
                assertTrue(r.bitsPerElement() <= target, r.bitsPerElement() + " over " + target);
                int uniform = 2;
                for (int b : WIDTHS) if (itemBits(b) * 32 * 10 / 32 <= target * 32 * 10 && b > uniform) uniform = b;
                assertEquals(uniform, r.uniformWidth(), "the widest uniform width within " + target);
                assertTrue(r.selectionKld() <= r.uniformSelectionKld(), "never worse than uniform at " + target);
                assertEquals(r.selectionKld(), KvAllocation.measureAt(sel, r.widths(), 0).meanKld(), 0.0, "the reported KLD is the answer's");
                assertEquals(10, r.table().rowCount());
            }
        }
    }

    /** Sensitivities turned upside down send the sensitive items to 2 bits: that measures worse, and uniform is returned. */
    @Test
    void uniformIsReturnedWhenTheMixedAnswerMeasuresWorse() throws Exception {
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            KldProbe sens = KldProbe.of(m, windows(4, 64, 1), Progress.NONE), sel = KldProbe.of(m, windows(2, 64, 2), Progress.NONE);
            KvAllocation.Measured measured = KvAllocation.measure(sens, WIDTHS, 4, 0, Progress.NONE);
            double[][] real = measured.losses(), upsideDown = new double[real.length][];
            for (int i = 0; i < real.length; i++) {
                upsideDown[i] = real[i].clone();
                for (int j = 0; j < WIDTHS.size(); j++) upsideDown[i][j] = real[i][j] / measured.kld(i) / measured.kld(i);
            }
            KvAllocation.Result r = measured.choose(sel, 6.5, upsideDown, Progress.NONE);
            assertNotEquals(r.knapsack(), r.widths(), "the knapsack's answer was not uniform");
            assertTrue(r.knapsackSelectionKld() > r.uniformSelectionKld(), r.knapsackSelectionKld() + " vs " + r.uniformSelectionKld());
            assertEquals("uniform", r.chosen());
            int[] four = new int[5];
            Arrays.fill(four, 4);
            assertEquals(KvWidths.perLayer(four, four), r.widths());
            assertEquals(6.5, r.bitsPerElement(), 0.0, "4 + (16 + 4) / 8");
            assertEquals(r.uniformSelectionKld(), r.selectionKld(), 0.0);
        }
    }

    @Test
    void oneAndTwoThreadsGiveTheSameAnswer() throws Exception {
        KvAllocation.Result[] r = new KvAllocation.Result[2];
        for (int threads = 1; threads <= 2; threads++)
            try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, threads)) {
                r[threads - 1] = KvAllocation.allocate(KldProbe.of(m, windows(4, 64, 1), Progress.NONE), KldProbe.of(m, windows(2, 64, 2), Progress.NONE),
                        WIDTHS, 4, 4, 8.5, Progress.NONE);
            }
        assertEquals(r[0].widths(), r[1].widths());
        assertEquals(r[0].knapsack(), r[1].knapsack());
        assertEquals(r[0].selectionKld(), r[1].selectionKld(), 0.0);
        assertEquals(r[0].knapsackSelectionKld(), r[1].knapsackSelectionKld(), 0.0);
        assertEquals(r[0].uniformSelectionKld(), r[1].uniformSelectionKld(), 0.0);
        assertArrayEquals(r[0].table().doubleColumn("kld").asDoubleArray(), r[1].table().doubleColumn("kld").asDoubleArray(), 0.0);
        assertEquals(r[0].splitHalfSpearman(), r[1].splitHalfSpearman(), 0.0);
    }

    /** On a weight-quantized model the items are measured above what the weights already cost. */
    @Test
    void onTopOfQuantizedWeights() throws Exception {
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            KldProbe sens = KldProbe.of(m, windows(4, 64, 1), Progress.NONE), sel = KldProbe.of(m, windows(2, 64, 2), Progress.NONE);
            double floatKld = KvAllocation.measureAt(sens, KvWidths.uniform(3, 3), 0).meanKld();
            QuantizedModel.rtn(m, QuantConfig.group(3, 32));
            double weights = sens.recache(0).meanKld();
            sel.recache(0);
            assertTrue(weights > 0, "3-bit weights move the model");
            KvAllocation.Measured measured = KvAllocation.measure(sens, WIDTHS, 4, 0, Progress.NONE);
            double both = KvAllocation.measureAt(sens, KvWidths.uniform(3, 3), 0).meanKld();
            assertTrue(both > weights && both > floatKld, "3-bit KV on 3-bit weights: " + both + " vs " + weights + " and " + floatKld);
            // item 4 is layer 2's keys: its sensitivity is the KL divergence of weights and those keys at 4 bits, less the weights'
            assertEquals(new KvAllocation.Item(2, KvAllocation.Tensor.KEYS), measured.items().get(4));
            int[] k = {16, 16, 4, 16, 16}, v = {16, 16, 16, 16, 16};
            assertEquals(KvAllocation.measureAt(sens, KvWidths.perLayer(k, v), 0).meanKld() - weights, measured.kld(4), 1e-12);
            KvAllocation.Result r = measured.allocate(sel, 6.0, Progress.NONE);
            assertTrue(r.bitsPerElement() <= 6.0);
            assertTrue(r.selectionKld() <= r.uniformSelectionKld());
        }
    }

    @Test
    void badRequestsAreRefused() throws Exception {
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 1)) {
            KldProbe p = KldProbe.of(m, windows(2, 16, 1), Progress.NONE);
            var e = assertThrows(IllegalArgumentException.class, () -> KvAllocation.measure(p, List.of(2, 4, 16), 4, 0, Progress.NONE));
            assertEquals("KV candidate widths must be 2..8, got 16", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> KvAllocation.measure(p, WIDTHS, 5, 0, Progress.NONE));
            assertEquals("KV probe width 5 is not a candidate [2, 3, 4, 8]", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> KvAllocation.measure(p, WIDTHS, 4, 3, Progress.NONE));
            assertEquals("KV group size must divide headDim 8 (0: the whole head), got 3", e.getMessage());
            KvAllocation.Measured measured = KvAllocation.measure(p, List.of(2, 4), 4, 0, Progress.NONE);
            e = assertThrows(IllegalArgumentException.class, () -> measured.allocate(p, 4.0, Progress.NONE));
            assertEquals("KV budget: target 4.0 bits/element is below the cheapest allocation; achievable range for these 10 keys and values "
                    + "(320 elements per token) is 4.250000..6.500000 bits/element", e.getMessage());
        }
    }
}
