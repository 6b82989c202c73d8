package lowbit.quant;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class BitPackingTest {
    @Test
    void threeBitCodesStraddleBytesLsbFirst() {
        // codes 1..7,0 as 3-bit fields from bit 0 up: 0b11_010_001 = 209, 0b0_101_100_0 = 88, 0b000_111_11 = 31
        assertArrayEquals(new byte[] {(byte) 209, 88, 31}, BitPacking.pack(new byte[] {1, 2, 3, 4, 5, 6, 7, 0}, 3));
    }

    @Test
    void fourBitIsNibblesLowFirst() {
        assertArrayEquals(new byte[] {(byte) 0x21, (byte) 0xF3}, BitPacking.pack(new byte[] {1, 2, 3, 15}, 4));
    }

    @Test
    void roundTripsEveryWidth() {
        Random rnd = new Random(7);
        for (int bits = 1; bits <= 8; bits++) {
            byte[] codes = new byte[1001];
            for (int i = 0; i < codes.length; i++) codes[i] = (byte) rnd.nextInt(1 << bits);
            byte[] packed = BitPacking.pack(codes, bits);
            assertEquals((1001 * bits + 7) / 8, packed.length);
            assertArrayEquals(codes, BitPacking.unpack(packed, bits, codes.length), "bits=" + bits);
        }
    }

    @Test
    void refusesCodesWiderThanTheField() {
        assertThrows(IllegalArgumentException.class, () -> BitPacking.pack(new byte[] {4}, 2));
    }
}
