package lowbit.quant;

/**
 * The uniform grid of METHODS.md section 2, with the GPTQ reference's exact rules (quant.py's find_params
 * and quantize): the range is widened to include 0, an all-zero range becomes [-1, 1], torch.round is
 * round-half-to-even (Math.rint), and the code is clamp(rint(x / scale) + zero, 0, maxq). Works in double so
 * GPTQ's error feedback is not limited by float rounding; the scale is rounded to its storage format before
 * any code is computed, so what is stored dequantizes exactly to what the method used.
 */
public final class UniformQuantizer {
    private static final int MSE_GRID = 100;
    private static final double MSE_MAX_SHRINK = 0.8;
    private static final double MSE_NORM = 2.4;

    private final QuantConfig cfg;
    private final int maxq;
    private final boolean floatMin;

    public UniformQuantizer(QuantConfig cfg) {
        this.cfg = cfg;
        this.maxq = cfg.maxq();
        this.floatMin = cfg.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN;
    }

    public QuantConfig config() {
        return cfg;
    }

    /**
     * Grid parameters for the values v[off], v[off+1], ..., v[off+n-1]: params[0] = scale, params[1] = zero
     * (INTEGER, ABSMAX, AWQ) or min (FLOAT_MIN), the scale and min rounded to the storage format. With the
     * MSE clip search, the range shrinks by p = 1 - i/100 for i < 80 and the first p with the least
     * sum |x - q(x)|^2.4 wins, each grid shrinking the way its reference does.
     */
    public void fit(double[] v, int off, int n, double[] params) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int i = off; i < off + n; i++) {
            double x = v[i];
            if (!Double.isFinite(x)) throw new IllegalArgumentException("cannot quantize a non-finite value " + x);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        Shrink grid = shrinkable(lo, hi);
        double[] best = grid.at(1);
        if (cfg.mseClip()) {
            double bestErr = Double.POSITIVE_INFINITY;
            for (int i = 0; i < (int) (MSE_MAX_SHRINK * MSE_GRID); i++) {
                double[] c = grid.at(1 - (double) i / MSE_GRID);
                double err = error(v, off, n, c[0], c[1]);
                if (err < bestErr) {
                    bestErr = err;
                    best = c;
                }
            }
        }
        params[0] = storedScale(best[0]);
        params[1] = floatMin ? cfg.scaleFormat().round(best[1]) : best[1];
    }

    /** (scale, zero-or-min) of a grid whose range is shrunk by p. */
    private interface Shrink {
        double[] at(double p);
    }

    private Shrink shrinkable(double lo, double hi) {
        double half = (maxq + 1) / 2;
        switch (cfg.zeroPoint()) {
            case FLOAT_MIN:
                return p -> new double[] {(hi - lo) * p / maxq, p * lo};
            case ABSMAX: {
                // SmoothQuant's quantize_weight_per_channel_absmax: scale = max(|x|max, 1e-5) / (2^(b-1) - 1)
                double amax = Math.max(Math.abs(lo), Math.abs(hi));
                return p -> new double[] {Math.max(amax * p, 1e-5) / (half - 1), half};
            }
            case AWQ:
                // llm-awq's pseudo_quantize_tensor: the group's own range, zero clamped into the codes
                return p -> {
                    double scale = Math.max(p * (hi - lo), 1e-5) / maxq;
                    return new double[] {scale, Math.max(0, Math.min(maxq, -Math.rint(p * lo / scale))) + 0.0};
                };
            default: {
                // quant.py find_params: widen to include 0; symmetric around the larger side; [-1, 1] for all zeros
                double xmin = Math.min(lo, 0), xmax = Math.max(hi, 0);
                if (cfg.symmetric()) {
                    xmax = Math.max(Math.abs(xmin), xmax);
                    if (xmin < 0) xmin = -xmax;
                }
                if (xmin == 0 && xmax == 0) {
                    xmin = -1;
                    xmax = 1;
                }
                double a = xmin, b = xmax;
                return p -> {
                    double scale = (p * b - p * a) / maxq;
                    return new double[] {scale, cfg.symmetric() ? half : Math.rint(-(p * a) / scale) + 0.0};   // + 0.0: no negative zero
                };
            }
        }
    }

    private double storedScale(double scale) {
        double s = cfg.scaleFormat().round(scale);
        if (s == 0 && scale > 0)    // a range too small for the format must not collapse to a zero scale
            s = cfg.scaleFormat() == QuantConfig.ScaleFormat.F16 ? Float.float16ToFloat((short) 1) : Float.MIN_VALUE;
        return s;
    }

    private double error(double[] v, int off, int n, double scale, double zeroOrMin) {
        double err = 0;
        for (int i = off; i < off + n; i++) err += Math.pow(Math.abs(value(code(v[i], scale, zeroOrMin), scale, zeroOrMin) - v[i]), MSE_NORM);
        return err;
    }

    /** The integer code of x on the grid (scale, zero-or-min). */
    public int code(double x, double scale, double zeroOrMin) {
        double q;
        if (floatMin) q = scale == 0 ? 0 : Math.rint((x - zeroOrMin) / scale);
        else q = Math.rint(x / scale) + zeroOrMin;
        return (int) Math.max(0, Math.min(maxq, q));
    }

    /**
     * The grid value of a code in double, unrounded: what the GPTQ reference feeds back as q (its products of
     * float32 scales and small integers are exact in float64).
     */
    public double value(int code, double scale, double zeroOrMin) {
        return floatMin ? scale * code + zeroOrMin : scale * (code - zeroOrMin);
    }

    /** The value a code stands for, rounded to float exactly as the runtime computes it. */
    public double dequantize(int code, double scale, double zeroOrMin) {
        if (floatMin) return (float) ((float) (scale * code) + (float) zeroOrMin);
        return (float) (scale * (code - zeroOrMin));
    }

    /** q(x): code then dequantize. */
    public double quantize(double x, double scale, double zeroOrMin) {
        return dequantize(code(x, scale, zeroOrMin), scale, zeroOrMin);
    }
}
