package lowbit.quant.qat;

/**
 * Learned step size quantization (Esser et al., ICLR 2020), per tensor with zero point 0:
 * x' = round(clamp(x / s, -Qn, Qp)) * s, signed range for weights, unsigned for activations. The backward
 * pass is the paper's: dx = dy for -Qn < x/s < Qp (strict, as torch.clamp's gradient with scalar bounds)
 * and 0 otherwise; ds = g * sum dy * (round(x/s) - x/s inside, -Qn at or below, Qp at or above), with the
 * gradient scale g = 1 / sqrt(N * Qp), N the number of values sharing the step. torch's built-in
 * _fake_quantize_learnable_per_tensor_affine is not used as the reference because it decides "inside" on
 * the rounded code, which moves half a step's worth of values across each bound.
 */
public record Lsq(QuantRange range) {
    public Lsq {
        if (range == null || range.qmin() > 0 || range.qmax() <= 0)
            throw new IllegalArgumentException("LSQ needs a range containing 0 with qmax > 0, got " + range);
    }

    public static Lsq forWeights(int bits) {
        return new Lsq(QuantRange.signed(bits));
    }

    public static Lsq forActivations(int bits) {
        return new Lsq(QuantRange.unsigned(bits));
    }

    public Result forward(float[] x, float step) {
        if (!(step > 0) || !Float.isFinite(step)) throw new IllegalArgumentException("LSQ step size must be finite and > 0, got " + step);
        if (x.length == 0) throw new IllegalArgumentException("LSQ input is empty");
        float lo = range.qmin(), hi = range.qmax();
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            float v = x[i] / step;
            if (!Float.isFinite(v)) throw new IllegalArgumentException("LSQ input[" + i + "] is not finite: " + x[i]);
            y[i] = (float) Math.rint(Math.clamp(v, lo, hi)) * step;
        }
        return new Result(y, x.clone(), step, range);
    }

    public record Result(float[] output, float[] input, float step, QuantRange range) {
        public Gradients backward(float[] dy) {
            if (dy.length != input.length)
                throw new IllegalArgumentException("LSQ upstream gradient has " + dy.length + " values, expected " + input.length);
            float[] dx = dy.clone();
            double dStep = backwardInPlace(input, dx, 0, input.length, step, -range.qmin(), range.qmax());
            return new Gradients(dx, dStep);
        }
    }

    /**
     * LSQ's backward on x[from, from + n) with codes in [-qn, qp]: turns the upstream gradient {@code d} into dL/dx in place
     * (kept strictly inside the clip range, zero outside) and returns dL/dstep with the gradient scale 1/sqrt(n * qp).
     */
    public static double backwardInPlace(float[] x, float[] d, int from, int n, float step, int qn, int qp) {
        double g = 1.0 / Math.sqrt((double) n * Math.max(qp, 1));
        double ds = 0;
        for (int i = from; i < from + n; i++) {
            float v = x[i] / step;
            double term;
            if (v <= -qn) term = -qn;
            else if (v >= qp) term = qp;
            else term = Math.rint(v) - v;
            ds += d[i] * term;
            if (v <= -qn || v >= qp) d[i] = 0;
        }
        return g * ds;
    }

    public record Gradients(float[] dx, double dStep) {}
}
