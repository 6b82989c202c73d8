package lowbit.quant;

import lowbit.quant.activation.DeviceFakeQuant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import org.junit.jupiter.api.Test;

/**
 * The host side of the GPU's quantized layers, without a GPU: PackedLinear's device layout on a hand-computed case, its
 * choice of dequantization arithmetic, its memory size, the constants the kernels share with Java, and the one-line
 * refusals of PackedLinear, DeviceRtn and DeviceFakeQuant (checked before any GPU is touched, so null stands for it).
 */
class PackedLinearLayoutTest {
    private static QuantizedWeight weight(int rows, int cols, QuantConfig cfg, byte[] codes, float[] zeros) {
        int n = (cfg.groupSize() == QuantConfig.PER_TENSOR ? 1 : rows) * cfg.groupsPerRow(cols);
        float[] scales = new float[n];
        Arrays.fill(scales, 0.5f);
        return new QuantizedWeight(rows, cols, cfg, BitPacking.pack(codes, cfg.bits()), scales, zeros, null);
    }

    @Test
    void rowsArePaddedTo32CodesSoAChunkIsBitsWords() {
        // 2 rows of 33 3-bit codes: row 0 all 7, row 1 codes 0, 1, ..., 7, 0, 1, ... Each row is padded to 64 codes
        // (2 chunks of 3 words = 24 bytes). Row 0: 33 x 3 = 99 one-bits: 12 bytes of 0xFF, then 0b111, then zeros.
        // Row 1 starts at byte 24: 0..7 LSB first = 8<<0... = 0 | 1<<3 | 2<<6 | 3<<9 | 4<<12 | 5<<15 | 6<<18 | 7<<21
        // = 0xFAC688, bytes 88 C6 FA, repeating every 3 bytes; the 33rd code (0) at bits 96..98 of the row.
        int cols = 33;
        byte[] codes = new byte[2 * cols];
        for (int c = 0; c < cols; c++) {
            codes[c] = 7;
            codes[cols + c] = (byte) (c % 8);
        }
        QuantConfig cfg = QuantConfig.group(3, 32);
        byte[] layout = PackedLinear.deviceLayout(weight(2, cols, cfg, codes, new float[4]));
        byte[] want = new byte[48];
        Arrays.fill(want, 0, 12, (byte) 0xFF);
        want[12] = 7;
        for (int i = 0; i < 4; i++) {
            want[24 + 3 * i] = (byte) 0x88;
            want[25 + 3 * i] = (byte) 0xC6;
            want[26 + 3 * i] = (byte) 0xFA;
        }
        assertArrayEquals(want, layout);
        assertEquals(2 * 2 * 3, PackedLinear.rowWords(cols, 3) * 2);
        // 2 x 2 words of codes (x 4 bytes) + 4 scales + 4 zeros, and a bias of 2
        assertEquals(48 + 16 + 16, PackedLinear.bytesNeeded(weight(2, cols, cfg, codes, new float[4]), false));
        assertEquals(48 + 16 + 16 + 8, PackedLinear.bytesNeeded(weight(2, cols, cfg, codes, new float[4]), true));
    }

    @Test
    void rowsOfWhole32CodeChunksKeepTheBitPackingLayout() {
        byte[] codes = new byte[4 * 64];
        for (int i = 0; i < codes.length; i++) codes[i] = (byte) (i * 7 % 16);
        QuantizedWeight w = weight(4, 64, QuantConfig.group(4, 32), codes, new float[8]);
        assertArrayEquals(w.packedCodes(), PackedLinear.deviceLayout(w));
    }

    @Test
    void theDequantizationArithmeticFollowsTheZeros() {
        QuantConfig g = QuantConfig.group(4, 32);
        assertEquals(PackedLinear.Mode.INT, PackedLinear.mode(g, new float[] {0, 3, 15, -2}));
        assertEquals(PackedLinear.Mode.INT, PackedLinear.mode(g.withSymmetric(true), null));
        assertEquals(PackedLinear.Mode.INT, PackedLinear.mode(g, new float[] {1 << 20}));
        assertEquals(PackedLinear.Mode.FP64, PackedLinear.mode(g, new float[] {1, 2.5f}));
        assertEquals(PackedLinear.Mode.FP64, PackedLinear.mode(g, new float[] {(1 << 20) + 1}));
        assertEquals(PackedLinear.Mode.FMIN, PackedLinear.mode(QuantConfig.q4_1(), new float[] {-0.25f}));
    }

    @Test
    void kernelsAndJavaShareTheirConstants() throws IOException {
        Path kernels = Path.of(System.getProperty("user.dir")).resolve("../kernels").normalize();
        String quant = Files.readString(kernels.resolve("quant.cu")), gemm = Files.readString(kernels.resolve("dequant_gemm.cu"));
        for (ZeroPoint z : ZeroPoint.values()) assertEquals(z.ordinal(), define(quant, "ZP_" + z.name()), "quant.cu ZP_" + z);
        for (PackedLinear.Mode m : PackedLinear.Mode.values()) assertEquals(m.ordinal(), define(gemm, "MODE_" + m.name()), "dequant_gemm.cu MODE_" + m);
    }

    private static int define(String source, String name) {
        Matcher m = Pattern.compile("#define\\s+" + name + "\\s+(\\d+)").matcher(source);
        if (!m.find()) throw new AssertionError("no #define " + name);
        return Integer.parseInt(m.group(1));
    }

    @Test
    void refusalsAreOneLineNamingWhatWasExpected() {
        byte[] codes = new byte[2 * 10];
        QuantizedWeight five = weight(2, 10, new QuantConfig(5, false, QuantConfig.PER_CHANNEL, ZeroPoint.INTEGER, ScaleFormat.F16, false),
                codes, new float[2]);
        assertEquals("model.layers.0.mlp.up_proj: the GPU's dequantize-GEMM takes 2, 3, 4 or 8-bit codes, got 5 bits (use --device cpu)",
                assertThrows(IllegalArgumentException.class, () -> PackedLinear.upload(null, "model.layers.0.mlp.up_proj", five, null)).getMessage());
        QuantizedWeight g = weight(2, 10, QuantConfig.group(4, 5), codes, new float[4]);
        QuantizedWeight badIndex = new QuantizedWeight(2, 10, g.config(), g.packedCodes(), g.scales(), g.zeros(), new int[] {0, 1, 0, 1, 2, 0, 0, 0, 0, 0});
        assertEquals("l: group index of column 4 is 2, expected 0..1",
                assertThrows(IllegalArgumentException.class, () -> PackedLinear.upload(null, "l", badIndex, null)).getMessage());
        assertEquals("l: bias has 3 entries, expected 2",
                assertThrows(IllegalArgumentException.class, () -> PackedLinear.upload(null, "l", g, new float[3])).getMessage());
        assertEquals("w: weight [0][1] is NaN; cannot quantize a tensor with NaN or Inf",
                assertThrows(IllegalArgumentException.class,
                        () -> DeviceRtn.quantize(null, "w", new float[] {0, Float.NaN}, 1, 2, QuantConfig.perChannel(4))).getMessage());
        assertEquals("w: weight has 3 elements, expected 2x2",
                assertThrows(IllegalArgumentException.class, () -> DeviceRtn.quantize(null, "w", new float[3], 2, 2, QuantConfig.perChannel(4))).getMessage());
        assertEquals("activation bits must be 2..8, got 9",
                assertThrows(IllegalArgumentException.class, () -> DeviceFakeQuant.perToken(null, null, 1, 8, 9)).getMessage());
        assertEquals("static activation scale must be positive and finite, got 0.0",
                assertThrows(IllegalArgumentException.class, () -> DeviceFakeQuant.perTensor(null, null, 1, 8, 8, 0f)).getMessage());
        assertEquals("KV group size must divide headDim 64, got 48",
                assertThrows(IllegalArgumentException.class, () -> DeviceFakeQuant.kv(null, null, 4, 2, 64, 4, 48)).getMessage());
        assertEquals("KV bits must be 2..8, got 1",
                assertThrows(IllegalArgumentException.class, () -> DeviceFakeQuant.kv(null, null, 4, 2, 64, 1, 64)).getMessage());
    }
}
