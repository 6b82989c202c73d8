package lowbit.checkpoint.hf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import lowbit.quant.BitPacking;

/**
 * Codes as a dense bit stream in little-endian int32 words (code i at bit i b, least significant first, a code may
 * straddle two words, the last word zero-padded): how GPTQ packs along a column and compressed-tensors along a row. It
 * is {@link BitPacking}'s stream read four bytes at a time.
 */
final class Int32Packing {
    private Int32Packing() {}

    static int words(long codes, int bits) {
        return (int) ((codes * bits + 31) / 32);
    }

    static int[] pack(byte[] codes, int bits) {
        int[] out = new int[words(codes.length, bits)];
        ByteBuffer b = ByteBuffer.allocate(4 * out.length).order(ByteOrder.LITTLE_ENDIAN);
        b.put(BitPacking.pack(codes, bits)).rewind();
        b.asIntBuffer().get(out);
        return out;
    }

    static byte[] unpack(int[] words, int bits, int codes) {
        ByteBuffer b = ByteBuffer.allocate(4 * words.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(words);
        return BitPacking.unpack(b.array(), bits, codes);
    }
}
