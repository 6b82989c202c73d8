package lowbit.io.gguf;

import java.util.Arrays;

/**
 * A tensor as a GGUF file describes it.
 *
 * @param dims     ne0, ne1, ... in GGUF order: ne0 is the innermost (contiguous) dimension, so a linear
 *                 weight [out, in] in PyTorch order is stored as dims {in, out}
 * @param offset   byte offset of the data from the start of the file's data section
 * @param byteSize bytes the data takes
 */
public record GgufTensor(String name, GgmlType type, long[] dims, long offset, long byteSize) {
    public GgufTensor {
        dims = dims.clone();
    }

    @Override
    public long[] dims() {
        return dims.clone();
    }

    public int nDims() {
        return dims.length;
    }

    public long elements() {
        long n = 1;
        for (long d : dims) n *= d;
        return n;
    }

    /** The shape in PyTorch order (outermost first), i.e. the dims reversed. */
    public long[] shape() {
        long[] s = new long[dims.length];
        for (int i = 0; i < dims.length; i++) s[i] = dims[dims.length - 1 - i];
        return s;
    }

    @Override
    public String toString() {
        return name + " " + type + Arrays.toString(dims);
    }
}
