package lowbit.quant.billm;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedTensor;

/**
 * A BiLLM-binarized weight [rows][columns] as it is stored. Columns are cut into blocks of {@code blockSize} (the
 * last one shorter when the size does not divide the width); in each block some columns are salient (the same for
 * every row) and the rest of each row is split into a concentrated and a sparse group. Per weight:
 * <ul>
 *   <li>salient: (m1 + a1 s1) + (m2 + a2 s2), two orders of residual binarization;</li>
 *   <li>concentrated or sparse: m + a s with that group's own mean and scale;</li>
 * </ul>
 * s = +1 or -1, with m1, a1, m2, a2, mc, ac, ms, as per row and block.
 *
 * <p>Stored bits ({@link #storageBits()}, what bits_per_weight reports): the salient-column bitmap (one bit per
 * column), one sign per weight, a second sign per salient weight, one concentrated/sparse bit per non-salient
 * weight, and 8 parameters per row and block in the scale format (fp16 by default, so the parameters add 128 bits
 * per row and block: about 1 bit per weight at block size 128). {@link #paperBitsPerWeight()} is the paper's
 * count, which leaves the flags and the parameters out.
 *
 * @param salientColumns  bitmap over the columns, packed LSB-first (BitPacking, 1 bit)
 * @param signs           [rows][columns] first-order sign bits (1 = +1), packed
 * @param residualSigns   second-order sign bits of the salient weights, row by row, columns ascending, packed
 * @param sparse          group bits of the non-salient weights (1 = sparse), row by row, columns ascending, packed
 * @param params          [rows][blocks][8]: m1, a1, m2, a2 (salient), mc, ac (concentrated), ms, as (sparse), each
 *                        a value of the scale format
 */
public record BillmWeight(int rows, int columns, int blockSize, QuantConfig.ScaleFormat scaleFormat, byte[] salientColumns,
                          byte[] signs, byte[] residualSigns, byte[] sparse, float[] params) implements QuantizedTensor {
    /** Parameters per row and block. */
    public static final int PARAMS = 8;
    public static final String METHOD = "billm";

    public BillmWeight {
        if (rows < 1 || columns < 1) throw new IllegalArgumentException("a BiLLM weight needs rows and columns >= 1, got " + rows + "x" + columns);
        if (blockSize < 1) throw new IllegalArgumentException("BiLLM block size must be >= 1, got " + blockSize);
        if (scaleFormat == null) throw new IllegalArgumentException("a scale format is required");
        check("salient column bitmap", salientColumns, columns);
        int salient = salientCount(salientColumns, columns);
        check("signs", signs, (long) rows * columns);
        check("residual signs", residualSigns, (long) rows * salient);
        check("sparse-group bits", sparse, (long) rows * (columns - salient));
        long expected = (long) rows * blocks(columns, blockSize) * PARAMS;
        if (params.length != expected)
            throw new IllegalArgumentException("BiLLM parameters have " + params.length + " entries, expected " + expected
                    + " (" + rows + " rows x " + blocks(columns, blockSize) + " blocks x " + PARAMS + ")");
        for (int i = 0; i < params.length; i++)
            if (!Float.isFinite(params[i]))
                throw new IllegalArgumentException("BiLLM parameter " + i + " is " + params[i] + "; means and scales must be finite");
    }

    private static void check(String what, byte[] bits, long count) {
        if (bits == null || bits.length != BitPacking.packedBytes(count, 1))
            throw new IllegalArgumentException(what + " have " + (bits == null ? "no" : bits.length) + " bytes, expected "
                    + BitPacking.packedBytes(count, 1) + " for " + count + " bits");
    }

    static int blocks(int columns, int blockSize) {
        return (columns + blockSize - 1) / blockSize;
    }

    private static int salientCount(byte[] bitmap, int columns) {
        int n = 0;
        for (byte b : BitPacking.unpack(bitmap, 1, columns)) n += b;
        return n;
    }

    public int blocks() {
        return blocks(columns, blockSize);
    }

    /** Salient columns of the whole matrix. */
    public int salientCount() {
        return salientCount(salientColumns, columns);
    }

    /** The value of a salient weight: (m1 + a1 s1) + (m2 + a2 s2) in double, rounded once to float. */
    static float salientValue(float m1, float a1, boolean s1, float m2, float a2, boolean s2) {
        return (float) (((double) m1 + (s1 ? a1 : -(double) a1)) + ((double) m2 + (s2 ? a2 : -(double) a2)));
    }

    /** The value of a concentrated or sparse weight: m + a s. */
    static float groupValue(float m, float a, boolean s) {
        return (float) ((double) m + (s ? a : -(double) a));
    }

    @Override
    public float[] dequantize() {
        byte[] salient = BitPacking.unpack(salientColumns, 1, columns);
        int k = salientCount();
        byte[] s1 = BitPacking.unpack(signs, 1, rows * columns);
        byte[] s2 = BitPacking.unpack(residualSigns, 1, rows * k);
        byte[] sp = BitPacking.unpack(sparse, 1, rows * (columns - k));
        int blocks = blocks();
        float[] w = new float[rows * columns];
        int i2 = 0, ig = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < columns; c++) {
                int p = (r * blocks + c / blockSize) * PARAMS;
                boolean plus = s1[r * columns + c] != 0;
                if (salient[c] != 0) {
                    w[r * columns + c] = salientValue(params[p], params[p + 1], plus, params[p + 2], params[p + 3], s2[i2++] != 0);
                } else {
                    int g = sp[ig++] != 0 ? 6 : 4;
                    w[r * columns + c] = groupValue(params[p + g], params[p + g + 1], plus);
                }
            }
        return w;
    }

    @Override
    public long storageBits() {
        long k = salientCount();
        return columns + (long) rows * columns + rows * k + rows * (columns - k) + (long) params.length * scaleFormat.bits;
    }

    /**
     * Bits per weight as BiLLM counts them (Huang et al., "BiLLM: Pushing the Limit of Post-Training Quantization for
     * LLMs", ICML 2024, section 3.4, "Extra Storing Bits": N_param = 2 r_salient + 1 (1 - r_salient)): one bit per
     * weight plus one more per salient weight. The paper counts the flags apart (N_storing = 1 + 1/b_size, see
     * {@link #paperFlagBitsPerWeight}) and leaves the means and scales out.
     */
    public double paperBitsPerWeight() {
        return 1.0 + (double) salientCount() / columns;
    }

    /** The paper's flag bits per weight, N_storing = 1 + 1/b_size: the group bit and the salient-column identifier. */
    public double paperFlagBitsPerWeight() {
        return 1.0 + 1.0 / blockSize;
    }

    @Override
    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", METHOD);
        m.put("bits", 1);
        m.put("block_size", blockSize);
        m.put("scale_format", scaleFormat.name().toLowerCase());
        m.put("salient_metric", "hessian");
        return m;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof BillmWeight b && rows == b.rows && columns == b.columns && blockSize == b.blockSize
                && scaleFormat == b.scaleFormat && Arrays.equals(salientColumns, b.salientColumns) && Arrays.equals(signs, b.signs)
                && Arrays.equals(residualSigns, b.residualSigns) && Arrays.equals(sparse, b.sparse) && Arrays.equals(params, b.params);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(signs) * 31 + Arrays.hashCode(params);
    }

    @Override
    public String toString() {
        return String.format("BillmWeight[%dx%d block %d, %d salient columns, %.3f bits/weight stored, %.3f as the paper counts]",
                rows, columns, blockSize, salientCount(), bitsPerWeight(), paperBitsPerWeight());
    }
}
