package lowbit.io.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufWriterTest {
    @TempDir
    Path tmp;

    @Test
    void whatIsWrittenReadsBackTypeForTypeAndByteForByte() {
        float[] weights = {1.5f, -2f, 0f, 3.25f, 7f, -0.5f};
        byte[] q8 = new byte[34];
        q8[0] = 0x00; q8[1] = 0x3C;   // fp16 1.0
        for (int i = 0; i < 32; i++) q8[2 + i] = (byte) (i - 16);
        GgufWriter w = new GgufWriter()
                .put("general.architecture", GgufValue.string("llama"))
                .put("llama.block_count", GgufValue.uint32(30))
                .put("llama.rope.freq_base", GgufValue.float32(100000f))
                .put("flag", GgufValue.bool(true))
                .put("small", new GgufValue(GgufValue.Type.INT8, null, -3))
                .put("big", new GgufValue(GgufValue.Type.UINT64, null, 1L << 40))
                .put("tokens", GgufValue.array(GgufValue.Type.STRING, List.of("<s>", "é", "")))
                .put("types", GgufValue.array(GgufValue.Type.INT32, List.of(1, 3, 6)))
                .add(new GgufWriter.Tensor("a.weight", GgmlType.F32, new long[] {3, 2}, () -> floats(weights)))
                .add(new GgufWriter.Tensor("b.weight", GgmlType.Q8_0, new long[] {32}, () -> q8));
        Path out = w.write(tmp.resolve("m.gguf"));
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(3, f.version());
            assertEquals("llama", f.metadata().get("general.architecture"));
            assertEquals(30L, f.metadata().get("llama.block_count"));
            assertEquals(100000f, f.metadata().get("llama.rope.freq_base"));
            assertEquals(-3, f.metadata().get("small"));
            assertEquals(1L << 40, f.metadata().get("big"));
            assertEquals(List.of("<s>", "é", ""), f.metadata().get("tokens"));
            assertEquals(GgufValue.Type.INT32, f.typedMetadata().get("types").elementType());
            assertEquals(GgufValue.Type.UINT32, f.typedMetadata().get("llama.block_count").type());
            assertEquals(List.of("a.weight", "b.weight"), f.tensors().stream().map(GgufTensor::name).toList());
            assertArrayEquals(new long[] {3, 2}, f.tensor("a.weight").dims());
            assertEquals(0, f.dataStart() % 32);
            assertArrayEquals(weights, f.dequantize("a.weight"));
            float[] b = f.dequantize("b.weight");
            for (int i = 0; i < 32; i++) assertEquals(i - 16, b[i]);
            // copied into a second file through typedMetadata, the metadata is the same type for type
            Path copy = new GgufWriter().putAll(f.typedMetadata()).write(tmp.resolve("copy.gguf"));
            try (GgufFile g = GgufFile.open(copy)) {
                assertEquals(f.typedMetadata(), g.typedMetadata());
            }
        }
    }

    @Test
    void aFailedWriteLeavesNoFileAndAnExistingFileIsRefused() throws Exception {
        GgufWriter w = new GgufWriter().add(new GgufWriter.Tensor("x", GgmlType.F32, new long[] {4}, () -> {
            throw new UncheckedIOException(new java.io.IOException("disk full"));
        }));
        assertThrows(UncheckedIOException.class, () -> w.write(tmp.resolve("x.gguf")));
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(List.of(), s.toList(), "neither the file nor its partial sibling is left");
        }
        GgufWriter short_ = new GgufWriter().add(new GgufWriter.Tensor("x", GgmlType.F32, new long[] {4}, () -> new byte[8]));
        assertTrue(assertThrows(IllegalStateException.class, () -> short_.write(tmp.resolve("y.gguf"))).getMessage().contains("'x' produced 8 bytes"));
        assertFalse(Files.exists(tmp.resolve("y.gguf")));
        Files.writeString(tmp.resolve("z.gguf"), "");
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new GgufWriter().write(tmp.resolve("z.gguf"))).getMessage().contains("exists"));
        assertThrows(IllegalArgumentException.class, () -> new GgufWriter.Tensor("q", GgmlType.Q4_K, new long[] {576, 2}, () -> new byte[0]));
    }

    private static byte[] floats(float[] x) {
        ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : x) b.putFloat(v);
        return b.array();
    }
}
