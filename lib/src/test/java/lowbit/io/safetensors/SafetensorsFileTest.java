package lowbit.io.safetensors;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsFileTest {
    @TempDir Path tmp;

    static Path resource(String name) throws URISyntaxException {
        return Path.of(SafetensorsFileTest.class.getResource("/safetensors/" + name).toURI());
    }

    @Test
    void readsWhatThePythonLibraryWrote() throws Exception {
        // values printed by environment/fixtures/make_safetensors_fixture.py (torch's own widening to float32)
        try (SafetensorsFile f = SafetensorsFile.open(resource("mixed.safetensors"))) {
            assertEquals("pt", f.metadata().get("format"));
            assertEquals("lowbit fixture", f.metadata().get("note"));
            assertEquals(List.of("d.i64", "e.f64", "a.f32", "g.empty", "c.bf16", "b.f16", "f.u8"), List.copyOf(f.tensors().keySet()));
            assertEquals("F32", f.tensors().get("a.f32").dtype());
            assertArrayEquals(new long[] {2, 3}, f.tensors().get("a.f32").shape());
            assertArrayEquals(new float[] {1.5f, -2.25f, 3.0f, 0.0f, 0.0010000000474974513f, -7.0f}, f.floats("a.f32"));
            assertArrayEquals(new float[] {1.0f, -2.0f, 0.0999755859375f, 65504.0f, 0.333251953125f}, f.floats("b.f16"));
            assertArrayEquals(new float[] {1.0f, -2.0f, 0.10009765625f, 3.00405527047391e+38f}, f.floats("c.bf16"));
            assertArrayEquals(new float[] {-3, 0, 7}, f.floats("d.i64"));
            assertArrayEquals(new float[] {0.125f, -1e10f}, f.floats("e.f64"));
            assertArrayEquals(new float[] {0, 200, 255}, f.floats("f.u8"));
            assertEquals(0, f.floats("g.empty").length);
            assertArrayEquals(new long[] {0, 4}, f.tensors().get("g.empty").shape());
        }
    }

    @Test
    void convertsHalfAndBfloatBitPatterns() throws IOException {
        // hand-decoded: F16 0x3C00=1, 0xC000=-2, 0x3800=0.5, 0x7BFF=65504, 0x0001=2^-24 (subnormal), 0xFC00=-inf
        // BF16 0x3F80=1, 0xC000=-2, 0x4049=3.140625, 0x0001=2^-133
        Path file = new SafetensorsBuilder()
                .bits16("h", "F16", new long[] {6}, 0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0xFC00)
                .bits16("b", "BF16", new long[] {2, 2}, 0x3F80, 0xC000, 0x4049, 0x0001)
                .write(tmp.resolve("bits.safetensors"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertArrayEquals(new float[] {1f, -2f, 0.5f, 65504f, 0x1p-24f, Float.NEGATIVE_INFINITY}, f.floats("h"));
            assertArrayEquals(new float[] {1f, -2f, 3.140625f, 0x1p-133f}, f.floats("b"));
            assertEquals(List.of("h", "b"), List.copyOf(f.tensors().keySet()));
            assertTrue(f.metadata().isEmpty());
        }
    }

    @Test
    void unknownTensorNameNamesFile() throws IOException {
        Path file = new SafetensorsBuilder().f32("x", new long[] {1}, 1f).write(tmp.resolve("one.safetensors"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            FormatException e = assertThrows(FormatException.class, () -> f.floats("y"));
            assertTrue(e.getMessage().contains("one.safetensors") && e.getMessage().contains("y"), e.getMessage());
        }
    }

    @Test
    void eightBitFloatsAreRecognisedButNotConverted() throws IOException {
        Path file = new SafetensorsBuilder().raw("q", "F8_E4M3", new long[] {2}, new byte[] {1, 2}).write(tmp.resolve("f8.safetensors"));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals("F8_E4M3", f.tensors().get("q").dtype());
            FormatException e = assertThrows(FormatException.class, () -> f.floats("q"));
            assertTrue(e.getMessage().contains("F8_E4M3") && e.getMessage().contains("not supported"), e.getMessage());
        }
    }

    private FormatException refused(Path file, String... expectedFragments) {
        FormatException e = assertThrows(FormatException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains(file.getFileName().toString()), e.getMessage());
        for (String f : expectedFragments) assertTrue(e.getMessage().contains(f), "expected '" + f + "' in: " + e.getMessage());
        assertEquals(file, e.file());
        return e;
    }

    @Test
    void refusesFileShorterThanHeaderLength() throws IOException {
        refused(Files.write(tmp.resolve("short.safetensors"), new byte[] {1, 2, 3}), "3 bytes", "shorter than the 8-byte");
        refused(Files.write(tmp.resolve("empty.safetensors"), new byte[0]), "0 bytes");
    }

    @Test
    void refusesHeaderLengthPastEnd() throws IOException {
        ByteBuffer b = ByteBuffer.allocate(8 + 10).order(ByteOrder.LITTLE_ENDIAN).putLong(1000);
        refused(Files.write(tmp.resolve("long.safetensors"), b.array()), "header length 1000", "18 bytes");
        ByteBuffer absurd = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(-1L);
        refused(Files.write(tmp.resolve("absurd.safetensors"), absurd.array()), "header length 18446744073709551615");
    }

    @Test
    void refusesHeaderThatIsNotJson() throws IOException {
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("nojson.safetensors"), "{\"a\": [1, 2", new byte[0]), "not valid JSON");
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("array.safetensors"), "[1,2]", new byte[0]), "JSON object");
    }

    @Test
    void refusesUnknownDtype() throws IOException {
        Path file = new SafetensorsBuilder().raw("w", "Q4_K", new long[] {2}, new byte[2]).write(tmp.resolve("dtype.safetensors"));
        refused(file, "tensor w", "unknown dtype Q4_K");
    }

    @Test
    void refusesOffsetsOutOfRangeOrReversed() throws IOException {
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("past.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[4]), "tensor w", "[0, 8]", "4 bytes");
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("reversed.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", new byte[8]), "tensor w", "end before begin");
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("missing.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4]), "tensor w", "data_offsets");
    }

    @Test
    void refusesShapeThatDisagreesWithByteSize() throws IOException {
        Path file = new SafetensorsBuilder().raw("w", "BF16", new long[] {3, 2}, new byte[10]).write(tmp.resolve("size.safetensors"));
        refused(file, "tensor w", "needs 12 bytes", "hold 10");
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("negshape.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]), "tensor w", "non-negative");
    }

    @Test
    void refusesOverlappingTensors() throws IOException {
        refused(SafetensorsBuilder.writeRaw(tmp.resolve("overlap.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", new byte[12]),
                "tensor b", "overlaps tensor a");
    }
}
