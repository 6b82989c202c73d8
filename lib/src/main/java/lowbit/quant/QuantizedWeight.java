package lowbit.quant;

import java.util.Arrays;
import java.util.Map;

/**
 * A quantized weight matrix [rows][columns] as it would be deployed: packed integer codes plus per-group
 * scales and zeros (or float mins). {@link #dequantize()} gives, exactly, the float weights the runtime
 * runs with.
 *
 * @param scales      [scaleRows][groups] where scaleRows is 1 per-tensor and rows otherwise
 * @param zeros       same shape: integer zeros (asymmetric INTEGER grid), float mins (FLOAT_MIN), or null for
 *                    the symmetric grid's fixed zero 2^(bits-1)
 * @param groupIndex  group of each input column when groups are not contiguous (GPTQ act-order with dynamic
 *                    groups, AutoGPTQ's g_idx), else null
 */
public record QuantizedWeight(int rows, int columns, QuantConfig config, byte[] packedCodes, float[] scales,
                              float[] zeros, int[] groupIndex) implements QuantizedTensor {

    public QuantizedWeight {
        int expected = scaleRows(config, rows) * config.groupsPerRow(columns);
        if (scales.length != expected)
            throw new IllegalArgumentException("scales have " + scales.length + " entries, expected " + expected);
        if (zeros == null ? !config.symmetric() : zeros.length != expected)
            throw new IllegalArgumentException("zeros must be " + (config.symmetric() ? "absent for a symmetric grid" : expected + " entries"));
        if (packedCodes.length != BitPacking.packedBytes((long) rows * columns, config.bits()))
            throw new IllegalArgumentException("packed codes have " + packedCodes.length + " bytes, expected "
                    + BitPacking.packedBytes((long) rows * columns, config.bits()));
        if (groupIndex != null && groupIndex.length != columns)
            throw new IllegalArgumentException("group index has " + groupIndex.length + " entries, expected " + columns);
    }

    static int scaleRows(QuantConfig cfg, int rows) {
        return cfg.groupSize() == QuantConfig.PER_TENSOR ? 1 : rows;
    }

    public int groups() {
        return config.groupsPerRow(columns);
    }

    public int group(int column) {
        if (groupIndex != null) return groupIndex[column];
        return config.grouped() ? column / config.groupSize() : 0;
    }

    public byte[] codes() {
        return BitPacking.unpack(packedCodes, config.bits(), rows * columns);
    }

    @Override
    public float[] dequantize() {
        byte[] codes = codes();
        UniformQuantizer grid = new UniformQuantizer(config);
        int groups = groups();
        double fixedZero = (config.maxq() + 1) / 2;
        float[] w = new float[rows * columns];
        for (int r = 0; r < rows; r++) {
            int sr = scaleRows(config, rows) == 1 ? 0 : r;
            for (int c = 0; c < columns; c++) {
                int p = sr * groups + group(c);
                w[r * columns + c] = (float) grid.dequantize(codes[r * columns + c] & 0xFF, scales[p], zeros == null ? fixedZero : zeros[p]);
            }
        }
        return w;
    }

    /** Bits the deployed tensor takes: codes, scales, stored zeros or mins, and the group index. */
    @Override
    public long storageBits() {
        long bits = (long) rows * columns * config.bits();
        bits += (long) scales.length * config.scaleFormat().bits;
        if (zeros != null)
            bits += (long) zeros.length * (config.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN ? config.scaleFormat().bits : config.bits());
        if (groupIndex != null) bits += 32L * columns;
        return bits;
    }

    @Override
    public Map<String, Object> describe() {
        return config.describe();
    }

    /** Collects codes and group parameters while a method quantizes, then packs them. */
    public static final class Builder {
        private final int rows, columns;
        private final QuantConfig config;
        private final byte[] codes;
        private final float[] scales, zeros;
        private int[] groupIndex;

        public Builder(int rows, int columns, QuantConfig config) {
            this.rows = rows;
            this.columns = columns;
            this.config = config;
            this.codes = new byte[rows * columns];
            int n = scaleRows(config, rows) * config.groupsPerRow(columns);
            this.scales = new float[n];
            this.zeros = config.symmetric() ? null : new float[n];
        }

        public void code(int row, int column, int q) {
            codes[row * columns + column] = (byte) q;
        }

        /** Group parameters as {@link UniformQuantizer#fit} returns them; row is ignored per-tensor. */
        public void group(int row, int group, double scale, double zeroOrMin) {
            int p = (scaleRows(config, rows) == 1 ? 0 : row) * config.groupsPerRow(columns) + group;
            scales[p] = (float) scale;
            if (zeros != null) zeros[p] = (float) zeroOrMin;
        }

        public void groupIndex(int[] index) {
            this.groupIndex = index.clone();
        }

        public QuantizedWeight build() {
            return new QuantizedWeight(rows, columns, config, BitPacking.pack(codes, config.bits()), scales, zeros, groupIndex);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantizedWeight q && rows == q.rows && columns == q.columns && config.equals(q.config)
                && Arrays.equals(packedCodes, q.packedCodes) && Arrays.equals(scales, q.scales)
                && Arrays.equals(zeros, q.zeros) && Arrays.equals(groupIndex, q.groupIndex);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(packedCodes) * 31 + Arrays.hashCode(scales);
    }

    @Override
    public String toString() {
        return "QuantizedWeight[" + rows + "x" + columns + " " + config.label() + ", " + String.format("%.3f", bitsPerWeight()) + " bits/weight]";
    }
}
