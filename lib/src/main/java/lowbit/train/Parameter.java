package lowbit.train;

import java.util.Arrays;

/**
 * A trainable tensor: its values and the gradient accumulated for them, both row-major and live (the optimizer
 * updates {@code value} in place, backward passes add into {@code grad}). Named by the checkpoint's tensor name
 * (model.layers.3.mlp.down_proj.weight) or, for a quantizer's own parameters, by what they belong to
 * (model.layers.3.mlp.down_proj.weight.lsq_step).
 *
 * @param decay whether AdamW's weight decay applies (matrices yes; norms, biases, step sizes and clips no)
 */
public record Parameter(String name, float[] value, float[] grad, boolean decay) {
    public Parameter {
        if (value.length != grad.length)
            throw new IllegalArgumentException(name + ": gradient has " + grad.length + " elements for " + value.length + " values");
    }

    /** A parameter over {@code value} with a zero gradient. */
    public static Parameter of(String name, float[] value, boolean decay) {
        return new Parameter(name, value, new float[value.length], decay);
    }

    public int size() {
        return value.length;
    }

    public void zeroGrad() {
        Arrays.fill(grad, 0f);
    }
}
