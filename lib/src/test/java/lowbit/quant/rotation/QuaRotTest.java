package lowbit.quant.rotation;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.RuntimeQuantization;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The rotated float model computes the original's function: QuaRot's premise, checked on every Llama-family layout. */
class QuaRotTest {
    static Path tiny(String name) throws Exception {
        return Path.of(QuaRotTest.class.getClassLoader().getResource("tiny/" + name).toURI());
    }

    static int[] tokens(int n, int vocab, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) ids[i] = rnd.nextInt(vocab);
        return ids;
    }

    static double maxDiff(float[][] a, float[][] b) {
        double worst = 0;
        for (int t = 0; t < a.length; t++)
            for (int j = 0; j < a[t].length; j++) worst = Math.max(worst, Math.abs(a[t][j] - b[t][j]));
        return worst;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "qwen3", "llama-tied-bf16", "smollm-like-f16"})
    void rotatedFloatModelHasTheSameLogProbs(String name) throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny(name)); Transformer model = Checkpoints.load(ckpt, 2)) {
            int[] ids = tokens(40, model.config().vocabSize(), 11);
            float[][] before = model.logProbs(ids);
            float[] q0 = model.linear("model.layers.0.self_attn.q_proj").weight();
            float[] emb0 = model.tokenEmbeddings();
            boolean tied = model.config().tieWordEmbeddings();
            QuaRot.Applied applied = QuaRot.rotate(model, 3, false, Progress.NONE);
            assertTrue(model.onlineDownHadamard());
            assertFalse(model.onlineQueryKeyHadamard());
            assertFalse(model.config().tieWordEmbeddings(), "a rotated model has its own lm_head");
            assertFalse(Arrays.equals(q0, model.linear("model.layers.0.self_attn.q_proj").weight()), "q_proj was rotated");
            assertFalse(Arrays.equals(emb0, model.tokenEmbeddings()), "the embeddings were rotated");
            for (float w : model.normWeight(0, "attn")) assertEquals(1f, w);
            for (float w : model.normWeight(0, "final")) assertEquals(1f, w);
            double d = maxDiff(before, model.logProbs(ids));
            assertTrue(d < 1e-4, name + ": rotated log-probs moved by " + d);
            assertEquals(3, applied.seed());
            assertEquals(tied, ckpt.config().tieWordEmbeddings());
        }
    }

    /** With the online q/k Hadamard on and the KV cache left in float, attention is unchanged: q.k is invariant. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "qwen3", "smollm-like-f16"})
    void onlineQueryKeyHadamardKeepsFloatKvOutputs(String name) throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny(name)); Transformer model = Checkpoints.load(ckpt, 2)) {
            int[] ids = tokens(40, model.config().vocabSize(), 12);
            float[][] before = model.logProbs(ids);
            QuaRot.rotate(model, 0, true, Progress.NONE);
            assertTrue(model.onlineQueryKeyHadamard());
            double d = maxDiff(before, model.logProbs(ids));
            assertTrue(d < 1e-4, name + ": rotated log-probs with the q/k Hadamard moved by " + d);
        }
    }

    /** The same seed gives the same weights bit for bit; another seed other weights. */
    @Test
    void seedDecidesTheSigns() throws Exception {
        float[] a, b, c;
        try (Checkpoint ckpt = Checkpoints.open(tiny("llama")); Transformer m = Checkpoints.load(ckpt, 1)) {
            QuaRot.rotate(m, 7, false, Progress.NONE);
            a = m.linear("model.layers.1.mlp.down_proj").weight();
        }
        try (Checkpoint ckpt = Checkpoints.open(tiny("llama")); Transformer m = Checkpoints.load(ckpt, 2)) {
            QuaRot.rotate(m, 7, false, Progress.NONE);
            b = m.linear("model.layers.1.mlp.down_proj").weight();
        }
        try (Checkpoint ckpt = Checkpoints.open(tiny("llama")); Transformer m = Checkpoints.load(ckpt, 1)) {
            QuaRot.rotate(m, 8, false, Progress.NONE);
            c = m.linear("model.layers.1.mlp.down_proj").weight();
        }
        assertArrayEquals(a, b);
        assertFalse(Arrays.equals(a, c));
        double[] s = QuaRot.signs(64, 7);
        int plus = 0;
        for (double x : s) {
            assertTrue(x == 1 || x == -1);
            if (x == 1) plus++;
        }
        assertTrue(plus > 16 && plus < 48, "signs are balanced, got " + plus + " of 64 positive");
    }

    @Test
    void optIsRefusedBeforeAnyChange() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny("opt")); Transformer model = Checkpoints.load(ckpt, 1)) {
            float[] w = model.linear("model.decoder.layers.0.self_attn.q_proj").weight();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> QuaRot.rotate(model, 0, false, Progress.NONE));
            assertTrue(e.getMessage().contains("RMSNorm") && e.getMessage().contains("opt"), e.getMessage());
            assertArrayEquals(w, model.linear("model.decoder.layers.0.self_attn.q_proj").weight());
            assertFalse(model.onlineDownHadamard());
        }
    }

    /** A size with no Hadamard construction is refused before any work, naming the dimension, what reads it, and the order. */
    @Test
    void aSizeWithoutHadamardIsNamed() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny("llama"))) {
            ModelConfig c = ckpt.config();
            ModelConfig odd = new ModelConfig(c.family(), c.modelType(), c.vocabSize(), c.hiddenSize(), 1540, c.numLayers(),
                    c.numHeads(), c.numKvHeads(), c.headDim(), c.maxPositions(), c.ropeTheta(), c.normEps(), c.tieWordEmbeddings(),
                    c.attentionBias(), c.qkNorm(), c.hiddenAct(), c.normBefore(), c.wordEmbedProjDim(), c.bosTokenId(), c.eosTokenId());
            String m = assertThrows(IllegalArgumentException.class, () -> QuaRot.check(odd)).getMessage();
            assertTrue(m.startsWith("quarot: intermediate_size 1540 (down_proj input): ") && m.contains("order 1540"), m);
            ModelConfig oddHead = new ModelConfig(c.family(), c.modelType(), c.vocabSize(), c.hiddenSize(), c.intermediateSize(), c.numLayers(),
                    c.numHeads(), c.numKvHeads(), 10, c.maxPositions(), c.ropeTheta(), c.normEps(), c.tieWordEmbeddings(),
                    c.attentionBias(), c.qkNorm(), c.hiddenAct(), c.normBefore(), c.wordEmbedProjDim(), c.bosTokenId(), c.eosTokenId());
            m = assertThrows(IllegalArgumentException.class, () -> QuaRot.check(oddHead)).getMessage();
            assertTrue(m.contains("order 10") && m.contains("head_dim 10"), m);
        }
    }

    /** Zero-shot scoring keeps the context's keys after the online q/k Hadamard: continuations score as a full pass does. */
    @Test
    void continuationsAfterAPrefixMatchTheFullPassOnARotatedModel() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny("qwen3")); Transformer model = Checkpoints.load(ckpt, 2)) {
            QuaRot.rotate(model, 4, true, Progress.NONE);
            int[] ids = tokens(30, model.config().vocabSize(), 13);
            float[][] full = model.logProbs(ids);
            int c = 11;
            int[] tail = Arrays.copyOfRange(ids, c, ids.length);
            var scored = model.continuationLogProbs(model.prefix(Arrays.copyOf(ids, c)), java.util.List.of(tail)).get(0);
            for (int i = 0; i < tail.length; i++)
                assertEquals(full[c - 1 + i][tail[i]], scored.logProbs()[i], 1e-5, "continuation token " + i);
        }
    }
}
