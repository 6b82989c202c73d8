package lowbit.quant.observer;

/** A per-tensor quantization grid: x' = scale * (clamp(round(x / scale) + zeroPoint, qmin, qmax) - zeroPoint). */
public record QParams(float scale, int zeroPoint) {
}
