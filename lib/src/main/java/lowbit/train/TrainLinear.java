package lowbit.train;

/**
 * One linear layer y = x W^T + b of a trainable model, under the module name it has in the checkpoint and in
 * {@link lowbit.model.Linear} (model.layers.3.mlp.down_proj, lm_head), so a quantizer trained here applies to the
 * same linear of the runtime model.
 *
 * @param layer  block index, -1 outside the blocks (lm_head)
 * @param module short module name: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head
 * @param weight [out][in]; for a tied lm_head the token embeddings' parameter itself
 * @param bias   null when the layer has none
 */
public record TrainLinear(String name, int layer, String module, int out, int in, Parameter weight, Parameter bias) {
    public TrainLinear {
        if (weight.size() != out * in)
            throw new IllegalArgumentException(name + ".weight has " + weight.size() + " elements, expected " + out + "x" + in);
        if (bias != null && bias.size() != out)
            throw new IllegalArgumentException(name + ".bias has " + bias.size() + " elements, expected " + out);
    }
}
