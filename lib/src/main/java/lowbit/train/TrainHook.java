package lowbit.train;

import java.util.List;

/**
 * What quantization-aware training changes in a trainable model's forward and backward passes: the weight a linear
 * multiplies by and the input it reads, each with its backward (FakeQuant with the straight-through estimator, LSQ,
 * PACT). The default methods leave the model in float.
 *
 * <p>Call order within one optimizer step: {@link #effectiveWeight} once per linear before the step's first forward
 * pass; then, for every micro-batch, forward passes that call {@link #input} (again when a block is recomputed for its
 * backward, with the same arguments, so it must be a pure function of the input and the hook's parameters) and
 * backward passes that call {@link #inputGradient}; finally {@link #weightGradient} once per linear with the gradient
 * accumulated over the step's micro-batches.
 */
public interface TrainHook {
    /**
     * The weight [out][in] the step's forward passes multiply by: {@code w} itself (float) or a fake-quantized copy.
     * The model keeps the returned array until the step's {@link #weightGradient}; it must not be {@code w} when it
     * differs from it.
     */
    default float[] effectiveWeight(TrainLinear linear, float[] w) {
        return w;
    }

    /**
     * Turns dL/d(effective weight), accumulated over the step, into dL/dw in place (the STE: kept inside the clip range,
     * zero outside) and adds into the hook's own parameters' gradients (LSQ's step size).
     */
    default void weightGradient(TrainLinear linear, float[] w, float[] dEffective) {}

    /** Whether {@link #input} changes this linear's input; the model then keeps the raw input for {@link #inputGradient}. */
    default boolean quantizesInput(TrainLinear linear) {
        return false;
    }

    /** Fake-quantizes x [rows][linear.in()] in place (only called when {@link #quantizesInput} is true). */
    default void input(TrainLinear linear, float[] x, int rows) {}

    /**
     * Turns dL/d(quantized input) {@code dx} into dL/d(raw input) in place, given the raw input {@code x}, and adds into
     * the hook's own parameters' gradients (PACT's clip, LSQ's activation step).
     */
    default void inputGradient(TrainLinear linear, float[] x, float[] dx, int rows) {}

    /** The hook's own learnable parameters, trained with the model's. */
    default List<Parameter> parameters() {
        return List.of();
    }
}
