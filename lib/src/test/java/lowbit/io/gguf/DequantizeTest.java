package lowbit.io.gguf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DequantizeTest {
    @TempDir Path dir;

    static Path resource(String name) {
        try {
            return Path.of(DequantizeTest.class.getResource("/gguf/" + name).toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    private static byte[] bytes(int... v) {
        byte[] b = new byte[v.length];
        for (int i = 0; i < v.length; i++) b[i] = (byte) v[i];
        return b;
    }

    /** One block of the given size: header bytes, then the rest filled with {@code fill}. */
    private static byte[] block(int size, int fill, int... head) {
        byte[] b = new byte[size];
        java.util.Arrays.fill(b, (byte) fill);
        for (int i = 0; i < head.length; i++) b[i] = (byte) head[i];
        return b;
    }

    private float[] roundTrip(int typeId, long ne0, byte[] data) {
        GgufBuilder g = new GgufBuilder();
        g.tensor("t", typeId, new long[] {ne0}, data);
        try (GgufFile f = GgufFile.open(g.write(dir.resolve("t.gguf")))) {
            return f.dequantize("t");
        }
    }

    @Test
    void q8_0ByHand() {
        // d = 0.5 (fp16 0x3800); q = -128, -1, 0, 1, 127, then 5s. Second block d = -1 (0xBC00), q = 3s.
        byte[] b0 = block(34, 5, 0x00, 0x38, 0x80, 0xFF, 0x00, 0x01, 0x7F);
        byte[] b1 = block(34, 3, 0x00, 0xBC);
        byte[] data = new byte[68];
        System.arraycopy(b0, 0, data, 0, 34);
        System.arraycopy(b1, 0, data, 34, 34);
        float[] x = roundTrip(8, 64, data);
        assertArrayEquals(new float[] {-64f, -0.5f, 0f, 0.5f, 63.5f, 2.5f}, java.util.Arrays.copyOf(x, 6));
        assertEquals(2.5f, x[31]);
        assertEquals(-3f, x[32]);
        assertEquals(-3f, x[63]);
    }

    @Test
    void q4_0ByHand() {
        // d = 2 (0x4000). Byte j holds element j (low nibble) and element j+16 (high nibble); x = (q-8)*d.
        // qs[0] = 0x0F: x0 = (15-8)*2 = 14, x16 = (0-8)*2 = -16; qs[1] = 0x8A: x1 = (10-8)*2 = 4, x17 = 0;
        // qs[15] = 0x3C: x15 = (12-8)*2 = 8, x31 = (3-8)*2 = -10; others 0x88 -> 0.
        byte[] b = block(18, 0x88, 0x00, 0x40, 0x0F, 0x8A);
        b[17] = 0x3C;
        float[] x = roundTrip(2, 32, b);
        assertEquals(14f, x[0]);
        assertEquals(4f, x[1]);
        assertEquals(0f, x[2]);
        assertEquals(8f, x[15]);
        assertEquals(-16f, x[16]);
        assertEquals(0f, x[17]);
        assertEquals(-10f, x[31]);
    }

    @Test
    void q4_1ByHand() {
        // d = 0.25 (0x3400), m = -1 (0xBC00); x = q*d + m.
        // qs[0] = 0xF0: x0 = 0*0.25-1 = -1, x16 = 15*0.25-1 = 2.75; qs[1] = 0x31: x1 = -0.75, x17 = -0.25; rest 0 -> -1.
        byte[] b = block(20, 0x00, 0x00, 0x34, 0x00, 0xBC, 0xF0, 0x31);
        float[] x = roundTrip(3, 32, b);
        assertEquals(-1f, x[0]);
        assertEquals(-0.75f, x[1]);
        assertEquals(-1f, x[2]);
        assertEquals(2.75f, x[16]);
        assertEquals(-0.25f, x[17]);
        assertEquals(-1f, x[31]);
    }

    @Test
    void f16AndBf16ByHand() {
        // F16: 0x3C00 = 1, 0xC000 = -2, 0x0001 = 2^-24 (smallest subnormal), 0x7BFF = 65504
        assertArrayEquals(new float[] {1f, -2f, 0x1p-24f, 65504f},
                roundTrip(1, 4, bytes(0x00, 0x3C, 0x00, 0xC0, 0x01, 0x00, 0xFF, 0x7B)));
        // BF16 is the top half of a float32: 0x3F80 = 1, 0xC040 = -3, 0x3EAB ~ 0.333984375
        assertArrayEquals(new float[] {1f, -3f, 0.333984375f}, roundTrip(30, 3, bytes(0x80, 0x3F, 0x40, 0xC0, 0xAB, 0x3E)));
    }

    /** Every supported type against gguf.quants.dequantize on random but valid blocks (make_gguf_fixtures.py). */
    @Test
    void matchesPythonGgufPackage() throws Exception {
        JsonNode expected;
        try (InputStream in = DequantizeTest.class.getResourceAsStream("/gguf/quants_expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
        int checked = 0;
        try (GgufFile f = GgufFile.open(resource("quants.gguf"))) {
            for (Iterator<Map.Entry<String, JsonNode>> it = expected.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                GgufTensor t = f.tensor(e.getKey());
                assertEquals(e.getValue().get("type").asText(), t.type().name());
                JsonNode ne = e.getValue().get("ne");
                long[] dims = new long[ne.size()];
                for (int i = 0; i < dims.length; i++) dims[i] = ne.get(i).asLong();
                assertArrayEquals(dims, t.dims(), e.getKey());
                JsonNode values = e.getValue().get("values");
                float[] want = new float[values.size()];
                for (int i = 0; i < want.length; i++) want[i] = (float) values.get(i).asDouble();
                assertArrayEquals(want, f.dequantize(e.getKey()), e.getKey() + " differs from gguf.quants.dequantize");
                checked++;
            }
        }
        assertEquals(9, checked);
    }

    @Test
    void unsupportedTypeIsNamed() {
        // IQ2_XXS (id 16): 256 elements in a 66-byte block
        GgufBuilder g = new GgufBuilder();
        g.tensor("iq2_unsupported", 16, new long[] {256}, new byte[66]);
        Path file = g.write(dir.resolve("iq2.gguf"));
        try (GgufFile f = GgufFile.open(file)) {
            FormatException unsupported = assertThrows(FormatException.class, () -> f.dequantize("iq2_unsupported"));
            assertTrue(unsupported.getMessage().contains("unsupported tensor type IQ2_XXS for tensor 'iq2_unsupported'"), unsupported.getMessage());
            assertTrue(unsupported.getMessage().contains("iq2.gguf"), unsupported.getMessage());
            assertTrue(unsupported.getMessage().contains("supported: F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16"),
                    unsupported.getMessage());
        }
    }

    @Test
    void largeTensorSpansManyParallelChunks() {
        // 5000 Q8_0 blocks > 2 chunks of work; block i has d = 1 and every q = i % 100, so chunk seams would show
        byte[] data = new byte[5000 * 34];
        for (int i = 0; i < 5000; i++) {
            data[i * 34 + 1] = 0x3C;
            java.util.Arrays.fill(data, i * 34 + 2, i * 34 + 34, (byte) (i % 100));
        }
        float[] x = roundTrip(8, 5000 * 32, data);
        for (int i = 0; i < x.length; i++) assertEquals((i / 32) % 100, x[i], 0f, "element " + i);
    }
}
