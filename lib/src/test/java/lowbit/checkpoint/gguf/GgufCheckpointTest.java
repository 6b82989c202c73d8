package lowbit.checkpoint.gguf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.Map;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.gguf.GgufBuilder;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.model.ModelConfig;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufCheckpointTest {
    @TempDir Path dir;

    // A tiny model: hidden 8, 2 query heads, 1 kv head, head_dim 4, ffn 6, one layer, vocab 5.
    static final int HIDDEN = 8, FFN = 6, VOCAB = 5;

    /** Hugging Face row r of a q/k weight holds r*10 + column, so a row's origin can be read off its values. */
    static float[] rowsInOrder(int[] hfRowOrder, int cols) {
        float[] x = new float[hfRowOrder.length * cols];
        for (int i = 0; i < hfRowOrder.length; i++)
            for (int c = 0; c < cols; c++) x[i * cols + c] = hfRowOrder[i] * 10 + c;
        return x;
    }

    static float[] filled(int n, float v) {
        float[] x = new float[n];
        java.util.Arrays.fill(x, v);
        return x;
    }

    // convert_hf_to_gguf.py's permute for n_head = 2, head_dim = 4 worked by hand:
    // reshape(2, 2, 2, cols) gives index (h, i, j) = h*4 + i*2 + j; swapaxes(1, 2) lists (h, j, i):
    // rows 0, 2, 1, 3, 4, 6, 5, 7. For the one kv head: 0, 2, 1, 3.
    static final int[] Q_STORED = {0, 2, 1, 3, 4, 6, 5, 7};
    static final int[] K_STORED = {0, 2, 1, 3};

    static GgufBuilder model(String arch, int heads, int keyLength, boolean output, boolean bias, boolean qkNorm) {
        return model(arch, heads, keyLength, output, bias, qkNorm, 500000f, 1e-6f);
    }

    static GgufBuilder model(String arch, int heads, int keyLength, boolean output, boolean bias, boolean qkNorm,
                             float ropeBase, float eps) {
        GgufBuilder g = new GgufBuilder();
        String p = arch + ".";
        g.kvString("general.architecture", arch);
        g.kvU32(p + "context_length", 128);
        g.kvU32(p + "embedding_length", HIDDEN);
        g.kvU32(p + "block_count", 1);
        g.kvU32(p + "feed_forward_length", FFN);
        g.kvU32(p + "attention.head_count", heads);
        g.kvU32(p + "attention.head_count_kv", 1);
        if (keyLength != HIDDEN / heads) g.kvU32(p + "attention.key_length", keyLength);
        g.kvF32(p + "rope.freq_base", ropeBase);
        g.kvF32(p + "attention.layer_norm_rms_epsilon", eps);
        g.kvU32("tokenizer.ggml.bos_token_id", 3);
        g.kvU32("tokenizer.ggml.eos_token_id", 4);
        int q = heads * keyLength, kv = keyLength;
        g.f32("token_embd.weight", new long[] {HIDDEN, VOCAB}, filled(HIDDEN * VOCAB, 0.5f));
        g.f32("blk.0.attn_norm.weight", new long[] {HIDDEN}, filled(HIDDEN, 1));
        g.f32("blk.0.attn_q.weight", new long[] {HIDDEN, q}, rowsInOrder(q == 8 ? Q_STORED : identity(q), HIDDEN));
        g.f32("blk.0.attn_k.weight", new long[] {HIDDEN, kv}, rowsInOrder(K_STORED, HIDDEN));
        if (bias) {
            g.f32("blk.0.attn_q.bias", new long[] {q}, rowsInOrder(q == 8 ? Q_STORED : identity(q), 1));
            g.f32("blk.0.attn_k.bias", new long[] {kv}, rowsInOrder(K_STORED, 1));
            g.f32("blk.0.attn_v.bias", new long[] {kv}, rowsInOrder(K_STORED, 1));
        }
        g.f32("blk.0.attn_v.weight", new long[] {HIDDEN, kv}, rowsInOrder(K_STORED, HIDDEN));
        if (qkNorm) {
            g.f32("blk.0.attn_q_norm.weight", new long[] {keyLength}, filled(keyLength, 1));
            g.f32("blk.0.attn_k_norm.weight", new long[] {keyLength}, filled(keyLength, 1));
        }
        g.f32("blk.0.attn_output.weight", new long[] {q, HIDDEN}, filled(q * HIDDEN, 0.25f));
        g.f32("blk.0.ffn_norm.weight", new long[] {HIDDEN}, filled(HIDDEN, 1));
        g.f32("blk.0.ffn_gate.weight", new long[] {HIDDEN, FFN}, filled(HIDDEN * FFN, 1));
        g.f32("blk.0.ffn_up.weight", new long[] {HIDDEN, FFN}, filled(HIDDEN * FFN, 2));
        g.f32("blk.0.ffn_down.weight", new long[] {FFN, HIDDEN}, filled(HIDDEN * FFN, 3));
        g.f32("output_norm.weight", new long[] {HIDDEN}, filled(HIDDEN, 1));
        if (output) g.f32("output.weight", new long[] {HIDDEN, VOCAB}, filled(HIDDEN * VOCAB, -1));
        return g;
    }

    static int[] identity(int n) {
        int[] r = new int[n];
        for (int i = 0; i < n; i++) r[i] = i;
        return r;
    }

    private Path write(GgufBuilder g) {
        return g.write(dir.resolve("model.gguf"));
    }

    @Test
    void nonFiniteOrNegativeHyperParametersAreRefused() {
        Object[][] cases = {
                {Float.NaN, 1e-6f, "rope_theta must be a finite number > 0, found NaN (GGUF key llama.rope.freq_base)"},
                {0f, 1e-6f, "rope_theta must be a finite number > 0, found 0.0 (GGUF key llama.rope.freq_base)"},
                {10000f, -1f, "rms_norm_eps must be a finite number >= 0, found -1.0 (GGUF key llama.attention.layer_norm_rms_epsilon)"},
                {10000f, Float.NaN, "rms_norm_eps must be a finite number >= 0, found NaN (GGUF key llama.attention.layer_norm_rms_epsilon)"},
        };
        for (Object[] c : cases) {
            Path file = write(model("llama", 2, 4, false, false, false, (float) c[0], (float) c[1]));
            FormatException e = assertThrows(FormatException.class, () -> GgufCheckpoint.open(file).close());
            assertEquals(file + ": inconsistent hyper-parameters: " + c[2], e.getMessage());
        }
    }

    @Test
    void llamaConfigNamesAndUnpermutedRows() throws Exception {
        Path file = write(model("llama", 2, 4, false, true, false));
        try (GgufCheckpoint c = GgufCheckpoint.open(file)) {
            assertEquals(new ModelConfig(ModelConfig.Family.LLAMA, "llama", VOCAB, HIDDEN, FFN, 1, 2, 1, 4, 128, 500000.0,
                    (double) 1e-6f, true, true, false, "silu", true, HIDDEN, 3, 4), c.config());
            assertEquals(java.util.List.of("model.embed_tokens.weight", "model.layers.0.input_layernorm.weight",
                    "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.k_proj.weight",
                    "model.layers.0.self_attn.q_proj.bias", "model.layers.0.self_attn.k_proj.bias",
                    "model.layers.0.self_attn.v_proj.bias", "model.layers.0.self_attn.v_proj.weight",
                    "model.layers.0.self_attn.o_proj.weight", "model.layers.0.post_attention_layernorm.weight",
                    "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
                    "model.layers.0.mlp.down_proj.weight", "model.norm.weight"), java.util.List.copyOf(c.tensors().keySet()));
            TensorInfo q = c.tensors().get("model.layers.0.self_attn.q_proj.weight");
            assertEquals("F32", q.dtype());
            assertArrayEquals(new long[] {8, HIDDEN}, q.shape());
            assertArrayEquals(new long[] {FFN, HIDDEN}, c.tensors().get("model.layers.0.mlp.gate_proj.weight").shape());
            assertArrayEquals(new long[] {VOCAB, HIDDEN}, c.tensors().get("model.embed_tokens.weight").shape());

            assertArrayEquals(rowsInOrder(identity(8), HIDDEN), c.floats("model.layers.0.self_attn.q_proj.weight"));
            assertArrayEquals(rowsInOrder(identity(4), HIDDEN), c.floats("model.layers.0.self_attn.k_proj.weight"));
            assertArrayEquals(rowsInOrder(identity(8), 1), c.floats("model.layers.0.self_attn.q_proj.bias"));
            assertArrayEquals(rowsInOrder(identity(4), 1), c.floats("model.layers.0.self_attn.k_proj.bias"));
            // v is never permuted by the converter
            assertArrayEquals(rowsInOrder(K_STORED, HIDDEN), c.floats("model.layers.0.self_attn.v_proj.weight"));
            assertArrayEquals(filled(FFN * HIDDEN, 3), c.floats("model.layers.0.mlp.down_proj.weight"));
            assertEquals("model.layers.0.self_attn.q_proj.weight", GgufCheckpoint.hfName("blk.0.attn_q.weight"));
            assertEquals("blk.0.ffn_down.weight", c.ggufName("model.layers.0.mlp.down_proj.weight"));
            for (String g : new String[] {"blk.0.attn_q.weight", "blk.12.attn_k_norm.weight", "blk.3.attn_v.bias", "token_embd.weight",
                    "output.weight", "output_norm.weight", "blk.29.ffn_down.weight"})
                assertEquals(g, GgufCheckpoint.toGgufName(GgufCheckpoint.hfName(g)), "round trip of " + g);
            assertEquals(null, GgufCheckpoint.toGgufName("model.layers.0.mlp.experts.0.weight"));
            assertThrows(IllegalArgumentException.class, () -> c.floats("lm_head.weight"));

            String want = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
            assertEquals(want, c.sha256());
            assertEquals(file.toString(), c.source());
        }
    }

    @Test
    void qwen2IsNotPermutedAndHasBiasAndUntiedHead() {
        try (GgufCheckpoint c = GgufCheckpoint.open(write(model("qwen2", 2, 4, true, true, false)))) {
            ModelConfig cfg = c.config();
            assertEquals("qwen2", cfg.modelType());
            assertTrue(cfg.attentionBias());
            assertFalse(cfg.tieWordEmbeddings());
            assertFalse(cfg.qkNorm());
            assertTrue(c.tensors().containsKey("lm_head.weight"));
            assertArrayEquals(rowsInOrder(Q_STORED, HIDDEN), c.floats("model.layers.0.self_attn.q_proj.weight"));
            assertArrayEquals(rowsInOrder(K_STORED, 1), c.floats("model.layers.0.self_attn.k_proj.bias"));
        }
    }

    @Test
    void qwen3HeadDimFromKeyLengthAndQkNorm() {
        try (GgufCheckpoint c = GgufCheckpoint.open(write(model("qwen3", 4, 4, false, false, true)))) {
            ModelConfig cfg = c.config();
            assertEquals(4, cfg.headDim());
            assertEquals(16, cfg.qDim());
            assertTrue(cfg.qkNorm());
            assertFalse(cfg.attentionBias());
            assertArrayEquals(new long[] {4}, c.tensors().get("model.layers.0.self_attn.q_norm.weight").shape());
            assertArrayEquals(rowsInOrder(identity(16), HIDDEN), c.floats("model.layers.0.self_attn.q_proj.weight"));
        }
    }

    private void rejects(GgufBuilder g, String... fragments) {
        Path file = write(g);
        FormatException e = assertThrows(FormatException.class, () -> GgufCheckpoint.open(file).close());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
    }

    @Test
    void refusesWhatItCannotMap() {
        GgufBuilder g = model("llama", 2, 4, false, false, false);
        g.kvString("general.architecture", "gpt2");
        rejects(g, "duplicate metadata key 'general.architecture'");

        g = new GgufBuilder();
        g.kvString("general.architecture", "gpt2");
        rejects(g, "architecture 'gpt2' is not supported", "llama", "qwen2", "qwen3");

        g = new GgufBuilder();
        g.kvString("general.architecture", "llama");
        g.f32("token_embd.weight", new long[] {HIDDEN, VOCAB}, filled(HIDDEN * VOCAB, 0));
        rejects(g, "required metadata key llama.embedding_length is missing");

        g = model("llama", 2, 4, false, false, false);
        g.kvString("llama.rope.scaling.type", "yarn");
        rejects(g, "llama.rope.scaling.type = 'yarn' is not supported");

        g = model("llama", 2, 4, false, false, false);
        g.kvString("llama.rope.scaling.type", "linear");
        g.kvF32("llama.rope.scaling.factor", 4f);
        rejects(g, "llama.rope.scaling.factor = 4.0: rope scaling is not supported");

        g = model("llama", 2, 4, false, false, false);
        g.f32("rope_freqs.weight", new long[] {2}, new float[] {1, 1});
        rejects(g, "rope_freqs.weight", "Llama-3-style rope scaling");

        g = model("llama", 2, 4, false, false, false);
        g.f32("blk.0.ffn_gate_exps.weight", new long[] {2}, new float[] {1, 1});
        rejects(g, "tensor 'blk.0.ffn_gate_exps.weight' has no Hugging Face counterpart in a llama model");

        g = model("llama", 2, 4, false, false, false);
        g.kvU32("llama.attention.key_length", 8); // q would then need 16 rows, the file has 8
        rejects(g, "tensor 'blk.0.attn_q.weight' has dims [8, 8], expected [8, 16]");

        g = model("llama", 2, 4, false, false, false);
        g.kv("llama.expert_count", 4, o -> o.u32(8));
        rejects(g, "mixture-of-experts");
    }

    // ---- the real default model, against gguf.GGUFReader and transformers' GGUF loader ----

    static Path defaultModel() {
        Path p = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        Assumptions.assumeTrue(Files.exists(p), "default model " + p + " is absent; run ./lowbit setup");
        return p;
    }

    static JsonNode reference() throws Exception {
        try (InputStream in = GgufCheckpointTest.class.getResourceAsStream("/gguf/smollm2_reference.json")) {
            return new ObjectMapper().readTree(in);
        }
    }

    /** Must match make_gguf_fixtures.py's checksum: order-sensitive weighted sum in double. */
    static double checksum(float[] x) {
        double s = 0;
        for (int i = 0; i < x.length; i++) s += x[i] * ((i % 1009 + 1) / 1009.0);
        return s;
    }

    @Test
    void defaultModelConfigMatchesGgufReaderAndTransformers() throws Exception {
        JsonNode ref = reference();
        JsonNode g = ref.get("gguf"), hf = ref.get("hf_config");
        try (GgufCheckpoint c = GgufCheckpoint.open(defaultModel())) {
            ModelConfig cfg = c.config();
            assertEquals(g.get("architecture").asText(), cfg.modelType());
            assertEquals(hf.get("model_type").asText(), cfg.modelType());
            assertEquals(ModelConfig.Family.LLAMA, cfg.family());
            assertEquals(g.get("embedding_length").asInt(), cfg.hiddenSize());
            assertEquals(hf.get("hidden_size").asInt(), cfg.hiddenSize());
            assertEquals(hf.get("intermediate_size").asInt(), cfg.intermediateSize());
            assertEquals(g.get("feed_forward_length").asInt(), cfg.intermediateSize());
            assertEquals(hf.get("num_hidden_layers").asInt(), cfg.numLayers());
            assertEquals(g.get("block_count").asInt(), cfg.numLayers());
            assertEquals(hf.get("num_attention_heads").asInt(), cfg.numHeads());
            assertEquals(hf.get("num_key_value_heads").asInt(), cfg.numKvHeads());
            assertEquals(g.get("head_count_kv").asInt(), cfg.numKvHeads());
            assertEquals(hf.get("head_dim").asInt(), cfg.headDim());
            assertEquals(hf.get("max_position_embeddings").asInt(), cfg.maxPositions());
            assertEquals(hf.get("rope_theta").asDouble(), cfg.ropeTheta());
            assertEquals(g.get("rms_eps").asDouble(), cfg.normEps());
            assertEquals(hf.get("rms_norm_eps").asDouble(), cfg.normEps());
            assertEquals(hf.get("vocab_size").asInt(), cfg.vocabSize());
            assertEquals(g.get("n_tokens").asInt(), cfg.vocabSize());
            assertEquals(hf.get("tie_word_embeddings").asBoolean(), cfg.tieWordEmbeddings());
            assertEquals(!g.get("has_output").asBoolean(), cfg.tieWordEmbeddings());
            assertEquals(hf.get("bos_token_id").asInt(), cfg.bosTokenId());
            assertEquals(hf.get("eos_token_id").asInt(), cfg.eosTokenId());
            assertFalse(cfg.attentionBias());
            assertFalse(cfg.qkNorm());
            assertEquals("silu", cfg.hiddenAct());
            assertEquals(cfg.hiddenSize(), cfg.wordEmbedProjDim());
            assertEquals(ref.get("tensors").size(), c.tensors().size());
            assertEquals("Q4_1", c.tensors().get("model.layers.0.self_attn.q_proj.weight").dtype());
            assertEquals("Q8_0", c.tensors().get("model.embed_tokens.weight").dtype());
        }
    }

    @Test
    void defaultModelTensorsEqualTransformersGgufLoading() throws Exception {
        JsonNode tensors = reference().get("hf_tensors");
        try (GgufCheckpoint c = GgufCheckpoint.open(defaultModel())) {
            for (Iterator<Map.Entry<String, JsonNode>> it = tensors.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                String name = e.getKey();
                JsonNode want = e.getValue();
                long[] shape = c.tensors().get(name).shape();
                assertEquals(want.get("shape").size(), shape.length, name);
                for (int i = 0; i < shape.length; i++) assertEquals(want.get("shape").get(i).asLong(), shape[i], name);
                float[] x = c.floats(name);
                int cols = (int) shape[shape.length - 1];
                if (want.has("rows")) {
                    for (Iterator<Map.Entry<String, JsonNode>> rows = want.get("rows").fields(); rows.hasNext(); ) {
                        Map.Entry<String, JsonNode> row = rows.next();
                        int r = Integer.parseInt(row.getKey());
                        float[] expected = new float[cols];
                        for (int j = 0; j < cols; j++) expected[j] = (float) row.getValue().get(j).asDouble();
                        assertArrayEquals(expected, java.util.Arrays.copyOfRange(x, r * cols, (r + 1) * cols), name + " row " + r);
                    }
                } else {
                    float[] expected = new float[x.length];
                    for (int j = 0; j < x.length; j++) expected[j] = (float) want.get("values").get(j).asDouble();
                    assertArrayEquals(expected, x, name);
                }
                double sum = want.get("checksum").asDouble();
                assertEquals(sum, checksum(x), 1e-9 * Math.max(1, Math.abs(sum)), name + " checksum");
            }
        }
    }

    @Test
    void wholeDefaultModelDequantizesToTheRightElementCounts() throws Exception {
        JsonNode ref = reference().get("tensors");
        try (GgufFile f = GgufFile.open(defaultModel())) {
            assertEquals(ref.size(), f.tensors().size());
            long start = System.nanoTime();
            long total = 0;
            for (GgufTensor t : f.tensors()) {
                JsonNode want = ref.get(t.name());
                assertNotNull(want, t.name());
                assertEquals(want.get("type").asText(), t.type().name(), t.name());
                float[] x = f.dequantize(t.name());
                assertEquals(want.get("elements").asLong(), x.length, t.name());
                total += x.length;
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            System.out.printf("dequantized %d tensors, %d weights in %.2f s%n", f.tensors().size(), total, seconds);
        }
    }
}
