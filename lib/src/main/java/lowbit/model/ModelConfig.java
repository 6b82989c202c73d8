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

    /**
     * Refuses values the forward pass cannot run on, whichever file they came from: each message starts with the
     * config.json key (loaders of other formats translate it to their own key), and the loader prefixes the file. Non-finite or non-positive values would otherwise reach
     * the output as a perplexity of NaN.
     */
    public ModelConfig {
        if (family == null) throw new IllegalArgumentException("family must be LLAMA or OPT, found none");
        if (modelType == null || modelType.isBlank()) throw new IllegalArgumentException("model_type is missing");
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive(family == Family.OPT ? "ffn_dim" : "intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositions);
        positive("word_embed_proj_dim", wordEmbedProjDim);
        if (numHeads % numKvHeads != 0)
            throw new IllegalArgumentException("num_attention_heads " + numHeads + " must be a multiple of num_key_value_heads "
                    + numKvHeads);
        if (!Double.isFinite(normEps) || normEps < 0)
            throw new IllegalArgumentException((family == Family.OPT ? "layer_norm_eps" : "rms_norm_eps")
                    + " must be a finite number >= 0, found " + normEps);
        if (family == Family.LLAMA) {
            if (!Double.isFinite(ropeTheta) || ropeTheta <= 0)
                throw new IllegalArgumentException("rope_theta must be a finite number > 0, found " + ropeTheta);
            if (headDim % 2 != 0)
                throw new IllegalArgumentException("head_dim " + headDim + " must be even: rotary embeddings rotate pairs of dimensions");
            if (!"silu".equals(hiddenAct))
                throw new IllegalArgumentException("hidden_act must be silu for the Llama family, found " + hiddenAct);
        } else {
            if (numHeads * headDim != hiddenSize)
                throw new IllegalArgumentException("hidden_size " + hiddenSize + " must be num_attention_heads " + numHeads
                        + " x head_dim " + headDim + " for OPT");
            if (numKvHeads != numHeads)
                throw new IllegalArgumentException("num_key_value_heads " + numKvHeads + " must equal num_attention_heads "
                        + numHeads + " for OPT");
            if (!"relu".equals(hiddenAct) && !"gelu".equals(hiddenAct))
                throw new IllegalArgumentException("activation_function must be relu or gelu for OPT, found " + hiddenAct);
        }
    }

    private static void positive(String key, int value) {
        if (value <= 0) throw new IllegalArgumentException(key + " must be >= 1, found " + value);
    }

    /** This config with tie_word_embeddings set to {@code tied} (a rotation unties them). */
    public ModelConfig withTieWordEmbeddings(boolean tied) {
        return new ModelConfig(family, modelType, vocabSize, hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim,
                maxPositions, ropeTheta, normEps, tied, attentionBias, qkNorm, hiddenAct, normBefore, wordEmbedProjDim, bosTokenId,
                eosTokenId);
    }

    public int kvDim() {
        return numKvHeads * headDim;
    }

    public int qDim() {
        return numHeads * headDim;
    }
}
