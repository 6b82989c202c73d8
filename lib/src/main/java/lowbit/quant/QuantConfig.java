package lowbit.quant;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The uniform weight grid every weight method shares (METHODS.md section 2): bit width, symmetric or
 * asymmetric, granularity, how the zero point is stored, the precision of the stored scales, and the
 * optional MSE clip search.
 *
 * <p>When the group size does not divide the input dimension the last group of each row is shorter (as in
 * the GPTQ reference); nothing is padded. The default model's hidden size 576 is 4.5 groups of 128, so this
 * matters.
 *
 * @param bits       2..8
 * @param symmetric  the GPTQ reference's symmetric grid: scale = 2 max|x| / (2^b - 1), zero fixed at 2^(b-1)
 *                   (codes stay unsigned 0..2^b-1, so the grid has one more negative than positive level)
 * @param groupSize  input columns per group; {@link #PER_CHANNEL} or {@link #PER_TENSOR}
 * @param zeroPoint  INTEGER: the GPTQ/AWQ grid, range widened to include 0, zero = round(-min/scale) stored in
 *                   {@code bits} bits. FLOAT_MIN: llama.cpp's Q4_1-style x = scale*q + min with a float min and
 *                   no widening to 0.
 * @param scaleFormat precision the scales (and float mins) are stored in; the quantizer rounds to it before
 *                   use so the stored codes dequantize exactly to the weights the model runs with
 * @param mseClip    search 80 shrinks of the range (p = 1 - i/100) for the least sum |x - q(x)|^2.4 per group,
 *                   as the GPTQ reference's quantizer does with mse=True
 */
public record QuantConfig(int bits, boolean symmetric, int groupSize, ZeroPoint zeroPoint, ScaleFormat scaleFormat,
                          boolean mseClip) {
    public static final int PER_CHANNEL = -1;
    public static final int PER_TENSOR = 0;

    /**
     * INTEGER: the GPTQ/AWQ grid (asymmetric with an integer zero, or GPTQ's symmetric grid). FLOAT_MIN:
     * llama.cpp's Q4_1 style. ABSMAX: symmetric restricted range, scale = max|x| / (2^(b-1) - 1), codes
     * -(2^(b-1)-1)..2^(b-1)-1 (stored offset by 2^(b-1)): SmoothQuant's per-channel weight quantizer.
     * AWQ: llm-awq's pseudo_quantize_tensor (also qllm-eval's): the group's own [min, max] without widening
     * to 0, scale = max(max - min, 1e-5) / (2^b - 1), integer zero = clamp(-round(min / scale), 0, 2^b - 1).
     */
    public enum ZeroPoint { INTEGER, FLOAT_MIN, ABSMAX, AWQ }

    public enum ScaleFormat {
        F16(16), F32(32);
        public final int bits;

        ScaleFormat(int bits) {
            this.bits = bits;
        }

        public double round(double v) {
            return this == F32 ? (float) v : Float.float16ToFloat(Float.floatToFloat16((float) v));
        }
    }

    public QuantConfig {
        if (bits < 2 || bits > 8)
            throw new IllegalArgumentException("bits must be 2..8, got " + bits);
        if (groupSize < PER_CHANNEL)
            throw new IllegalArgumentException("group size must be >= 1 (or per-channel/per-tensor), got " + groupSize);
        if (symmetric && zeroPoint == ZeroPoint.FLOAT_MIN)
            throw new IllegalArgumentException("a symmetric grid has no float min: use ZeroPoint.INTEGER");
        if (!symmetric && zeroPoint == ZeroPoint.ABSMAX)
            throw new IllegalArgumentException("the absmax grid is symmetric");
        if (symmetric && zeroPoint == ZeroPoint.AWQ)
            throw new IllegalArgumentException("the AWQ grid is asymmetric");
        if (zeroPoint == null || scaleFormat == null) throw new IllegalArgumentException("zeroPoint and scaleFormat are required");
    }

    /** Asymmetric, one scale/zero per output row, fp16 scales. */
    public static QuantConfig perChannel(int bits) {
        return new QuantConfig(bits, false, PER_CHANNEL, ZeroPoint.INTEGER, ScaleFormat.F16, false);
    }

    /** Asymmetric, groups of g input columns, fp16 scales. */
    public static QuantConfig group(int bits, int g) {
        if (g < 1) throw new IllegalArgumentException("group size must be >= 1, got " + g);
        return new QuantConfig(bits, false, g, ZeroPoint.INTEGER, ScaleFormat.F16, false);
    }

    public static QuantConfig perTensor(int bits) {
        return new QuantConfig(bits, false, PER_TENSOR, ZeroPoint.INTEGER, ScaleFormat.F16, false);
    }

    /** llama.cpp's Q4_1 layout: 4 bits, groups of 32, fp16 scale and fp16 min. */
    public static QuantConfig q4_1() {
        return new QuantConfig(4, false, 32, ZeroPoint.FLOAT_MIN, ScaleFormat.F16, false);
    }

    /** SmoothQuant's weight quantizer: symmetric absmax per output channel. */
    public static QuantConfig absmaxPerChannel(int bits) {
        return new QuantConfig(bits, true, PER_CHANNEL, ZeroPoint.ABSMAX, ScaleFormat.F16, false);
    }

    public QuantConfig withBits(int b) {
        return new QuantConfig(b, symmetric, groupSize, zeroPoint, scaleFormat, mseClip);
    }

    public QuantConfig withSymmetric(boolean sym) {
        ZeroPoint z = sym ? (zeroPoint == ZeroPoint.FLOAT_MIN || zeroPoint == ZeroPoint.AWQ ? ZeroPoint.INTEGER : zeroPoint)
                : (zeroPoint == ZeroPoint.ABSMAX ? ZeroPoint.INTEGER : zeroPoint);
        return new QuantConfig(bits, sym, groupSize, z, scaleFormat, mseClip);
    }

    public QuantConfig withZeroPoint(ZeroPoint z) {
        return new QuantConfig(bits, symmetric, groupSize, z, scaleFormat, mseClip);
    }

    public QuantConfig withScaleFormat(ScaleFormat f) {
        return new QuantConfig(bits, symmetric, groupSize, zeroPoint, f, mseClip);
    }

    public QuantConfig withMseClip(boolean mse) {
        return new QuantConfig(bits, symmetric, groupSize, zeroPoint, scaleFormat, mse);
    }

    public int maxq() {
        return (1 << bits) - 1;
    }

    public boolean grouped() {
        return groupSize > 0;
    }

    /** Columns per group for a row of {@code columns} inputs (the whole row unless grouped). */
    public int groupColumns(int columns) {
        return grouped() ? Math.min(groupSize, columns) : columns;
    }

    public int groupsPerRow(int columns) {
        return grouped() ? (columns + groupSize - 1) / groupSize : 1;
    }

    /** Short name in the --quant grammar: w4g128, w3, w4g32sym; per-tensor shows as "t". */
    public String label() {
        String g = groupSize > 0 ? "g" + groupSize : groupSize == PER_TENSOR ? "t" : "";
        return "w" + bits + g + (symmetric ? "sym" : "");
    }

    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("bits", bits);
        m.put("symmetric", symmetric);
        m.put("granularity", groupSize > 0 ? "group" : groupSize == PER_CHANNEL ? "per-channel" : "per-tensor");
        m.put("group_size", groupSize > 0 ? groupSize : null);
        m.put("zero_point", zeroPoint.name().toLowerCase());
        m.put("scale_format", scaleFormat.name().toLowerCase());
        m.put("mse_clip", mseClip);
        return m;
    }
}
