package lowbit.model;

/**
 * What a {@link Transformer} is built from, part by part in the order it is built. The checkpoint layer maps
 * each file format's tensors onto these parts and checks their shapes against the config; the model does not
 * know tensor names or file layouts. Every tensor carries the name it has in the checkpoint (Hugging Face's),
 * which the model keeps: linears are identified by it in every result, and a model is written back under it.
 */
public interface ModelWeights {
    ModelConfig config();

    /** Where the weights were read from, for messages and provenance. */
    String source();

    /** sha256 of the weight file(s), hex. */
    String sha256();

    /** [vocab][embedDim] (embedDim is OPT's word_embed_proj_dim, else hidden). */
    Tensor tokenEmbeddings();

    /** OPT's learned positions [maxPositions + 2][hidden]; null for models with rotary positions. */
    Tensor positionEmbeddings();

    /** OPT-350m's projection from embedDim to hidden; null when embedDim equals hidden. */
    LinearWeights projectIn();

    /** The projection back from hidden to embedDim in front of lm_head; null when embedDim equals hidden. */
    LinearWeights projectOut();

    BlockWeights block(int layer);

    /** The norm in front of lm_head; null when the model has none (post-norm OPT). */
    Norm finalNorm();

    /** lm_head [vocab][embedDim]; for tied embeddings the token embeddings' values. */
    LinearWeights lmHead();

    /** One tensor's values, row-major, under its checkpoint name. */
    record Tensor(String name, float[] values) {}

    /**
     * A linear layer y = x W^T + b.
     *
     * @param name   module name, the linear's identifier in results (e.g. model.layers.3.mlp.down_proj)
     * @param layer  block index, -1 outside the blocks
     * @param module the module's short name within its block (q_proj, down_proj, fc1, lm_head, ...)
     * @param bias   null when the layer has none
     */
    record LinearWeights(String name, int layer, String module, Tensor weight, int out, int in, Tensor bias) {}

    /** RMSNorm when bias is null, LayerNorm otherwise. */
    record Norm(Tensor weight, Tensor bias) {}

    /**
     * One transformer block.
     *
     * @param qNorm Qwen3's per-head RMSNorm weights on q (kNorm on k); null otherwise
     * @param gate  the gated MLP's gate_proj; null for OPT's fc1/fc2 MLP (up is fc1, down is fc2)
     */
    record BlockWeights(Norm attentionNorm, LinearWeights q, LinearWeights k, LinearWeights v, LinearWeights o,
                        Tensor qNorm, Tensor kNorm, Norm mlpNorm, LinearWeights gate, LinearWeights up,
                        LinearWeights down) {}
}
