package lowbit.model;

/**
 * Observes (and may rewrite in place) what flows through a forward pass: the input and output of every
 * linear layer and the keys and values of every attention layer. Calibration and statistics read;
 * activation and KV-cache quantization rewrite. Arrays are row-major with {@code rows} tokens; q/k/v see
 * the same input array, so an in-place change to it reaches all three. The arrays are the model's working
 * buffers, reused by the next layer and the next window: copy what you keep.
 */
public interface ForwardHook {
    /** x is [rows][linear.inFeatures()], before the matmul. */
    default void linearInput(Linear linear, float[] x, int rows) {}

    /** y is [rows][linear.outFeatures()], bias included. */
    default void linearOutput(Linear linear, float[] y, int rows) {}

    /** Keys (after RoPE and Qwen3's k-norm) and values as the cache would hold them: [rows][numKvHeads*headDim]. */
    default void keyValue(int layer, float[] keys, float[] values, int rows) {}
}
