package lowbit.checkpoint.hf;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.model.ModelConfig;
import lowbit.model.ModelConfig.Family;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Expected defaults are those of transformers' config classes (checked with transformers 5.x, see comments). */
class HfConfigTest {
    @TempDir Path tmp;

    static final String SHAPE = "\"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
            + "\"intermediate_size\": 128, \"vocab_size\": 100";

    Path config(String body) throws IOException {
        return Files.writeString(tmp.resolve("config.json"), "{" + body + "}");
    }

    ModelConfig read(String body) throws IOException {
        return HfConfig.read(config(body));
    }

    FormatException refused(String body, String... fragments) throws IOException {
        Path file = config(body);
        FormatException e = assertThrows(FormatException.class, () -> HfConfig.read(file));
        assertEquals(file, e.file());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        return e;
    }

    @Test
    void llamaDefaults() throws IOException {
        // LlamaConfig(hidden 64, heads 4): kv 4, head_dim 16, untied, theta 1e4, eps 1e-6, bos 1, eos 2, max pos 2048
        ModelConfig c = read("\"model_type\": \"llama\", " + SHAPE);
        assertEquals(Family.LLAMA, c.family());
        assertEquals("llama", c.modelType());
        assertEquals(4, c.numKvHeads());
        assertEquals(16, c.headDim());
        assertFalse(c.tieWordEmbeddings());
        assertEquals(10000.0, c.ropeTheta());
        assertEquals(1e-6, c.normEps());
        assertEquals(2048, c.maxPositions());
        assertEquals(1, c.bosTokenId());
        assertEquals(2, c.eosTokenId());
        assertFalse(c.attentionBias());
        assertFalse(c.qkNorm());
        assertEquals("silu", c.hiddenAct());
        assertTrue(c.normBefore());
        assertEquals(64, c.wordEmbedProjDim());
        assertEquals(128, c.intermediateSize());
        assertEquals(100, c.vocabSize());
        assertEquals(2, c.numLayers());
    }

    @Test
    void smolLmStyleLlama() throws IOException {
        ModelConfig c = read("\"architectures\": [\"LlamaForCausalLM\"], " + SHAPE + ", \"num_key_value_heads\": 2, "
                + "\"rope_theta\": 100000, \"rms_norm_eps\": 1e-5, \"tie_word_embeddings\": true, \"rope_scaling\": null, "
                + "\"eos_token_id\": [7, 8], \"bos_token_id\": null, \"attention_bias\": true, \"max_position_embeddings\": 8192");
        assertEquals("llama", c.modelType());
        assertEquals(2, c.numKvHeads());
        assertEquals(32, c.kvDim());
        assertEquals(100000.0, c.ropeTheta());
        assertEquals(1e-5, c.normEps());
        assertTrue(c.tieWordEmbeddings());
        assertTrue(c.attentionBias());
        assertEquals(-1, c.bosTokenId());
        assertEquals(7, c.eosTokenId());
        assertEquals(8192, c.maxPositions());
    }

    @Test
    void mistralAbsentKvHeadsIsEight() throws IOException {
        // MistralConfig's num_key_value_heads defaults to 8 (not to num_attention_heads); max positions 4096*32
        ModelConfig c = read("\"model_type\": \"mistral\", \"hidden_size\": 64, \"num_attention_heads\": 16, "
                + "\"num_hidden_layers\": 2, \"intermediate_size\": 128, \"vocab_size\": 100");
        assertEquals(8, c.numKvHeads());
        assertEquals(4, c.headDim());
        assertEquals(131072, c.maxPositions());
        assertFalse(c.attentionBias());
    }

    @Test
    void qwen2HasQkvBiasAndNoBosEos() throws IOException {
        // explicit null num_key_value_heads falls back to num_attention_heads
        ModelConfig c = read("\"model_type\": \"qwen2\", " + SHAPE + ", \"num_key_value_heads\": null, \"rope_theta\": 1000000.0");
        assertTrue(c.attentionBias());
        assertFalse(c.qkNorm());
        assertEquals(4, c.numKvHeads());
        assertEquals(-1, c.bosTokenId());
        assertEquals(-1, c.eosTokenId());
        assertEquals(32768, c.maxPositions());
        assertEquals(1e6, c.ropeTheta());
    }

    @Test
    void qwen3HeadDimDefaultsTo128AndHasQkNorm() throws IOException {
        ModelConfig c = read("\"model_type\": \"qwen3\", " + SHAPE + ", \"num_key_value_heads\": 2");
        assertEquals(128, c.headDim());
        assertEquals(512, c.qDim());
        assertTrue(c.qkNorm());
        assertFalse(c.attentionBias());
        ModelConfig explicit = read("\"model_type\": \"qwen3\", " + SHAPE + ", \"num_key_value_heads\": 2, \"head_dim\": 32, "
                + "\"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 1000000}");
        assertEquals(32, explicit.headDim());
        assertEquals(1e6, explicit.ropeTheta());
    }

    @Test
    void realOpt125mConfig() {
        ModelConfig c = HfConfig.read(DataDir.require("models/opt-125m-tokenizer/config.json"));
        assertEquals(Family.OPT, c.family());
        assertEquals("opt", c.modelType());
        assertEquals(768, c.hiddenSize());
        assertEquals(3072, c.intermediateSize());
        assertEquals(12, c.numLayers());
        assertEquals(12, c.numHeads());
        assertEquals(12, c.numKvHeads());
        assertEquals(64, c.headDim());
        assertEquals(50272, c.vocabSize());
        assertEquals(2048, c.maxPositions());
        assertEquals("relu", c.hiddenAct());
        assertTrue(c.normBefore());
        assertTrue(c.attentionBias());
        assertTrue(c.tieWordEmbeddings()); // OPTConfig default: the key is absent from opt-125m's config
        assertEquals(768, c.wordEmbedProjDim());
        assertEquals(1e-5, c.normEps());
        assertEquals(2, c.bosTokenId());
        assertEquals(2, c.eosTokenId());
    }

    @Test
    void opt350mStyle() throws IOException {
        ModelConfig c = read("\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
                + "\"ffn_dim\": 256, \"vocab_size\": 100, \"do_layer_norm_before\": false, \"word_embed_proj_dim\": 32, "
                + "\"activation_function\": \"gelu\", \"enable_bias\": false");
        assertFalse(c.normBefore());
        assertEquals(32, c.wordEmbedProjDim());
        assertEquals("gelu", c.hiddenAct());
        assertFalse(c.attentionBias());
        assertEquals(256, c.intermediateSize());
    }

    @Test
    void refusesUnsupportedArchitecture() throws IOException {
        FormatException e = refused("\"model_type\": \"gpt2\", " + SHAPE, "unsupported architecture gpt2", "supported: llama, mistral, qwen2, qwen3, opt");
        assertTrue(e.getMessage().contains("config.json"));
        refused("\"architectures\": [\"GPTNeoXForCausalLM\"], " + SHAPE, "unsupported architecture GPTNeoXForCausalLM");
        refused(SHAPE, "unsupported architecture");
    }

    @Test
    void refusesMissingRequiredKeys() throws IOException {
        refused("\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 100",
                "missing required key \"intermediate_size\"");
        refused("\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, \"vocab_size\": 100",
                "missing required key \"ffn_dim\"");
        refused("\"model_type\": \"llama\", \"hidden_size\": \"64\", \"num_attention_heads\": 4", "\"hidden_size\" must be an integer");
    }

    @Test
    void refusesRopeScalingNamingTheKey() throws IOException {
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8.0}",
                "rope_scaling", "llama3", "not supported");
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"rope_scaling\": {\"type\": \"linear\", \"factor\": 2.0}", "rope_scaling", "linear");
        refused("\"model_type\": \"qwen2\", " + SHAPE + ", \"rope_scaling\": {\"type\": \"yarn\", \"factor\": 4.0}", "rope_scaling", "yarn");
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"rope_parameters\": {\"rope_type\": \"dynamic\", \"factor\": 2.0}",
                "rope_parameters", "dynamic");
    }

    @Test
    void refusesWhatTheRuntimeCannotDo() throws IOException {
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"hidden_act\": \"gelu\"", "hidden_act gelu");
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"mlp_bias\": true", "mlp_bias");
        refused("\"model_type\": \"qwen2\", " + SHAPE + ", \"use_sliding_window\": true", "use_sliding_window");
        refused("\"model_type\": \"opt\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_hidden_layers\": 2, "
                + "\"ffn_dim\": 256, \"vocab_size\": 100, \"activation_function\": \"silu\"", "activation_function silu");
        refused("\"model_type\": \"llama\", " + SHAPE + ", \"num_key_value_heads\": 3", "num_key_value_heads 3");
    }

    @Test
    void refusesBrokenJson() throws IOException {
        Path file = Files.writeString(tmp.resolve("config.json"), "{\"model_type\": ");
        FormatException e = assertThrows(FormatException.class, () -> HfConfig.read(file));
        assertTrue(e.getMessage().contains("not valid JSON"), e.getMessage());
        FormatException missing = assertThrows(FormatException.class, () -> HfConfig.read(tmp.resolve("none/config.json")));
        assertTrue(missing.getMessage().contains("not found"), missing.getMessage());
    }
}
