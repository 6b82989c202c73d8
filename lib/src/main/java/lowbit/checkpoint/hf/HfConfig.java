package lowbit.checkpoint.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;
import lowbit.model.ModelConfig;
import lowbit.model.ModelConfig.Family;

/**
 * Reads a Hugging Face config.json into a {@link ModelConfig}. Keys a file leaves out take the defaults
 * of the matching transformers config class (LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config,
 * OPTConfig), so the model we build is the one transformers would build from the same file.
 * Options our runtime does not implement (RoPE scaling, sliding windows, MLP biases, ...) are refused
 * rather than silently ignored.
 */
public final class HfConfig {
    public static final List<String> SUPPORTED = List.of("llama", "mistral", "qwen2", "qwen3", "opt");

    private static final Map<String, String> ARCHITECTURES = Map.of(
            "LlamaForCausalLM", "llama",
            "MistralForCausalLM", "mistral",
            "Qwen2ForCausalLM", "qwen2",
            "Qwen3ForCausalLM", "qwen3",
            "OPTForCausalLM", "opt");

    private static final ObjectMapper JSON = new ObjectMapper();

    private HfConfig() {}

    public static ModelConfig read(Path configJson) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(configJson));
        } catch (NoSuchFileException e) {
            throw new FormatException(configJson, "config.json not found");
        } catch (JsonProcessingException e) {
            throw new FormatException(configJson, "not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new FormatException(configJson, "cannot read: " + e, e);
        }
        if (root == null || !root.isObject()) throw new FormatException(configJson, "config.json must hold a JSON object");
        return parse(root, configJson);
    }

    public static ModelConfig parse(JsonNode root, Path file) {
        Keys k = new Keys(root, file);
        String type = modelType(k);
        try {
            return type.equals("opt") ? opt(k) : llamaFamily(k, type);
        } catch (IllegalArgumentException e) {
            throw new FormatException(file, e.getMessage(), e);
        }
    }

    private static String modelType(Keys k) {
        String type = k.string("model_type", null);
        JsonNode archs = k.root.get("architectures");
        String arch = archs != null && archs.isArray() && !archs.isEmpty() ? archs.get(0).asText() : null;
        if (type == null && arch != null) type = ARCHITECTURES.get(arch);
        if (type == null || !SUPPORTED.contains(type)) {
            String named = type != null ? type : arch != null ? arch : "(no model_type or architectures)";
            throw new FormatException(k.file, "unsupported architecture " + named + " in " + k.file + " (supported: "
                    + String.join(", ", SUPPORTED) + ")");
        }
        return type;
    }

    private static ModelConfig llamaFamily(Keys k, String type) {
        int hidden = k.positiveInt("hidden_size");
        int heads = k.positiveInt("num_attention_heads");
        int layers = k.requiredInt("num_hidden_layers");
        int intermediate = k.requiredInt("intermediate_size");
        int vocab = k.requiredInt("vocab_size");

        // class defaults when the key is absent; an explicit null means "same as num_attention_heads"
        int kvAbsent = switch (type) {
            case "mistral" -> 8;
            case "qwen2", "qwen3" -> 32;
            default -> heads;
        };
        int kvHeads = k.has("num_key_value_heads") ? k.integer("num_key_value_heads", heads) : kvAbsent;
        int headDim = k.has("head_dim")
                ? k.integer("head_dim", hidden / heads)
                : type.equals("qwen3") ? 128 : hidden / heads;
        int maxPositions = k.integer("max_position_embeddings", switch (type) {
            case "mistral" -> 4096 * 32;
            case "qwen2", "qwen3" -> 32768;
            default -> 2048;
        });
        boolean hasBosEos = type.equals("llama") || type.equals("mistral");

        String act = k.string("hidden_act", "silu");
        if (!act.equals("silu"))
            throw new FormatException(k.file, "hidden_act " + act + " is not supported for " + type + " (expected silu)");
        if (k.bool("mlp_bias", false))
            throw new FormatException(k.file, "mlp_bias true is not supported (no MLP biases in the Llama family runtime)");
        if ((type.equals("qwen2") || type.equals("qwen3")) && k.bool("use_sliding_window", false))
            throw new FormatException(k.file, "use_sliding_window true is not supported (sliding-window attention)");

        // Qwen2 hard-wires q/k/v biases; Llama and Qwen3 read attention_bias (which also puts a bias on o_proj); Mistral has none
        boolean attentionBias = switch (type) {
            case "qwen2" -> true;
            case "llama", "qwen3" -> k.bool("attention_bias", false);
            default -> false;
        };
        return new ModelConfig(Family.LLAMA, type, vocab, hidden, intermediate, layers, heads, kvHeads, headDim,
                maxPositions, ropeTheta(k), k.number("rms_norm_eps", 1e-6), k.bool("tie_word_embeddings", false),
                attentionBias, type.equals("qwen3"), act, true, hidden,
                k.tokenId("bos_token_id", hasBosEos ? 1 : -1), k.tokenId("eos_token_id", hasBosEos ? 2 : -1));
    }

    private static double ropeTheta(Keys k) {
        double theta = k.number("rope_theta", 10000.0);
        JsonNode scaling = k.root.get("rope_scaling");
        if (scaling != null && !scaling.isNull()) {
            String kind = ropeType(scaling);
            if (!kind.equals("default"))
                throw new FormatException(k.file, "rope_scaling of type " + kind + " is not supported yet (key rope_scaling; only null or default)");
        }
        JsonNode params = k.root.get("rope_parameters");
        if (params != null && !params.isNull()) {
            String kind = ropeType(params);
            if (!kind.equals("default"))
                throw new FormatException(k.file, "rope_parameters of type " + kind + " is not supported yet (key rope_parameters; only default)");
            JsonNode t = params.get("rope_theta");
            if (t != null && !t.isNull()) {
                if (!t.isNumber()) throw new FormatException(k.file, "rope_parameters.rope_theta must be a number, found " + t);
                theta = t.doubleValue();
            }
        }
        return theta;
    }

    private static String ropeType(JsonNode node) {
        if (!node.isObject()) return node.toString();
        JsonNode t = node.has("rope_type") ? node.get("rope_type") : node.get("type");
        return t == null || t.isNull() ? "default" : t.asText();
    }

    private static ModelConfig opt(Keys k) {
        int hidden = k.positiveInt("hidden_size");
        int heads = k.positiveInt("num_attention_heads");
        int layers = k.requiredInt("num_hidden_layers");
        int ffn = k.requiredInt("ffn_dim");
        int vocab = k.requiredInt("vocab_size");
        if (hidden % heads != 0)
            throw new FormatException(k.file, "hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        String act = k.string("activation_function", "relu");
        if (!act.equals("relu") && !act.equals("gelu"))
            throw new FormatException(k.file, "activation_function " + act + " is not supported for opt (relu or gelu)");
        if (!k.bool("layer_norm_elementwise_affine", true))
            throw new FormatException(k.file, "layer_norm_elementwise_affine false is not supported");
        if (k.bool("_remove_final_layer_norm", false))
            throw new FormatException(k.file, "_remove_final_layer_norm true is not supported");
        // OPT has learned positions, no RoPE: ropeTheta 0 marks it unused; LayerNorm eps is torch's default
        return new ModelConfig(Family.OPT, "opt", vocab, hidden, ffn, layers, heads, heads, hidden / heads,
                k.integer("max_position_embeddings", 2048), 0.0, 1e-5, k.bool("tie_word_embeddings", true),
                k.bool("enable_bias", true), false, act, k.bool("do_layer_norm_before", true),
                k.integer("word_embed_proj_dim", hidden), k.tokenId("bos_token_id", 2), k.tokenId("eos_token_id", 2));
    }

    /** Typed access to config keys; absent or null keys take the given default. */
    private record Keys(JsonNode root, Path file) {
        boolean has(String key) {
            return root.has(key);
        }

        private JsonNode value(String key) {
            JsonNode v = root.get(key);
            return v == null || v.isNull() ? null : v;
        }

        int requiredInt(String key) {
            if (value(key) == null) throw new FormatException(file, "missing required key \"" + key + "\"");
            return integer(key, 0);
        }

        /** A required size the config divides by: checked here, before it is divided by. */
        int positiveInt(String key) {
            int v = requiredInt(key);
            if (v <= 0) throw new FormatException(file, "\"" + key + "\" must be >= 1, found " + v);
            return v;
        }

        int integer(String key, int fallback) {
            JsonNode v = value(key);
            if (v == null) return fallback;
            if (!v.isIntegralNumber() || !v.canConvertToInt())
                throw new FormatException(file, "\"" + key + "\" must be an integer, found " + v);
            return v.intValue();
        }

        double number(String key, double fallback) {
            JsonNode v = value(key);
            if (v == null) return fallback;
            if (!v.isNumber()) throw new FormatException(file, "\"" + key + "\" must be a number, found " + v);
            return v.doubleValue();
        }

        boolean bool(String key, boolean fallback) {
            JsonNode v = value(key);
            if (v == null) return fallback;
            if (!v.isBoolean()) throw new FormatException(file, "\"" + key + "\" must be true or false, found " + v);
            return v.booleanValue();
        }

        String string(String key, String fallback) {
            JsonNode v = value(key);
            if (v == null) return fallback;
            if (!v.isTextual()) throw new FormatException(file, "\"" + key + "\" must be a string, found " + v);
            return v.textValue();
        }

        /** A token id; transformers allows a list for eos_token_id, of which the first is taken. */
        int tokenId(String key, int fallback) {
            if (!root.has(key)) return fallback;
            JsonNode v = value(key);
            if (v == null) return -1;
            if (v.isArray()) {
                if (v.isEmpty()) return -1;
                v = v.get(0);
            }
            if (!v.isIntegralNumber() || !v.canConvertToInt())
                throw new FormatException(file, "\"" + key + "\" must be a token id, found " + v);
            return v.intValue();
        }
    }
}
