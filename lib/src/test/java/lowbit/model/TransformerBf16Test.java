package lowbit.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.MemoryCheckpoint;
import lowbit.eval.TextDatasets;
import lowbit.io.DataDir;
import lowbit.io.TensorInfo;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** A model loaded with bf16 linears against the same model in float32. */
class TransformerBf16Test {
    private static final int[] TOKENS = {1, 17, 42, 5, 88, 3, 64, 12, 33, 9, 71, 2, 50, 8, 19, 90, 4, 27, 61, 13};

    /** A checkpoint whose every value is already a bf16 value: loading it in bf16 rounds nothing. */
    private record Bf16Exact(Checkpoint inner) implements Checkpoint {
        @Override public ModelConfig config() { return inner.config(); }
        @Override public Map<String, TensorInfo> tensors() { return inner.tensors(); }
        @Override public Tokenizer tokenizer() { return inner.tokenizer(); }
        @Override public String sha256() { return inner.sha256(); }
        @Override public String source() { return inner.source(); }
        @Override public void close() { inner.close(); }

        @Override
        public float[] floats(String name) {
            float[] v = inner.floats(name);
            for (int i = 0; i < v.length; i++) v[i] = WeightFormat.BF16.round(v[i]);
            return v;
        }
    }

    @Test
    void bf16ExactWeightsGiveBitwiseTheFloat32LogProbs() {
        for (boolean tied : new boolean[] {false, true}) {
            ModelConfig cfg = MemoryCheckpoint.smallLlama();
            if (tied) cfg = cfg.withTieWordEmbeddings(true);
            Checkpoint ckpt = new Bf16Exact(new MemoryCheckpoint(cfg, 11));
            try (Transformer fp32 = Checkpoints.load(ckpt, 2); Transformer bf16 = Checkpoints.load(ckpt, 2, WeightFormat.BF16)) {
                assertEquals(WeightFormat.FP32, fp32.weightFormat());
                assertEquals(WeightFormat.BF16, bf16.weightFormat());
                bf16.linears().values().forEach(l -> assertEquals(WeightFormat.BF16, l.format(), l.name()));
                assertEquals(WeightFormat.BF16, bf16.linear("lm_head").format());
                float[][] a = fp32.logProbs(TOKENS), b = bf16.logProbs(TOKENS);
                for (int t = 0; t < a.length; t++) assertArrayEquals(a[t], b[t], "tied=" + tied + " position " + t);
                assertArrayEquals(fp32.nll(TOKENS), bf16.nll(TOKENS));
            }
        }
    }

    /**
     * The tiny checkpoints of every family (tiny/README.md): Llama untied and tied, Qwen2's q/k/v biases, Qwen3's q/k norms,
     * pre-norm OPT with biases and learned positions, post-norm OPT-350m with project_in/out. Those stored in BF16 load
     * in bf16 as they are; the others through {@link Bf16Exact}. Either way, bitwise the float32 log-probs.
     */
    @ParameterizedTest
    @CsvSource({"llama,false", "llama-tied-bf16,true", "smollm-like-f16,false", "qwen2,true", "qwen3,false", "opt,false",
            "opt-350m-style,false"})
    void everyFamilyIsBitwiseTheSameInBf16WhenItsWeightsAreBf16Values(String dir, boolean storedInBf16) throws Exception {
        Checkpoint file = Checkpoints.open(TransformerParityTest.resource("tiny/" + dir));
        try (Checkpoint ckpt = storedInBf16 ? file : new Bf16Exact(file);
             Transformer fp32 = Checkpoints.load(ckpt, 2); Transformer bf16 = Checkpoints.load(ckpt, 2, WeightFormat.BF16)) {
            float[][] a = fp32.logProbs(TOKENS), b = bf16.logProbs(TOKENS);
            for (int t = 0; t < a.length; t++) assertArrayEquals(a[t], b[t], dir + " position " + t);
            bf16.linears().values().forEach(l -> assertEquals(WeightFormat.BF16, l.format(), l.name()));
        }
    }

    /** Loading in bf16 rounds each linear's weight to nearest even and leaves norms and embeddings in float32. */
    @Test
    void loadingRoundsLinearsOnly() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 12);
        try (Transformer m = Checkpoints.load(ckpt, 1, WeightFormat.BF16)) {
            String q = "model.layers.1.self_attn.q_proj.weight";
            float[] raw = ckpt.floats(q), held = m.tensor(q);
            int rounded = 0;
            for (int i = 0; i < raw.length; i++) {
                assertEquals(WeightFormat.BF16.round(raw[i]), held[i]);
                if (held[i] != raw[i]) rounded++;
            }
            assertTrue(rounded > raw.length / 2, "random float32 values are rarely bf16 values; " + rounded + " rounded");
            assertArrayEquals(ckpt.floats("model.layers.1.input_layernorm.weight"), m.tensor("model.layers.1.input_layernorm.weight"));
            assertArrayEquals(ckpt.floats("model.embed_tokens.weight"), m.tokenEmbeddings());
        }
    }

    /** Setting a weight on a bf16 model keeps bf16 values exactly and refuses any other value, naming the linear. */
    @Test
    void settingAWeightNeverRounds() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 13);
        try (Transformer m = Checkpoints.load(ckpt, 1, WeightFormat.BF16)) {
            Linear down = m.linear("model.layers.0.mlp.down_proj");
            float[] w = down.weight();
            w[0] = 0.5f;
            down.setWeight(w);
            assertArrayEquals(w, down.weight());
            w[3] = 0.1f;
            IllegalStateException e = assertThrows(IllegalStateException.class, () -> down.setWeight(w));
            assertEquals("model.layers.0.mlp.down_proj holds bf16 weights and the new weight's element 3 (0.1) is not a bf16 value; "
                    + "changing weights (quantizing, rotating, folding scales) needs the model loaded with --weights fp32", e.getMessage());
            assertEquals(0.5f, down.weight()[0]);
            assertEquals(WeightFormat.BF16.round(w[3]) == w[3], false);
        }
    }

    /**
     * The default model (Q4_1 GGUF: its dequantized weights are not bf16 values) on 256 WikiText-2 tokens. "Within 2e-2
     * relative" is per position: the log-prob vector over the vocabulary in bf16 differs from float32's by at most 2e-2 of
     * its norm (||a - b|| / ||a||). Measured at 2 threads: 0.0045 at worst over the 256 positions; element by element the
     * largest difference is 0.275 (at a log-prob near -20), and 0.067 at a log-prob of -1.79 (3.7% of it); the targets' NLL
     * moves by 0.105 at most, and the perplexity of the 255 targets by 0.02% (62.6972 against 62.6830).
     */
    @Test
    void defaultModelInBf16IsWithinTwoPercentOfFloat32() {
        Path model = DataDir.defaultModel();
        assumeTrue(Files.exists(model), "the default model is not in the data directory (./lowbit setup): " + model);
        try (Checkpoint ckpt = Checkpoints.open(model)) {
            int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(TextDatasets.load("wikitext2").text());
            int[] window = java.util.Arrays.copyOfRange(ids, 1000, 1256);
            float[][] a, b;
            double[] nllA, nllB;
            try (Transformer fp32 = Checkpoints.load(ckpt, 2)) {
                a = fp32.logProbs(window);
                nllA = fp32.nll(window);
            }
            try (Transformer bf16 = Checkpoints.load(ckpt, 2, WeightFormat.BF16)) {
                b = bf16.logProbs(window);
                nllB = bf16.nll(window);
            }
            double worstRow = 0, worstAbs = 0;
            for (int t = 0; t < a.length; t++) {
                double num = 0, den = 0;
                for (int j = 0; j < a[t].length; j++) {
                    double d = a[t][j] - b[t][j];
                    num += d * d;
                    den += (double) a[t][j] * a[t][j];
                    worstAbs = Math.max(worstAbs, Math.abs(d));
                }
                worstRow = Math.max(worstRow, Math.sqrt(num / den));
            }
            double sumA = 0, sumB = 0;
            for (int t = 0; t < nllA.length; t++) {
                sumA += nllA[t];
                sumB += nllB[t];
            }
            double pplA = Math.exp(sumA / nllA.length), pplB = Math.exp(sumB / nllB.length);
            System.out.printf("default model bf16 vs fp32 on %d tokens: max relative log-prob row difference %.5f, max |dlogp| %.4f, "
                    + "ppl %.4f vs %.4f%n", window.length, worstRow, worstAbs, pplB, pplA);
            assertTrue(worstRow <= 2e-2, "max relative log-prob row difference " + worstRow);
            assertTrue(worstAbs > 1e-3, "bf16 rounding changed nothing: the default model's weights are not bf16 values");
            assertEquals(pplA, pplB, 2e-2 * pplA);
        }
    }
}
