package lowbit.checkpoint;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.tokenizer.Tokenizer;

/** A random Llama-family checkpoint held in memory, for tests of the runtime's own properties and of its users. */
public final class MemoryCheckpoint implements Checkpoint {
    private final ModelConfig config;
    private final Map<String, TensorInfo> infos = new LinkedHashMap<>();
    private final Map<String, float[]> data = new LinkedHashMap<>();

    public MemoryCheckpoint(ModelConfig config, long seed) {
        this.config = config;
        SplittableRandom rnd = new SplittableRandom(seed);
        int h = config.hiddenSize(), ff = config.intermediateSize();
        put("model.embed_tokens.weight", rnd, 0, 1, config.vocabSize(), h);
        for (int i = 0; i < config.numLayers(); i++) {
            String p = "model.layers." + i + ".";
            put(p + "input_layernorm.weight", rnd, 1, 0.1, h);
            put(p + "self_attn.q_proj.weight", rnd, 0, 0.2, config.qDim(), h);
            put(p + "self_attn.k_proj.weight", rnd, 0, 0.2, config.kvDim(), h);
            put(p + "self_attn.v_proj.weight", rnd, 0, 0.2, config.kvDim(), h);
            put(p + "self_attn.o_proj.weight", rnd, 0, 0.2, h, config.qDim());
            put(p + "post_attention_layernorm.weight", rnd, 1, 0.1, h);
            put(p + "mlp.gate_proj.weight", rnd, 0, 0.2, ff, h);
            put(p + "mlp.up_proj.weight", rnd, 0, 0.2, ff, h);
            put(p + "mlp.down_proj.weight", rnd, 0, 0.2, h, ff);
        }
        put("model.norm.weight", rnd, 1, 0.1, h);
        if (!config.tieWordEmbeddings()) put("lm_head.weight", rnd, 0, 0.2, config.vocabSize(), h);
    }

    /** The same checkpoint with one tensor gone, as a truncated or mismatched export would be. */
    public MemoryCheckpoint without(String name) {
        infos.remove(name);
        data.remove(name);
        return this;
    }

    /** The same checkpoint with element {@code index} of tensor {@code name} set to {@code value} (a NaN, say). */
    public MemoryCheckpoint with(String name, int index, float value) {
        data.get(name)[index] = value;
        return this;
    }

    public static ModelConfig smallLlama() {
        return new ModelConfig(ModelConfig.Family.LLAMA, "llama", 96, 64, 96, 2, 4, 2, 16, 128, 10000, 1e-5,
                false, false, false, "silu", true, 64, 1, 2);
    }

    private void put(String name, SplittableRandom rnd, double mean, double std, long... shape) {
        long n = 1;
        for (long d : shape) n *= d;
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) v[i] = (float) (mean + std * rnd.nextGaussian());
        infos.put(name, new TensorInfo(name, "F32", shape));
        data.put(name, v);
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return infos;
    }

    @Override
    public float[] floats(String name) {
        return data.get(name).clone();
    }

    @Override
    public Tokenizer tokenizer() {
        throw new UnsupportedOperationException("a memory checkpoint has no tokenizer");
    }

    @Override
    public String sha256() {
        return "memory";
    }

    @Override
    public String source() {
        return "memory";
    }

    @Override
    public void close() {}
}
