package lowbit.checkpoint.hf;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.TinyHf;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;

/**
 * A tiny random Llama (hidden 64, 4 heads, 2 KV heads, MLP 128, vocabulary 32, 2 layers: dimensions the GPTQ and AWQ
 * packings tile) quantized by RTN into our directory, for export tests.
 */
public final class TinyQuantized {
    private TinyQuantized() {}

    private static Path source(Path tmp) throws Exception {
        String config = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
                + " \"num_hidden_layers\": 2, \"intermediate_size\": 128, \"vocab_size\": 32, \"tie_word_embeddings\": true}";
        Random r = new Random(15);
        Map<String, TinyHf.Tensor> t = new LinkedHashMap<>();
        t.put("model.embed_tokens.weight", tensor(r, 32, 64));
        for (int i = 0; i < 2; i++) {
            String p = "model.layers." + i + ".";
            t.put(p + "input_layernorm.weight", norm(r));
            t.put(p + "self_attn.q_proj.weight", tensor(r, 64, 64));
            t.put(p + "self_attn.k_proj.weight", tensor(r, 32, 64));
            t.put(p + "self_attn.v_proj.weight", tensor(r, 32, 64));
            t.put(p + "self_attn.o_proj.weight", tensor(r, 64, 64));
            t.put(p + "post_attention_layernorm.weight", norm(r));
            t.put(p + "mlp.gate_proj.weight", tensor(r, 128, 64));
            t.put(p + "mlp.up_proj.weight", tensor(r, 128, 64));
            t.put(p + "mlp.down_proj.weight", tensor(r, 64, 128));
        }
        t.put("model.norm.weight", norm(r));
        return TinyHf.write(tmp.resolve("src"), config, t);
    }

    private static TinyHf.Tensor tensor(Random r, int rows, int cols) {
        float[] v = new float[rows * cols];
        for (int i = 0; i < v.length; i++) v[i] = (float) (r.nextGaussian() * 0.2);
        return new TinyHf.Tensor(new long[] {rows, cols}, v);
    }

    private static TinyHf.Tensor norm(Random r) {
        float[] v = new float[64];
        for (int i = 0; i < v.length; i++) v[i] = 1 + (float) (r.nextGaussian() * 0.1);
        return new TinyHf.Tensor(new long[] {64}, v);
    }

    /**
     * {@code tmp}/q: our quantized directory of the tiny model (source in {@code tmp}/src) on {@code grid}, each weight
     * passed through {@code edit}, the manifest's spec {@code spec}.
     */
    public static Path write(Path tmp, QuantConfig grid, String spec, UnaryOperator<QuantizedWeight> edit) throws Exception {
        Path src = source(tmp), out = tmp.resolve("q");
        try (Checkpoint c = Checkpoints.open(src); Transformer m = Checkpoints.load(c, 1)) {
            QuantizedModel qm = QuantizedModel.rtn(m, grid);
            Map<String, QuantizedWeight> edited = new LinkedHashMap<>();
            qm.weights().forEach((k, v) -> edited.put(k, edit.apply((QuantizedWeight) v)));
            qm = new QuantizedModel(qm.method(), qm.config(), qm.options(), edited, qm.layers(), qm.timings());
            QuantizedModelFiles.write(out, c, src.toString(), m, qm, Map.of("spec", spec));
        }
        return out;
    }
}
