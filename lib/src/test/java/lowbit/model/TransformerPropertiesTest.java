package lowbit.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.MemoryCheckpoint;
import org.junit.jupiter.api.Test;

/** Properties any correct causal LM forward pass has; numeric parity with transformers is in TransformerParityTest. */
class TransformerPropertiesTest {
    private static final int[] TOKENS = {1, 17, 42, 5, 88, 3, 64, 12, 33, 9, 71, 2, 50, 8, 19, 90, 4, 27, 61, 13};

    @Test
    void sameNumbersOnAnyThreadCount() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 1);
        try (Transformer one = Checkpoints.load(ckpt, 1); Transformer three = Checkpoints.load(ckpt, 3)) {
            assertArrayEquals(one.nll(TOKENS), three.nll(TOKENS));
        }
    }

    @Test
    void laterTokensDoNotChangeEarlierPredictions() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 2);
        try (Transformer m = Checkpoints.load(ckpt, 2)) {
            float[][] full = m.logProbs(TOKENS);
            int[] changed = TOKENS.clone();
            changed[12] = 77;
            float[][] other = m.logProbs(changed);
            for (int t = 0; t < 12; t++) assertArrayEquals(full[t], other[t], 1e-6f, "position " + t);
            assertNotEquals(full[12][0], other[12][0]);
        }
    }

    @Test
    void logProbsAreNormalizedAndNllPicksTheTarget() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 3);
        try (Transformer m = Checkpoints.load(ckpt, 2)) {
            float[][] lp = m.logProbs(TOKENS);
            double[] nll = m.nll(TOKENS);
            assertEquals(TOKENS.length - 1, nll.length);
            for (int t = 0; t < TOKENS.length; t++) {
                double sum = 0;
                for (float v : lp[t]) sum += Math.exp(v);
                assertEquals(1.0, sum, 1e-4);
                if (t < nll.length) assertEquals(-lp[t][TOKENS[t + 1]], nll[t], 1e-4);
            }
        }
    }

    @Test
    void hooksSeeEveryLinearAndKvAndCanRewriteWeights() throws Exception {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 4);
        try (Transformer m = Checkpoints.load(ckpt, 2)) {
            double[] before = m.nll(TOKENS);
            List<String> seen = new ArrayList<>();
            int[] kvCalls = {0};
            ForwardHook hook = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    // nll() scores positions 0..T-2, so lm_head sees one row fewer
                    assertEquals(linear.module().equals("lm_head") ? TOKENS.length - 1 : TOKENS.length, rows);
                    assertTrue(x.length >= rows * linear.inFeatures());
                    seen.add(linear.name());
                }

                @Override
                public void keyValue(int layer, float[] keys, float[] values, int rows) {
                    assertEquals(rows * m.config().kvDim(), keys.length);
                    kvCalls[0]++;
                }
            };
            try (AutoCloseable h = m.addHook(hook)) {
                m.nll(TOKENS);
            }
            // 7 linears per block, lm_head once (the last position is not scored, so one chunk)
            assertEquals(2 * 7 + 1, seen.size());
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj"), seen.subList(0, 2));
            assertEquals(2, kvCalls[0]);
            seen.clear();
            m.nll(TOKENS);
            assertTrue(seen.isEmpty(), "a removed hook is not called");

            Linear down = m.linear("model.layers.1.mlp.down_proj");
            float[] original = down.weight();
            float[] zero = new float[original.length];
            down.setWeight(zero);
            assertNotEquals(before[5], m.nll(TOKENS)[5]);
            down.setWeight(original);
            assertArrayEquals(before, m.nll(TOKENS));
            assertThrows(IllegalArgumentException.class, () -> down.setWeight(new float[3]));
        }
    }

    @Test
    void zeroingABlocksOutputsLeavesTheResidualStream() {
        // With o_proj and down_proj zero, block 0 adds nothing: the hidden state equals the embedding.
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 5);
        try (Transformer m = Checkpoints.load(ckpt, 1)) {
            for (String n : List.of("model.layers.0.self_attn.o_proj", "model.layers.0.mlp.down_proj")) {
                Linear l = m.linear(n);
                l.setWeight(new float[l.outFeatures() * l.inFeatures()]);
            }
            float[] x = m.embed(TOKENS);
            float[] y = x.clone();
            m.block(0, y, TOKENS.length);
            assertArrayEquals(x, y);
        }
    }

    @Test
    void tokenOutsideTheVocabularyIsRefused() {
        try (Transformer m = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 6), 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> m.nll(new int[]{1, 500}));
            assertTrue(e.getMessage().contains("500"), e.getMessage());
        }
    }

    @Test
    void aBatchIsItsWindowsRunAlone() {
        try (Transformer m = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 8), 2)) {
            int[] other = {5, 4, 3, 2, 1, 0, 9};
            float[][][] batch = m.logProbs(new int[][]{TOKENS, other});
            float[][] first = m.logProbs(TOKENS), second = m.logProbs(other);
            for (int t = 0; t < TOKENS.length; t++) assertArrayEquals(first[t], batch[0][t]);
            for (int t = 0; t < other.length; t++) assertArrayEquals(second[t], batch[1][t]);
        }
    }

    @Test
    void aMissingTensorIsNamed() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 7).without("model.layers.1.mlp.up_proj.weight");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.load(ckpt, 1));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj.weight") && e.getMessage().contains("[96, 64]"),
                e.getMessage());
    }
}
