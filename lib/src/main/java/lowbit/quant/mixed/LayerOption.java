package lowbit.quant.mixed;

import lowbit.quant.QuantConfig;

/**
 * One candidate bit width for one linear, as the allocator sees it: what it costs on disk and what it is
 * predicted to cost in quality.
 *
 * @param layer         module name of the linear (e.g. model.layers.0.self_attn.q_proj)
 * @param bits          code width, 2..8
 * @param parameters    weights in the linear (rows x columns); every option of one layer has the same count
 * @param storageBits   bits the deployed tensor takes at this width, scale/zero overhead included
 *                      (see {@link #storageBits(int, int, QuantConfig)})
 * @param predictedLoss predicted increase of the loss (e.g. perplexity or log-perplexity increase measured by
 *                      quantizing this linear alone, or a proxy such as Hessian-weighted error). Only sums of
 *                      these are compared, so every option in one allocation must use the same unit.
 */
public record LayerOption(String layer, int bits, long parameters, long storageBits, double predictedLoss) {

    public LayerOption {
        if (layer == null || layer.isBlank()) throw new IllegalArgumentException("layer name is required");
        if (bits < 2 || bits > 8) throw new IllegalArgumentException(layer + ": bits must be 2..8, got " + bits);
        if (parameters <= 0) throw new IllegalArgumentException(layer + ": parameters must be > 0, got " + parameters);
        if (storageBits <= 0) throw new IllegalArgumentException(layer + ": storage bits must be > 0, got " + storageBits);
        if (!Double.isFinite(predictedLoss))
            throw new IllegalArgumentException(layer + " at " + bits + " bits: predicted loss is " + predictedLoss);
    }

    /** The option for a rows x columns linear quantized with {@code cfg} (its bits taken from cfg). */
    public static LayerOption of(String layer, int rows, int columns, QuantConfig cfg, double predictedLoss) {
        return new LayerOption(layer, cfg.bits(), (long) rows * columns, storageBits(rows, columns, cfg), predictedLoss);
    }

    /**
     * What {@link lowbit.quant.QuantizedWeight#storageBits()} reports for a rows x columns weight quantized
     * with {@code cfg} and contiguous groups: codes, one scale per (row, group) (one in all per-tensor) in the
     * scale format, and per group either nothing (symmetric grids, whose zero is fixed), a float min in the
     * scale format (FLOAT_MIN) or an integer zero of {@code bits} bits. A shorter last group still carries a
     * full scale and zero.
     */
    public static long storageBits(int rows, int columns, QuantConfig cfg) {
        return storageBits(rows, columns, cfg, false);
    }

    /**
     * As {@link #storageBits(int, int, QuantConfig)}, plus a 32-bit group index per input column when
     * {@code groupIndex} is set (GPTQ act-order with static groups off stores one, as AutoGPTQ's g_idx).
     */
    public static long storageBits(int rows, int columns, QuantConfig cfg, boolean groupIndex) {
        if (rows <= 0 || columns <= 0) throw new IllegalArgumentException("shape must be positive, got " + rows + "x" + columns);
        long groups = (cfg.groupSize() == QuantConfig.PER_TENSOR ? 1L : rows) * cfg.groupsPerRow(columns);
        long bits = (long) rows * columns * cfg.bits();
        bits += groups * cfg.scaleFormat().bits;
        if (!cfg.symmetric())
            bits += groups * (cfg.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN ? cfg.scaleFormat().bits : cfg.bits());
        if (groupIndex) bits += 32L * columns;
        return bits;
    }

    public double bitsPerWeight() {
        return (double) storageBits / parameters;
    }
}
