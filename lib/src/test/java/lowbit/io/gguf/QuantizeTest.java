package lowbit.io.gguf;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/**
 * Quantize and Dequantize against llama.cpp's ggml itself. The fixtures under resources/gguf/quants are made
 * by make_fixtures.c there, linked to llama.cpp's libggml-base (regenerate: see README.md in that folder):
 * 6 rows of 512 floats (weight-like and large, heavy-tailed, zero blocks, constants, values on a grid with
 * exact rounding ties, outliers, all-positive and subnormal-scale values) and a log-normal importance vector
 * with zero columns, quantized by
 * ggml_quantize_chunk to every type without and with the importance, and dequantized by ggml's to_float.
 */
class QuantizeTest {
    private static final int ROWS = 6, COLS = 512;
    private static final List<GgmlType> TYPES = List.of(GgmlType.F32, GgmlType.F16, GgmlType.BF16, GgmlType.Q8_0,
            GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q2_K, GgmlType.Q3_K,
            GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K);

    private static byte[] resource(String name) {
        try (InputStream in = QuantizeTest.class.getResourceAsStream("/gguf/quants/" + name)) {
            assertNotNull(in, "missing fixture " + name);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static float[] floats(byte[] b) {
        float[] f = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(f);
        return f;
    }

    private static float[] dequantize(GgmlType type, byte[] q, int elements) {
        float[] y = new float[elements];
        Dequantize.dequantize(type, ByteBuffer.wrap(q), elements, y);
        return y;
    }

    private static void assertBitsEqual(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++)
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i]))
                fail(what + ": element " + i + " (row " + i / COLS + ") is " + got[i] + ", ggml has " + want[i]);
    }

    private static void assertBytesEqual(byte[] want, byte[] got, GgmlType type, String what) {
        assertEquals(want.length, got.length, what + " size");
        int rowBytes = (int) type.byteSize(COLS);
        for (int i = 0; i < want.length; i++)
            if (want[i] != got[i])
                fail(what + ": byte " + i + " (row " + i / rowBytes + ", block " + (i % rowBytes) / type.typeSize
                        + ", offset " + (i % rowBytes) % type.typeSize + ") is " + (got[i] & 0xFF) + ", ggml wrote "
                        + (want[i] & 0xFF));
    }

    @Test
    void everyTypeMatchesGgmlByteForByteWithAndWithoutImportance() {
        float[] x = floats(resource("input.f32"));
        float[] importance = floats(resource("importance.f32"));
        assertEquals(ROWS * COLS, x.length);
        assertEquals(COLS, importance.length);
        for (GgmlType type : TYPES) {
            assertTrue(Quantize.isQuantizable(type), type.name());
            for (boolean weighted : new boolean[] {false, true}) {
                String name = type.name() + (weighted ? ".imatrix" : "");
                byte[] q = Quantize.quantize(type, x, ROWS, COLS, weighted ? importance : null);
                assertBytesEqual(resource(name + ".bin"), q, type, name);
                assertBitsEqual(floats(resource(name + ".dequant.f32")), dequantize(type, q, x.length), name + " dequantized");
            }
        }
    }

    @Test
    void importanceChangesTheTypesWhoseRoutinesUseIt() {
        // guards the fixtures themselves: a generator that dropped the importance would make the test above vacuous
        for (GgmlType type : TYPES) {
            boolean same = Arrays.equals(resource(type.name() + ".bin"), resource(type.name() + ".imatrix.bin"));
            boolean ignores = type == GgmlType.F32 || type == GgmlType.F16 || type == GgmlType.BF16 || type == GgmlType.Q8_0;
            assertEquals(ignores, same, type.name());
        }
    }

    @Test
    void q8_0ByHand() {
        // amax 127 gives d = 1 (fp16 0x3C00), so q = roundf(x): halves go away from zero, unlike Math.round
        float[] x = new float[32];
        float[] v = {127f, 2.5f, -2.5f, 0.5f, -0.5f, 1.49f, -126.6f, 0f};
        System.arraycopy(v, 0, x, 0, v.length);
        byte[] q = Quantize.quantize(GgmlType.Q8_0, x, 1, 32, null);
        assertEquals(34, q.length);
        assertEquals(0x00, q[0] & 0xFF);
        assertEquals(0x3C, q[1] & 0xFF);
        assertArrayEquals(new byte[] {127, 3, -3, 1, -1, 1, -127, 0}, Arrays.copyOfRange(q, 2, 10));
    }

    @Test
    void q4_1OfARamp() {
        // x = 0..31: min 0, d = 31/15 = 2.0666.. -> fp16 2.06640625 (0x4022); q = round(15 j / 31), never a tie
        float[] x = new float[32];
        for (int j = 0; j < 32; j++) x[j] = j;
        byte[] q = Quantize.quantize(GgmlType.Q4_1, x, 1, 32, null);
        assertEquals(20, q.length);
        assertEquals(0x4022, (q[0] & 0xFF) | (q[1] & 0xFF) << 8);
        assertEquals(0, q[2] | q[3]);
        for (int j = 0; j < 16; j++) {
            assertEquals(Math.round(15.0 * j / 31), q[4 + j] & 0x0F, "element " + j);
            assertEquals(Math.round(15.0 * (j + 16) / 31), (q[4 + j] & 0xFF) >>> 4, "element " + (j + 16));
        }
    }

    @Test
    void halfAndBfloat16RoundToNearestEvenAsGgml() {
        // 1 + 2^-11 lies halfway between fp16 1 and 1 + 2^-10: even is 1 (0x3C00); 1 + 3*2^-11 rounds up to 0x3C02.
        // BF16: 1 + 2^-8 is halfway, even is 0x3F80; 1 + 3*2^-8 rounds up to 0x3F82; NaN is kept quiet.
        float[] x = {1 + 0x1p-11f, 1 + 3 * 0x1p-11f};
        byte[] h = Quantize.quantize(GgmlType.F16, x, 1, 2, null);
        assertArrayEquals(new byte[] {0x00, 0x3C, 0x02, 0x3C}, h);
        float[] y = {1 + 0x1p-8f, 1 + 3 * 0x1p-8f, Float.intBitsToFloat(0x7F800001)};
        byte[] b = Quantize.quantize(GgmlType.BF16, y, 1, 3, null);
        assertArrayEquals(new byte[] {(byte) 0x80, 0x3F, (byte) 0x82, 0x3F, (byte) 0xC0, (byte) 0x7F}, b);
    }

    @Test
    void nearestIntIsGgmlsRoundHalfToEven() {
        assertEquals(2, Quantize.nearestInt(2.5f));
        assertEquals(4, Quantize.nearestInt(3.5f));
        assertEquals(-2, Quantize.nearestInt(-2.5f));
        assertEquals(-3, Quantize.nearestInt(-2.6f));
        assertEquals(0, Quantize.nearestInt(-0.4f));
    }

    @Test
    void rowsAreIndependentOfBatchingAndThreads() throws Exception {
        // 300 rows of 512 span several parallel work items; each row alone, and the whole on one thread, must agree
        int rows = 300, cols = 512;
        float[] x = new float[rows * cols];
        float[] importance = new float[cols];
        long seed = 12345;
        for (int i = 0; i < x.length; i++) {
            seed = seed * 6364136223846793005L + 1442695040888963407L;
            x[i] = (float) ((seed >>> 40) / (double) (1 << 24) - 0.5) * (1 + i % 7);
        }
        for (int j = 0; j < cols; j++) importance[j] = 1 + j % 5;
        for (GgmlType type : List.of(GgmlType.Q4_K, GgmlType.Q5_1)) {
            byte[] all = Quantize.quantize(type, x, rows, cols, importance);
            int rowBytes = (int) type.byteSize(cols);
            for (int r = 0; r < rows; r += 37) {
                byte[] one = Quantize.quantize(type, Arrays.copyOfRange(x, r * cols, (r + 1) * cols), 1, cols, importance);
                assertArrayEquals(one, Arrays.copyOfRange(all, r * rowBytes, (r + 1) * rowBytes), type + " row " + r);
            }
            ForkJoinPool single = new ForkJoinPool(1);
            try {
                byte[] serial = single.submit(() -> Quantize.quantize(type, x, rows, cols, importance)).get();
                assertArrayEquals(all, serial, type.name());
            } finally {
                single.shutdown();
            }
        }
    }

    @Test
    void fitsAndQuantizable() {
        assertTrue(Quantize.fits(GgmlType.Q4_K, 512));
        assertFalse(Quantize.fits(GgmlType.Q4_K, 576 + 32));
        assertTrue(Quantize.fits(GgmlType.Q4_0, 576));
        assertTrue(Quantize.fits(GgmlType.F16, 7));
        assertFalse(Quantize.fits(GgmlType.Q8_0, 0));
        List<GgmlType> quantizable = new ArrayList<>();
        for (GgmlType t : GgmlType.values()) if (Quantize.isQuantizable(t)) quantizable.add(t);
        assertEquals(TYPES.stream().sorted().toList(), quantizable);
        assertFalse(Quantize.isQuantizable(null));
    }

    @Test
    void badInputIsRefusedWithAClearMessage() {
        float[] x = new float[512];
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Quantize.quantize(GgmlType.IQ2_XXS, x, 1, 512, null));
        assertTrue(e.getMessage().contains("cannot quantize to IQ2_XXS (quantizable: F32, F16, Q4_0"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Quantize.quantize(GgmlType.Q4_K, new float[576], 1, 576, null));
        assertEquals("row length 576 is not a multiple of Q4_K's block size 256", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Quantize.quantize(GgmlType.Q4_K, x, 1, 512, new float[256]));
        assertEquals("importance vector has 256 weights, expected one per column (512) for Q4_K", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Quantize.quantize(GgmlType.Q8_0, x, 2, 512, null));
        assertEquals("expected 2 x 512 = 1024 floats to quantize to Q8_0, got 512", e.getMessage());
    }
}
