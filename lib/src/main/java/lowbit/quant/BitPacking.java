package lowbit.quant;

/**
 * Codes of b bits packed back to back, least significant bit first, into bytes (a 3-bit code may straddle
 * two bytes). One layout for every width keeps the format simple; 4- and 8-bit codes come out as the usual
 * nibble and byte layouts.
 */
public final class BitPacking {
    private BitPacking() {}

    public static int packedBytes(long count, int bits) {
        long b = (count * bits + 7) / 8;
        if (b > Integer.MAX_VALUE) throw new IllegalArgumentException(count + " codes of " + bits + " bits do not fit one array");
        return (int) b;
    }

    public static byte[] pack(byte[] codes, int bits) {
        checkBits(bits);
        byte[] out = new byte[packedBytes(codes.length, bits)];
        int mask = (1 << bits) - 1;
        long bit = 0;
        for (byte c : codes) {
            int v = c & 0xFF;
            if (v > mask) throw new IllegalArgumentException("code " + v + " does not fit " + bits + " bits");
            int byteIndex = (int) (bit >>> 3), shift = (int) (bit & 7);
            int word = v << shift;
            out[byteIndex] |= (byte) word;
            if (shift + bits > 8) out[byteIndex + 1] |= (byte) (word >>> 8);
            bit += bits;
        }
        return out;
    }

    public static byte[] unpack(byte[] packed, int bits, int count) {
        checkBits(bits);
        if (packed.length < packedBytes(count, bits))
            throw new IllegalArgumentException(count + " codes of " + bits + " bits need " + packedBytes(count, bits)
                    + " bytes, got " + packed.length);
        byte[] out = new byte[count];
        int mask = (1 << bits) - 1;
        long bit = 0;
        for (int i = 0; i < count; i++) {
            int byteIndex = (int) (bit >>> 3), shift = (int) (bit & 7);
            int word = packed[byteIndex] & 0xFF;
            if (shift + bits > 8) word |= (packed[byteIndex + 1] & 0xFF) << 8;
            out[i] = (byte) ((word >>> shift) & mask);
            bit += bits;
        }
        return out;
    }

    private static void checkBits(int bits) {
        if (bits < 1 || bits > 8) throw new IllegalArgumentException("code width must be 1..8 bits, got " + bits);
    }
}
