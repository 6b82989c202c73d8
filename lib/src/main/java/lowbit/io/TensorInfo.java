package lowbit.io;

import java.util.Arrays;

/**
 * A tensor as stored in a checkpoint. The shape is in PyTorch order (a linear weight is [out, in]),
 * whatever order the file format uses; dtype is the storage type as the format names it (F32, BF16, Q4_1, ...).
 */
public record TensorInfo(String name, String dtype, long[] shape) {
    public long elements() {
        long n = 1;
        for (long d : shape) n *= d;
        return n;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape);
    }
}
