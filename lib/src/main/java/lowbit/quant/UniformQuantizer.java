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
     * (INTEGER) or min (FLOAT_MIN), both already rounded to the storage format.
     */
    public void fit(double[] v, int off, int n, double[] params) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int i = off; i < off + n; i++) {
            double x = v[i];
            if (!Double.isFinite(x)) throw new IllegalArgumentException("cannot quantize a non-finite value " + x);
            if (x < lo) lo = x;
            if (x > hi) hi = x;
        }
        if (floatMin) {
            double scale = (hi - lo) / maxq;
            double min = lo;
            if (cfg.mseClip()) {
                double best = Double.POSITIVE_INFINITY;
                for (int i = 0; i < (int) (MSE_MAX_SHRINK * MSE_GRID); i++) {
                    double p = 1 - (double) i / MSE_GRID;
                    double s1 = (hi - lo) * p / maxq, m1 = p * lo;
                    double err = error(v, off, n, s1, m1);
                    if (err < best) {
                        best = err;
                        scale = s1;
                        min = m1;
                    }
                }
            }
            params[0] = storedScale(scale);
            params[1] = cfg.scaleFormat().round(min);
            return;
        }
        if (cfg.zeroPoint() == QuantConfig.ZeroPoint.ABSMAX) {
            // SmoothQuant's quantize_weight_per_channel_absmax: scale = max(|x|max, 1e-5) / (2^(b-1) - 1)
            double amax = Math.max(Math.abs(lo), Math.abs(hi)), qmax = (maxq + 1) / 2 - 1;
            double scale = Math.max(amax, 1e-5) / qmax;
            if (cfg.mseClip()) {
                double best = Double.POSITIVE_INFINITY, bestScale = scale;
                for (int i = 0; i < (int) (MSE_MAX_SHRINK * MSE_GRID); i++) {
                    double s1 = Math.max(amax * (1 - (double) i / MSE_GRID), 1e-5) / qmax;
                    double err = error(v, off, n, s1, (maxq + 1) / 2);
                    if (err < best) {
                        best = err;
                        bestScale = s1;
                    }
                }
                scale = bestScale;
            }
            params[0] = storedScale(scale);
            params[1] = (maxq + 1) / 2;
            return;
        }
        if (cfg.zeroPoint() == QuantConfig.ZeroPoint.AWQ) {
            double scale = Math.max(hi - lo, 1e-5) / maxq;
            double zero = Math.max(0, Math.min(maxq, -Math.rint(lo / scale))) + 0.0;
            if (cfg.mseClip()) {
                double best = Double.POSITIVE_INFINITY, bestScale = scale, bestZero = zero;
                for (int i = 0; i < (int) (MSE_MAX_SHRINK * MSE_GRID); i++) {
                    double p = 1 - (double) i / MSE_GRID;
                    double s1 = Math.max(p * (hi - lo), 1e-5) / maxq, z1 = Math.max(0, Math.min(maxq, -Math.rint(p * lo / s1))) + 0.0;
                    double err = error(v, off, n, s1, z1);
                    if (err < best) {
                        best = err;
                        bestScale = s1;
                        bestZero = z1;
                    }
                }
                scale = bestScale;
                zero = bestZero;
            }
            params[0] = storedScale(scale);
            params[1] = zero;
            return;
        }
        double xmin = Math.min(lo, 0), xmax = Math.max(hi, 0);
        if (cfg.symmetric()) {
            xmax = Math.max(Math.abs(xmin), xmax);
            if (xmin < 0) xmin = -xmax;
        }
        if (xmin == 0 && xmax == 0) {
            xmin = -1;
            xmax = 1;
        }
        double scale = (xmax - xmin) / maxq;
        double zero = cfg.symmetric() ? (maxq + 1) / 2 : Math.rint(-xmin / scale) + 0.0;   // + 0.0: no negative zero
        if (cfg.mseClip()) {
            double best = Double.POSITIVE_INFINITY;
            double bestScale = scale, bestZero = zero;
            for (int i = 0; i < (int) (MSE_MAX_SHRINK * MSE_GRID); i++) {
                double p = 1 - (double) i / MSE_GRID;
                double xmin1 = p * xmin, xmax1 = p * xmax;
                double s1 = (xmax1 - xmin1) / maxq;
                double z1 = cfg.symmetric() ? zero : Math.rint(-xmin1 / s1) + 0.0;
                double err = error(v, off, n, s1, z1);
                if (err < best) {
                    best = err;
                    bestScale = s1;
                    bestZero = z1;
                }
            }
            scale = bestScale;
            zero = bestZero;
        }
        params[0] = storedScale(scale);
        params[1] = zero;
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
