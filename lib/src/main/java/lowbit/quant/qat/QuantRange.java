package lowbit.quant.qat;

/**
 * The integer code range [qmin, qmax] of a fake-quantized tensor. Signed (symmetric) ranges are the two's
 * complement ones torch uses, [-2^(b-1), 2^(b-1) - 1]; unsigned (asymmetric) ones are [0, 2^b - 1].
 */
public record QuantRange(int qmin, int qmax) {
    public static final int MIN_BITS = 2;
    public static final int MAX_BITS = 8;

    public QuantRange {
        if (qmin >= qmax) throw new IllegalArgumentException("quant range needs qmin < qmax, got [" + qmin + ", " + qmax + "]");
    }

    public static QuantRange of(int bits, boolean symmetric) {
        return symmetric ? signed(bits) : unsigned(bits);
    }

    public static QuantRange signed(int bits) {
        checkBits(bits);
        return new QuantRange(-(1 << (bits - 1)), (1 << (bits - 1)) - 1);
    }

    public static QuantRange unsigned(int bits) {
        checkBits(bits);
        return new QuantRange(0, (1 << bits) - 1);
    }

    private static void checkBits(int bits) {
        if (bits < MIN_BITS || bits > MAX_BITS)
            throw new IllegalArgumentException("fake-quant bits must be " + MIN_BITS + ".." + MAX_BITS + ", got " + bits);
    }
}
