package lowbit.quant.observer;

/**
 * The integer grid a scale and zero point are chosen for: {@code [quantMin, quantMax]}, unsigned (torch's quint8
 * family) or signed (qint8), symmetric or affine. {@link #qparams} is torch.ao's
 * {@code UniformQuantizationObserverBase._calculate_qparams} for the per-tensor schemes, evaluated in float32 as
 * torch does so that scales agree bit for bit.
 *
 * <p>torch.ao treats a range given by the user (quant_min/quant_max, here every width but 8) differently from the
 * dtype's own: a symmetric unsigned grid takes the rounded-down midpoint as zero point, the default quint8 grid takes
 * 128. {@link #of} follows it, so a 4-bit unsigned symmetric grid has zero point 7 and the 8-bit one 128.
 */
public record QScheme(int quantMin, int quantMax, boolean unsigned, boolean symmetric, boolean customRange) {
    /** torch.finfo(torch.float32).eps, torch.ao's floor on the scale (so a zero range never divides by zero). */
    public static final float EPS = Math.ulp(1.0f);

    public QScheme {
        if (!(quantMin <= 0 && 0 <= quantMax && quantMin < quantMax))
            throw new IllegalArgumentException("quantization range must include 0 and have quantMin < quantMax, got [" + quantMin + ", " + quantMax + "]");
    }

    /**
     * The usual grids: unsigned [0, 2^b - 1] or signed [-2^(b-1), 2^(b-1) - 1], {@code bits} from 2 to 8. Eight bits
     * is the dtype's default range, narrower widths are torch.ao's customized quant_min/quant_max.
     */
    public static QScheme of(int bits, boolean unsigned, boolean symmetric) {
        if (bits < 2 || bits > 8)
            throw new IllegalArgumentException("observer bits must be 2..8, got " + bits);
        int lo = unsigned ? 0 : -(1 << (bits - 1));
        int hi = unsigned ? (1 << bits) - 1 : (1 << (bits - 1)) - 1;
        return new QScheme(lo, hi, unsigned, symmetric, bits != 8);
    }

    /** Scale and zero point for the observed range [min, max]; the range is first widened to include 0. */
    public QParams qparams(float min, float max) {
        // check_min_max_valid: an observer that saw nothing gives torch's default (1, 0)
        if (min == Float.POSITIVE_INFINITY && max == Float.NEGATIVE_INFINITY)
            return new QParams(1.0f, 0);
        if (!(min <= max))
            throw new IllegalArgumentException("observed min " + min + " must be <= max " + max);
        float minNeg = Math.min(min, 0f);
        float maxPos = Math.max(max, 0f);
        if (symmetric) {
            float absmax = Math.max(-minNeg, maxPos);
            float scale = Math.max(absmax / (float) ((quantMax - quantMin) / 2.0), EPS);
            int zero = !unsigned ? 0 : customRange ? Math.floorDiv(quantMin + quantMax, 2) : 128;
            return new QParams(scale, zero);
        }
        float scale = Math.max((maxPos - minNeg) / (float) (quantMax - quantMin), EPS);
        long zero = quantMin - (long) Math.rint(minNeg / scale);
        return new QParams(scale, (int) Math.max(quantMin, Math.min(quantMax, zero)));
    }
}
