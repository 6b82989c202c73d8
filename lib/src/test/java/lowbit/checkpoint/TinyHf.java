package lowbit.checkpoint;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.io.safetensors.SafetensorsBuilder;

/**
 * A complete Hugging Face Llama checkpoint, byte-built: hidden 4, two heads of 2, MLP 8, vocabulary 3, tied
 * embeddings. Tests take {@link #tensors}, change or add what they corrupt, and {@link #write} it.
 */
public final class TinyHf {
    private TinyHf() {}

    public record Tensor(long[] shape, float[] values) {}

    /** config.json with num_hidden_layers {@code layers} and the extra keys appended (", \"rope_theta\": 0", ...). */
    public static String config(int layers, String extra) {
        return "{\"model_type\": \"llama\", \"hidden_size\": 4, \"num_attention_heads\": 2, \"num_hidden_layers\": " + layers
                + ", \"intermediate_size\": 8, \"vocab_size\": 3, \"tie_word_embeddings\": true" + extra + "}";
    }

    /** The tensors of {@code layers} blocks, in file order. */
    public static Map<String, Tensor> tensors(int layers) {
        Map<String, Tensor> t = new LinkedHashMap<>();
        t.put("model.embed_tokens.weight", new Tensor(new long[] {3, 4}, values(12, 1)));
        for (int i = 0; i < layers; i++) {
            String p = "model.layers." + i + ".";
            t.put(p + "input_layernorm.weight", new Tensor(new long[] {4}, new float[] {1, 1, 1, 1}));
            for (String m : new String[] {"q_proj", "k_proj", "v_proj", "o_proj"})
                t.put(p + "self_attn." + m + ".weight", new Tensor(new long[] {4, 4}, values(16, i + m.charAt(0))));
            t.put(p + "post_attention_layernorm.weight", new Tensor(new long[] {4}, new float[] {1, 1, 1, 1}));
            t.put(p + "mlp.gate_proj.weight", new Tensor(new long[] {8, 4}, values(32, i + 3)));
            t.put(p + "mlp.up_proj.weight", new Tensor(new long[] {8, 4}, values(32, i + 4)));
            t.put(p + "mlp.down_proj.weight", new Tensor(new long[] {4, 8}, values(32, i + 5)));
        }
        t.put("model.norm.weight", new Tensor(new long[] {4}, new float[] {1, 1, 1, 1}));
        return t;
    }

    public static Path write(Path dir, String configJson, Map<String, Tensor> tensors) throws IOException {
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("config.json"), configJson);
        SafetensorsBuilder b = new SafetensorsBuilder();
        tensors.forEach((name, t) -> b.f32(name, t.shape(), t.values()));
        b.write(dir.resolve("model.safetensors"));
        return dir;
    }

    public static Path write(Path dir, String configJson, int layersInFile) throws IOException {
        return write(dir, configJson, tensors(layersInFile));
    }

    /** Small distinct values: element j is ((7 j + seed) mod 11 - 5) / 10. */
    public static float[] values(int n, int seed) {
        float[] v = new float[n];
        for (int j = 0; j < n; j++) v[j] = ((j * 7 + seed) % 11 - 5) / 10f;
        return v;
    }
}
