package lowbit.quant;

import java.util.Map;

/**
 * A quantized weight matrix [rows][columns] as it is stored: a uniform grid ({@link QuantizedWeight}) or BiLLM's
 * binarization ({@link lowbit.quant.billm.BillmWeight}). {@link #dequantize()} gives, exactly, the float weights
 * the runtime runs with.
 */
public interface QuantizedTensor {
    int rows();

    int columns();

    /** The float weights, row-major [rows][columns]. */
    float[] dequantize();

    /** Every bit the stored form takes (codes, bitmaps, scales, zeros, indices). */
    long storageBits();

    default double bitsPerWeight() {
        return (double) storageBits() / ((long) rows() * columns());
    }

    /** What the quantized model's manifest and provenance record as its grid. */
    Map<String, Object> describe();
}
