package lowbit.io.gguf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufFileTest {
    @TempDir Path dir;

    private Path write(GgufBuilder g) {
        return g.write(dir.resolve("test.gguf"));
    }

    private FormatException rejects(Path file, String... fragments) {
        FormatException e = assertThrows(FormatException.class, () -> GgufFile.open(file).close());
        assertEquals(file, e.file());
        for (String f : fragments) assertTrue(e.getMessage().contains(f), "message lacks '" + f + "': " + e.getMessage());
        return e;
    }

    private FormatException rejects(GgufBuilder g, String... fragments) {
        return rejects(write(g), fragments);
    }

    private static GgufBuilder withTensor() {
        GgufBuilder g = new GgufBuilder();
        g.kvString("general.architecture", "test");
        g.f32("w", new long[] {3, 2}, new float[] {1, 2, 3, 4, 5, 6});
        return g;
    }

    @Test
    void metadataOfEveryTypeMatchesPythonWriter() throws Exception {
        JsonNode expected;
        try (InputStream in = getClass().getResourceAsStream("/gguf/metadata_expected.json")) {
            expected = new ObjectMapper().readTree(in);
        }
        try (GgufFile f = GgufFile.open(DequantizeTest.resource("metadata.gguf"))) {
            assertEquals(3, f.version());
            assertTrue(f.tensors().isEmpty());
            List<String> keys = new ArrayList<>(f.metadata().keySet());
            assertEquals(expected.size(), keys.size());
            for (int i = 0; i < expected.size(); i++) {
                JsonNode e = expected.get(i);
                String key = e.get(0).asText();
                assertEquals(key, keys.get(i), "file order");
                Object v = f.metadata().get(key);
                assertEquals(e.get(1).asText(), v instanceof List ? "List" : v.getClass().getSimpleName(), key);
                assertValue(e.get(2), v, key);
            }
            // element types inside arrays follow the same mapping
            assertEquals(List.of(1, 65535), f.metadata().get("t.arr_u16"));
            assertEquals(List.of(0.5f, -1.25f), f.metadata().get("t.arr_f32"));
            assertEquals(List.of(List.of(1, 2), List.of(3)), f.metadata().get("t.nested"));
        }
    }

    private static void assertValue(JsonNode want, Object got, String key) {
        if (want.isArray()) {
            List<?> list = assertInstanceOf(List.class, got, key);
            assertEquals(want.size(), list.size(), key);
            for (int i = 0; i < list.size(); i++) assertValue(want.get(i), list.get(i), key + "[" + i + "]");
        } else if (got instanceof Float f) {
            assertEquals(want.asDouble(), (double) f, 0.0, key);
        } else if (got instanceof Double d) {
            assertEquals(want.asDouble(), d, 0.0, key);
        } else if (got instanceof Integer || got instanceof Long) {
            assertEquals(want.asLong(), ((Number) got).longValue(), key);
        } else if (got instanceof Boolean b) {
            assertEquals(want.asBoolean(), b, key);
        } else {
            assertEquals(want.asText(), got, key);
        }
    }

    @Test
    void readsVersion2AndVersion3WithShapesAndRawBytes() {
        for (int version : new int[] {2, 3}) {
            GgufBuilder g = withTensor();
            g.version = version;
            g.kv("v.u64", 10, o -> o.u64(-1L));
            g.tensor("q", 2, new long[] {32, 1, 1, 2}, new byte[36]);
            try (GgufFile f = GgufFile.open(write(g))) {
                assertEquals(version, f.version());
                assertEquals(-1L, f.metadata().get("v.u64"), "uint64 max wraps to -1");
                assertEquals(32, f.alignment());
                GgufTensor w = f.tensors().get(0);
                assertEquals("w", w.name());
                assertEquals(GgmlType.F32, w.type());
                assertArrayEquals(new long[] {3, 2}, w.dims());
                assertArrayEquals(new long[] {2, 3}, w.shape());
                assertEquals(24, w.byteSize());
                assertEquals(0, w.offset());
                GgufTensor q = f.tensor("q");
                assertEquals(32, q.offset(), "aligned after the 24 bytes of w");
                assertEquals(36, q.byteSize());
                assertEquals(0, f.dataStart() % 32);
                assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, f.dequantize("w"));
                ByteBuffer raw = f.raw("w");
                assertEquals(24, raw.remaining());
                assertEquals(ByteOrder.LITTLE_ENDIAN, raw.order());
                assertEquals(3f, raw.getFloat(8));
                IllegalArgumentException missing = assertThrows(IllegalArgumentException.class, () -> f.dequantize("nope"));
                assertTrue(missing.getMessage().contains("'nope'") && missing.getMessage().contains("test.gguf"));
            }
        }
    }

    @Test
    void customAlignment() {
        GgufBuilder g = new GgufBuilder().alignment(64);
        g.f32("a", new long[] {3}, new float[] {1, 2, 3});
        g.f32("b", new long[] {2}, new float[] {7, 8});
        try (GgufFile f = GgufFile.open(write(g))) {
            assertEquals(64, f.alignment());
            assertEquals(0, f.dataStart() % 64);
            assertEquals(64, f.tensor("b").offset());
            assertArrayEquals(new float[] {7, 8}, f.dequantize("b"));
        }
        GgufBuilder bad = new GgufBuilder();
        bad.kvU32("general.alignment", 24);
        rejects(bad, "general.alignment must be a uint32 power of two, found 24");
    }

    @Test
    void badMagic() {
        GgufBuilder g = withTensor();
        g.magic = 0x4C4C5547; // "GULL"
        rejects(g, "not a GGUF file", "\"GULL\"");
        rejects(GgufBuilder.write(dir.resolve("empty.gguf"), new byte[0]), "magic number", "past the end of the file (0 bytes)");
    }

    @Test
    void unsupportedVersions() {
        GgufBuilder g = withTensor();
        g.version = 1;
        rejects(g, "unsupported GGUF version 1, expected 2 or 3");
        g.version = 0x03000000;
        rejects(g, "big-endian");
        g.version = 4;
        rejects(g, "unsupported GGUF version 4");
    }

    @Test
    void truncatedHeader() {
        byte[] full = withTensor().build();
        for (int cut : new int[] {6, 20, 60, 80, 100}) {
            Path p = GgufBuilder.write(dir.resolve("cut" + cut + ".gguf"), Arrays.copyOf(full, cut));
            rejects(p, "past the end of the file (" + cut + " bytes)");
        }
    }

    @Test
    void absurdCounts() {
        GgufBuilder g = withTensor();
        g.kvCountOverride = 1L << 40;
        rejects(g, "metadata count 1099511627776 is impossible");
        g = withTensor();
        g.tensorCountOverride = -1L;
        rejects(g, "tensor count 18446744073709551615 is impossible");
    }

    @Test
    void stringAndArrayLengthsPastTheEnd() {
        GgufBuilder g = new GgufBuilder();
        g.kv("general.name", 8, o -> o.u64(1_000_000).raw(new byte[] {'a', 'b'}));
        rejects(g, "metadata 'general.name' (a string of 1000000 bytes)", "past the end of the file");

        g = new GgufBuilder();
        g.kv("tokenizer.ggml.tokens", 9, o -> o.u32(8).u64(1L << 50).str("a"));
        rejects(g, "metadata 'tokenizer.ggml.tokens' is an array of 1125899906842624 elements", "cannot fit");

        g = new GgufBuilder();
        g.kv("k", 9, o -> o.u32(77).u64(1));
        rejects(g, "metadata 'k' is an array of unknown value type 77");

        g = new GgufBuilder();
        g.kv("k", 99, o -> o.u32(0));
        rejects(g, "metadata 'k' has unknown value type 99");

        g = new GgufBuilder();
        g.kv("flag", 7, o -> o.u8(2));
        rejects(g, "metadata 'flag' is a bool with byte value 2");

        g = new GgufBuilder();
        g.kv("deep", 9, o -> {
            for (int i = 0; i < 40; i++) o.u32(9).u64(1);
            o.u32(0).u64(0);
        });
        rejects(g, "metadata 'deep' nests arrays deeper than 16");

        g = new GgufBuilder();
        g.kvU32("a", 1).kvU32("a", 2);
        rejects(g, "duplicate metadata key 'a'");
    }

    @Test
    void badTensorInfos() {
        GgufBuilder g = withTensor();
        g.tensor("scalar", 0, new long[0], new byte[0]);
        rejects(g, "tensor 'scalar' has n_dims = 0, expected 1..4");

        g = withTensor();
        g.tensor("five", 0, new long[] {1, 1, 1, 1, 1}, new byte[4]);
        rejects(g, "tensor 'five' has n_dims = 5, expected 1..4");

        g = withTensor();
        g.tensor("odd", 2, new long[] {48, 2}, new byte[54]);
        rejects(g, "tensor 'odd' of type Q4_0 has ne0 = 48, not a multiple of the block size 32");

        g = withTensor();
        g.tensor("retired", 4, new long[] {32}, new byte[20]);
        rejects(g, "tensor 'retired' has unknown ggml type id 4");

        g = withTensor();
        g.tensor("future", 999, new long[] {32}, new byte[20]);
        rejects(g, "tensor 'future' has unknown ggml type id 999");

        g = withTensor();
        g.f32("w", new long[] {1}, new float[] {1});
        rejects(g, "duplicate tensor name 'w'");

        g = withTensor();
        g.f32("late", new long[] {2}, new float[] {1, 2}).offsetOverride = 36L;
        rejects(g, "tensor 'late' has offset 36, not a multiple of the alignment 32");

        g = withTensor();
        g.f32("far", new long[] {2}, new float[] {1, 2}).offsetOverride = 1L << 20;
        rejects(g, "tensor 'far' (F32, 8 bytes at data offset 1048576) runs past the end of the file");

        g = withTensor();
        g.f32("huge", new long[] {1L << 62, 4}, new float[0]);
        rejects(g, "tensor 'huge' has an element count that overflows 64 bits");
    }

    @Test
    void overlappingTensorDataIsRefused() {
        // two tensors sharing bytes: the safetensors reader refuses this, and so must the GGUF reader
        GgufBuilder g = new GgufBuilder();
        g.f32("a", new long[] {16}, new float[16]);
        g.f32("b", new long[] {8}, new float[8]).offsetOverride = 32L;
        rejects(write(g), "tensor 'b' (data offset 32) overlaps tensor 'a' (data offsets 0..64)");

        // the same tensor twice (offset 0) overlaps too; an empty tensor occupies nothing and may point anywhere
        g = new GgufBuilder();
        g.f32("a", new long[] {4}, new float[4]);
        g.f32("same", new long[] {4}, new float[4]).offsetOverride = 0L;
        rejects(write(g), "overlaps tensor 'a'");
        g = new GgufBuilder();
        g.f32("a", new long[] {4}, new float[] {1, 2, 3, 4});
        g.tensor("empty", 0, new long[] {0}, new byte[0]).offsetOverride = 0L;
        try (GgufFile f = GgufFile.open(write(g))) {
            assertArrayEquals(new float[] {1, 2, 3, 4}, f.dequantize("a"));
        }
    }

    @Test
    void truncatedTensorData() {
        GgufBuilder g = withTensor();
        g.tensor("q", 8, new long[] {64}, new byte[68]);
        byte[] full = g.build();
        Path p = GgufBuilder.write(dir.resolve("short.gguf"), Arrays.copyOf(full, full.length - 1));
        rejects(p, "tensor 'q' (Q8_0, 68 bytes at data offset 32) runs past the end of the file", "truncated");
    }

    /** A tensor beyond the first 2 GiB is mapped on its own; the file is sparse, so this costs no disk. */
    @Test
    void tensorBeyondTwoGigabytes() throws Exception {
        long offset = (1L << 31) + 64;
        GgufBuilder g = new GgufBuilder();
        g.f32("near", new long[] {2}, new float[] {5, 6});
        g.tensor("far", 0, new long[] {3}, new byte[0]).offsetOverride = offset;
        byte[] header = g.build();
        Path p = GgufBuilder.write(dir.resolve("big.gguf"), header);
        long dataStart = header.length - 32; // the builder put 'near' (8 bytes, padded to 32) at data offset 0
        try (RandomAccessFile f = new RandomAccessFile(p.toFile(), "rw")) {
            f.seek(dataStart + offset);
            ByteBuffer b = ByteBuffer.allocate(12).order(ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f).putFloat(3.25f);
            f.write(b.array());
        }
        try (GgufFile f = GgufFile.open(p)) {
            assertEquals(dataStart, f.dataStart());
            assertArrayEquals(new float[] {5, 6}, f.dequantize("near"));
            assertArrayEquals(new float[] {1.5f, -2f, 3.25f}, f.dequantize("far"));
        }
    }

    @Test
    void metadataIsUnmodifiable() {
        try (GgufFile f = GgufFile.open(write(withTensor()))) {
            Map<String, Object> m = f.metadata();
            assertThrows(UnsupportedOperationException.class, () -> m.put("x", 1));
            assertEquals("test", m.get("general.architecture"));
        }
    }
}
