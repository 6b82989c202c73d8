package lowbit.quant.observer;

/**
 * Watches the tensors that flow through one point of a model (calibration batches, or training steps before
 * fake quantization is switched on) and chooses the range its quantizer clips to. The per-tensor observers of
 * torch.ao.quantization, plus a percentile one torch.ao does not have.
 */
public interface Observer {
    /** Adds one tensor's values, flattened. Empty tensors are ignored, as torch.ao does. */
    void observe(float[] x);

    /** The clipping range chosen from everything observed so far; (+inf, -inf) before anything was observed. */
    Range range();

    /** Scale and zero point of {@code scheme} for {@link #range()}, torch.ao's calculate_qparams. */
    default QParams qparams(QScheme scheme) {
        Range r = range();
        return scheme.qparams(r.min(), r.max());
    }

    record Range(float min, float max) {
        static final Range EMPTY = new Range(Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY);
    }

    /**
     * The smallest and largest value of x, or null when x is empty. NaN is refused: torch's aminmax would carry it
     * into the scale, and a NaN scale silently turns every quantized value into NaN.
     */
    static Range minMax(float[] x) {
        if (x.length == 0) return null;
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < x.length; i++) {
            float v = x[i];
            if (Float.isNaN(v)) throw new IllegalArgumentException("observer input holds NaN at element " + i);
            if (v < lo) lo = v;
            if (v > hi) hi = v;
        }
        return new Range(lo, hi);
    }
}
