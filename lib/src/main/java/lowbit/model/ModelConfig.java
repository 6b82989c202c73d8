package lowbit.model;

/**
 * The shape and options of a decoder-only transformer, in the vocabulary of Hugging Face's config.json.
 *
 * @param family          LLAMA for the Llama family (Llama, Mistral, SmolLM, Qwen2, Qwen3), OPT for OPT
 * @param modelType       config.json's model_type ("llama", "qwen2", "qwen3", "mistral", "opt", or "llama2c")
 * @param headDim         per-head dimension (Qwen3 sets it apart from hidden/heads)
 * @param attentionBias   q/k/v (and for OPT every linear) carry biases
 * @param qkNorm          Qwen3's RMSNorm on q and k per head before RoPE
 * @param hiddenAct       "silu" (gated MLP) or "relu"/"gelu" (OPT's fc1/fc2)
 * @param normBefore      OPT's do_layer_norm_before (pre-norm); always true for the Llama family
 * @param wordEmbedProjDim OPT's word_embed_proj_dim (project_in/out when it differs from hidden)
 * @param bosTokenId      -1 when the config names none
 */
public record ModelConfig(
        Family family,
        String modelType,
        int vocabSize,
        int hiddenSize,
        int intermediateSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int headDim,
        int maxPositions,
        double ropeTheta,
        double normEps,
        boolean tieWordEmbeddings,
        boolean attentionBias,
        boolean qkNorm,
        String hiddenAct,
        boolean normBefore,
        int wordEmbedProjDim,
        int bosTokenId,
        int eosTokenId) {

    public enum Family { LLAMA, OPT }

    public ModelConfig {
        if (numHeads <= 0 || numKvHeads <= 0 || numHeads % numKvHeads != 0)
            throw new IllegalArgumentException("num_attention_heads " + numHeads
                    + " must be a positive multiple of num_key_value_heads " + numKvHeads);
        if (hiddenSize <= 0 || numLayers <= 0 || vocabSize <= 0 || headDim <= 0)
            throw new IllegalArgumentException("hidden_size, num_hidden_layers, vocab_size and head_dim must be positive: "
                    + hiddenSize + ", " + numLayers + ", " + vocabSize + ", " + headDim);
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    public int qDim() {
        return numHeads * headDim;
    }
}
