package lowbit.checkpoint;

import java.util.Arrays;
import java.util.LinkedHashSet;
import java.util.Set;
import lowbit.model.ModelConfig;
import lowbit.model.ModelWeights;
import lowbit.tensor.VectorMath;

/**
 * A checkpoint's tensors, by Hugging Face name, as the parts of a model: every format reaches the model through
 * here, so the names transformers gives each tensor of the Llama family and OPT live in this one place. Shapes
 * are checked against the config, values must be finite, and {@link #checkEveryTensorUsed} refuses a checkpoint
 * that holds tensors the model does not read (a config declaring fewer layers than the file holds would otherwise
 * drop layers).
 */
final class CheckpointWeights implements ModelWeights {
    private final Checkpoint ckpt;
    private final ModelConfig cfg;
    private final boolean opt;
    private final String prefix;
    private final int embedDim;
    private final boolean readValues;
    private final Set<String> used = new LinkedHashSet<>();
    private Tensor tokenEmbeddings;

    /** @param readValues false: names and shapes only (every Tensor's values are null), for checking a checkpoint on open */
    CheckpointWeights(Checkpoint ckpt, boolean readValues) {
        this.ckpt = ckpt;
        this.readValues = readValues;
        this.cfg = ckpt.config();
        this.opt = cfg.family() == ModelConfig.Family.OPT;
        this.prefix = opt ? "model.decoder." : "model.";
        this.embedDim = opt ? cfg.wordEmbedProjDim() : cfg.hiddenSize();
    }

    @Override
    public ModelConfig config() {
        return cfg;
    }

    @Override
    public String source() {
        return ckpt.source();
    }

    @Override
    public String sha256() {
        return ckpt.sha256();
    }

    @Override
    public Tensor tokenEmbeddings() {
        if (tokenEmbeddings == null) tokenEmbeddings = get(prefix + "embed_tokens.weight", cfg.vocabSize(), embedDim);
        return tokenEmbeddings;
    }

    @Override
    public Tensor positionEmbeddings() {
        return opt ? get(prefix + "embed_positions.weight", cfg.maxPositions() + 2, cfg.hiddenSize()) : null;
    }

    @Override
    public LinearWeights projectIn() {
        return opt && embedDim != cfg.hiddenSize()
                ? linear(prefix + "project_in", -1, "project_in", cfg.hiddenSize(), embedDim) : null;
    }

    @Override
    public LinearWeights projectOut() {
        return opt && embedDim != cfg.hiddenSize()
                ? linear(prefix + "project_out", -1, "project_out", embedDim, cfg.hiddenSize()) : null;
    }

    @Override
    public BlockWeights block(int i) {
        int h = cfg.hiddenSize(), ff = cfg.intermediateSize();
        if (opt) {
            String p = prefix + "layers." + i + ".";
            return new BlockWeights(
                    new Norm(get(p + "self_attn_layer_norm.weight", h), get(p + "self_attn_layer_norm.bias", h)),
                    linear(p + "self_attn.q_proj", i, "q_proj", h, h),
                    linear(p + "self_attn.k_proj", i, "k_proj", h, h),
                    linear(p + "self_attn.v_proj", i, "v_proj", h, h),
                    linear(p + "self_attn.out_proj", i, "out_proj", h, h),
                    null, null,
                    new Norm(get(p + "final_layer_norm.weight", h), get(p + "final_layer_norm.bias", h)),
                    null,
                    linear(p + "fc1", i, "fc1", ff, h),
                    linear(p + "fc2", i, "fc2", h, ff));
        }
        String p = "model.layers." + i + ".";
        return new BlockWeights(
                new Norm(get(p + "input_layernorm.weight", h), null),
                linear(p + "self_attn.q_proj", i, "q_proj", cfg.qDim(), h),
                linear(p + "self_attn.k_proj", i, "k_proj", cfg.kvDim(), h),
                linear(p + "self_attn.v_proj", i, "v_proj", cfg.kvDim(), h),
                linear(p + "self_attn.o_proj", i, "o_proj", h, cfg.qDim()),
                cfg.qkNorm() ? get(p + "self_attn.q_norm.weight", cfg.headDim()) : null,
                cfg.qkNorm() ? get(p + "self_attn.k_norm.weight", cfg.headDim()) : null,
                new Norm(get(p + "post_attention_layernorm.weight", h), null),
                linear(p + "mlp.gate_proj", i, "gate_proj", ff, h),
                linear(p + "mlp.up_proj", i, "up_proj", ff, h),
                linear(p + "mlp.down_proj", i, "down_proj", h, ff));
    }

    @Override
    public Norm finalNorm() {
        int h = cfg.hiddenSize();
        if (!opt) return new Norm(get("model.norm.weight", h), null);
        // post-norm OPT (do_layer_norm_before=false) has no final norm
        boolean hasFinal = cfg.normBefore() && has(prefix + "final_layer_norm.weight");
        return hasFinal ? new Norm(get(prefix + "final_layer_norm.weight", h), get(prefix + "final_layer_norm.bias", h)) : null;
    }

    @Override
    public LinearWeights lmHead() {
        boolean tied = cfg.tieWordEmbeddings() || !has("lm_head.weight");
        if (tied) {
            // transformers ties lm_head to the embeddings and ignores a stored copy; so do we
            if (has("lm_head.weight")) used.add("lm_head.weight");
            return new LinearWeights("lm_head", -1, "lm_head", new Tensor("lm_head.weight", tokenEmbeddings().values()),
                    cfg.vocabSize(), embedDim, null);
        }
        return new LinearWeights("lm_head", -1, "lm_head", get("lm_head.weight", cfg.vocabSize(), embedDim),
                cfg.vocabSize(), embedDim, null);
    }

    /**
     * Checks, without reading any values, that the checkpoint has every tensor the config implies in its shape and
     * nothing else: what {@link Checkpoints#load} would refuse, refused before any work is done.
     */
    static void checkNamesAndShapes(Checkpoint ckpt) {
        CheckpointWeights w = new CheckpointWeights(ckpt, false);
        w.tokenEmbeddings();
        w.positionEmbeddings();
        w.projectIn();
        w.projectOut();
        for (int i = 0; i < w.cfg.numLayers(); i++) w.block(i);
        w.finalNorm();
        w.lmHead();
        w.checkEveryTensorUsed();
    }

    /**
     * Refuses a checkpoint whose tensors the model did not all read, naming the first few: they are layers the
     * config does not declare, or parts of an architecture the config does not describe.
     */
    void checkEveryTensorUsed() {
        var unused = ckpt.tensors().keySet().stream().filter(n -> !used.contains(n) && !ignored(n)).toList();
        if (!unused.isEmpty())
            throw new IllegalArgumentException(ckpt.source() + ": " + unused.size() + " tensor(s) the " + cfg.modelType()
                    + " model of its config (" + cfg.numLayers() + " layers) does not use, e.g. "
                    + String.join(", ", unused.subList(0, Math.min(3, unused.size())))
                    + ": the config does not describe this checkpoint");
    }

    /** Buffers older transformers versions saved with the weights; computed from the config, never read. */
    private static boolean ignored(String name) {
        return name.endsWith(".rotary_emb.inv_freq");
    }

    private boolean has(String name) {
        return ckpt.tensors().containsKey(name);
    }

    private LinearWeights linear(String name, int layer, String module, int out, int in) {
        Tensor bias = has(name + ".bias") ? get(name + ".bias", out) : null;
        return new LinearWeights(name, layer, module, get(name + ".weight", out, in), out, in, bias);
    }

    /** Reads a tensor by name and checks its shape against the config, naming the checkpoint on mismatch. */
    private Tensor get(String name, long... shape) {
        var info = ckpt.tensors().get(name);
        if (info == null)
            throw new IllegalArgumentException(ckpt.source() + ": tensor " + name + " is missing (expected shape "
                    + Arrays.toString(shape) + " for a " + cfg.modelType() + " model)");
        long n = 1;
        for (long d : shape) n *= d;
        if (info.elements() != n || (info.shape().length == shape.length && !Arrays.equals(info.shape(), shape)))
            throw new IllegalArgumentException(ckpt.source() + ": tensor " + name + " has shape "
                    + Arrays.toString(info.shape()) + ", the config implies " + Arrays.toString(shape));
        used.add(name);
        if (!readValues) return new Tensor(name, null);
        float[] values = ckpt.floats(name);
        // a NaN or infinite weight makes every later activation NaN: refused here, where it can be named
        int bad = VectorMath.firstNonFinite(values);
        if (bad >= 0)
            throw new IllegalArgumentException(ckpt.source() + ": tensor " + name + " holds " + values[bad] + " at element "
                    + bad + "; weights must be finite");
        return new Tensor(name, values);
    }
}
