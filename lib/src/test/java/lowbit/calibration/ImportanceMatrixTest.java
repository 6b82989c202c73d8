package lowbit.calibration;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.io.gguf.GgufValue;
import lowbit.io.gguf.GgufWriter;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Against llama.cpp's llama-imatrix (the version vendored by llama-cpp-python 0.3.36): its two output formats for
 * 2 chunks of 128 tokens of calibration.txt on the default model, trimmed to blocks 0 and 29, and the importances
 * llama-quantize derives from them. Regenerate with lib/src/test/resources/imatrix/make_fixture.sh (needs a llama.cpp
 * build and the gguf Python package; see the script).
 */
class ImportanceMatrixTest {
    @TempDir
    Path tmp;

    private static Path resource(String name) {
        try {
            return Path.of(ImportanceMatrixTest.class.getClassLoader().getResource("imatrix/" + name).toURI());
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    private static JsonNode expected() throws IOException {
        return new ObjectMapper().readTree(resource("expected.json").toFile());
    }

    private static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) a.get(i).asDouble();
        return out;
    }

    @Test
    void readsLlamaImatrixGgufAsLlamaQuantizeDoes() throws IOException {
        JsonNode exp = expected();
        ImportanceMatrix m = ImportanceMatrix.read(resource("reference.gguf"));
        assertFalse(m.legacy());
        assertEquals(exp.get("chunk_count").asInt(), m.chunkCount());
        assertEquals(exp.get("chunk_size").asInt(), m.chunkSize());
        assertEquals(List.of("calibration.txt"), m.datasets());
        assertEquals(exp.get("entries").asInt(), m.entries().size());
        assertEquals(14, m.entries().size(), "blocks 0 and 29, seven linears each");
        for (var t : exp.get("tensors").properties()) {
            assertEquals(t.getValue().get("count").asLong(), m.entries().get(t.getKey()).count(), t.getKey());
            assertArrayEquals(floats(t.getValue().get("gguf_importance")), m.importance(t.getKey()), t.getKey());
        }
        assertNull(m.importance("blk.1.attn_q.weight"));
        assertNull(m.importance("output.weight"), "llama-imatrix measures the output head only with --process-output");
    }

    @Test
    void readsLegacyDatAsLlamaQuantizeDoes() throws IOException {
        JsonNode exp = expected();
        ImportanceMatrix m = ImportanceMatrix.read(resource("reference.dat"));
        assertTrue(m.legacy());
        assertEquals(exp.get("dat_chunk_count").asInt(), m.chunkCount());
        assertEquals(List.of(exp.get("dat_dataset").asText()), m.datasets());
        assertEquals(0, m.chunkSize(), "the legacy format does not record it");
        for (var t : exp.get("tensors").properties()) {
            assertEquals(t.getValue().get("ncall").asLong(), m.entries().get(t.getKey()).count(), t.getKey());
            assertArrayEquals(floats(t.getValue().get("dat_importance")), m.importance(t.getKey()), t.getKey());
        }
    }

    @Test
    void legacyAndGgufFilesOfOneRunGiveTheSameImportances() {
        ImportanceMatrix gguf = ImportanceMatrix.read(resource("reference.gguf"));
        ImportanceMatrix dat = ImportanceMatrix.read(resource("reference.dat"));
        assertEquals(gguf.entries().keySet(), dat.entries().keySet());
        for (String name : gguf.entries().keySet()) {
            float[] a = gguf.importance(name), b = dat.importance(name);
            assertEquals(a.length, b.length, name);
            // the legacy file went through (sum / count) * ncall, then / ncall: a rounding or two in float
            for (int j = 0; j < a.length; j++) assertEquals(a[j], b[j], 4e-7 * Math.abs(a[j]), name + " column " + j);
        }
    }

    /** Format detection is by content: the legacy file under a .gguf name and the GGUF under .dat read the same. */
    @Test
    void detectsTheFormatByContentNotName() throws IOException {
        Path dat = Files.copy(resource("reference.dat"), tmp.resolve("looks.gguf"));
        Path gguf = Files.copy(resource("reference.gguf"), tmp.resolve("looks.dat"));
        assertTrue(ImportanceMatrix.read(dat).legacy());
        assertFalse(ImportanceMatrix.read(gguf).legacy());
    }

    @Test
    void writeThenReadGivesTheSameMatrix() {
        ImportanceMatrix m = ImportanceMatrix.read(resource("reference.gguf"));
        Path out = m.write(tmp.resolve("again.gguf"));
        ImportanceMatrix back = ImportanceMatrix.read(out);
        assertEquals(m.datasets(), back.datasets());
        assertEquals(m.chunkCount(), back.chunkCount());
        assertEquals(m.chunkSize(), back.chunkSize());
        assertEquals(m.entries().keySet(), back.entries().keySet());
        for (String name : m.entries().keySet()) {
            assertArrayEquals(m.entries().get(name).sums(), back.entries().get(name).sums(), name);
            assertEquals(m.entries().get(name).count(), back.entries().get(name).count(), name);
            assertArrayEquals(m.importance(name), back.importance(name), name);
        }
        // the layout llama-imatrix writes (tensor shapes and types, in name order)
        try (GgufFile ours = GgufFile.open(out); GgufFile theirs = GgufFile.open(resource("reference.gguf"))) {
            assertEquals("imatrix", ours.metadata().get("general.type"));
            assertEquals(theirs.tensors().stream().map(GgufTensor::name).toList(), ours.tensors().stream().map(GgufTensor::name).toList());
            for (GgufTensor t : theirs.tensors()) {
                GgufTensor o = ours.tensor(t.name());
                assertEquals(t.type(), o.type(), t.name());
                assertArrayEquals(t.shape(), o.shape(), t.name());
                assertEquals(theirs.raw(t.name()), ours.raw(t.name()), t.name() + " bytes");
            }
        }
        // a legacy file written as GGUF keeps llama-quantize's importances
        ImportanceMatrix dat = ImportanceMatrix.read(resource("reference.dat"));
        ImportanceMatrix datBack = ImportanceMatrix.read(dat.write(tmp.resolve("from-dat.gguf")));
        for (String name : dat.entries().keySet()) assertArrayEquals(dat.importance(name), datBack.importance(name), name);
    }

    @Test
    void refusesAnImatrixForAnotherModel() {
        Path file = resource("reference.gguf");
        ImportanceMatrix m = ImportanceMatrix.read(file);
        Map<String, Integer> model = new HashMap<>();
        for (int layer = 0; layer < 30; layer++) {
            for (String t : List.of("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up")) model.put("blk." + layer + "." + t + ".weight", 576);
            model.put("blk." + layer + ".ffn_down.weight", 1536);
        }
        List<String> missing = m.checkAgainst(model);
        assertEquals(28 * 7, missing.size(), "blocks 1..28 have no entry: allowed, and reported");
        assertTrue(missing.contains("blk.1.attn_q.weight"));
        assertFalse(missing.contains("blk.0.attn_q.weight"));

        Map<String, Integer> wider = new HashMap<>(model);
        wider.put("blk.0.attn_q.weight", 768);
        FormatException e = assertThrows(FormatException.class, () -> m.checkAgainst(wider));
        assertTrue(e.getMessage().startsWith(file.toString()), e.getMessage());
        assertTrue(e.getMessage().contains("'blk.0.attn_q.weight' has 576 columns but the model's has 768: an imatrix for another model"),
                e.getMessage());

        Map<String, Integer> shallower = new HashMap<>(model);
        shallower.keySet().removeIf(n -> n.startsWith("blk.29."));
        e = assertThrows(FormatException.class, () -> m.checkAgainst(shallower));
        assertTrue(e.getMessage().contains("tensor 'blk.29.attn_k.weight' that the model lacks: an imatrix for another model"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"));
    }

    @Test
    void refusesWhatIsNotADenseImportanceMatrix() throws IOException {
        Path model = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        if (Files.exists(model)) {
            FormatException e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(model));
            assertTrue(e.getMessage().contains("not an importance matrix"), e.getMessage());
        }

        Path experts = new GgufWriter()
                .put("general.type", GgufValue.string("imatrix"))
                .put("imatrix.datasets", GgufValue.array(GgufValue.Type.STRING, List.of("x.txt")))
                .put("imatrix.chunk_count", GgufValue.uint32(1))
                .put("imatrix.chunk_size", GgufValue.uint32(512))
                .add(new GgufWriter.Tensor("blk.0.ffn_up.weight.in_sum2", GgmlType.F32, new long[] {4, 2}, () -> new byte[32]))
                .add(new GgufWriter.Tensor("blk.0.ffn_up.weight.counts", GgmlType.F32, new long[] {1, 2}, () -> new byte[8]))
                .write(tmp.resolve("moe.gguf"));
        FormatException e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(experts));
        assertTrue(e.getMessage().contains("'blk.0.ffn_up.weight' has statistics for 2 experts"), e.getMessage());

        Path noMeta = new GgufWriter()
                .add(new GgufWriter.Tensor("blk.0.ffn_up.weight.in_sum2", GgmlType.F32, new long[] {4}, () -> new byte[16]))
                .add(new GgufWriter.Tensor("blk.0.ffn_up.weight.counts", GgmlType.F32, new long[] {1}, () -> new byte[4]))
                .write(tmp.resolve("nometa.gguf"));
        e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(noMeta));
        assertTrue(e.getMessage().contains("missing the imatrix metadata"), e.getMessage());

        byte[] dat = Files.readAllBytes(resource("reference.dat"));
        Path cut = Files.write(tmp.resolve("cut.dat"), Arrays.copyOf(dat, 1000));
        e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(cut));
        assertTrue(e.getMessage().startsWith(cut.toString()) && e.getMessage().contains("truncated legacy importance matrix"), e.getMessage());

        Path text = Files.writeString(tmp.resolve("notes.txt"), "hello, not an imatrix", StandardCharsets.UTF_8);
        e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(text));
        assertTrue(e.getMessage().startsWith(text.toString()), e.getMessage());

        ByteBuffer nan = ByteBuffer.allocate(4 + 4 + 4 + 4 + 4 + 8).order(ByteOrder.LITTLE_ENDIAN);
        nan.putInt(1).putInt(4).put("blk.".getBytes(StandardCharsets.UTF_8)).putInt(1).putInt(2).putFloat(1f).putFloat(Float.NaN);
        Path nanFile = Files.write(tmp.resolve("nan.dat"), nan.array());
        e = assertThrows(FormatException.class, () -> ImportanceMatrix.read(nanFile));
        assertTrue(e.getMessage().contains("non-finite value NaN at column 1"), e.getMessage());
    }

    /**
     * Our forward pass over the tokens llama-imatrix evaluated (2 chunks of 128; the model does not add BOS, so the
     * chunks are plain slices of the tokenized text) gives its sums: both run the same dequantized Q4_1 weights, in
     * float, with differently ordered sums.
     */
    @Test
    void computedOverLlamaImatrixsTokensMatchesIt() throws IOException {
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded (./lowbit setup): " + gguf);
        int[] llamaTokens = Files.readAllLines(resource("tokens.txt")).stream().mapToInt(Integer::parseInt).toArray();
        ImportanceMatrix ref = ImportanceMatrix.read(resource("reference.gguf"));
        int n = ref.chunkSize();
        try (Checkpoint ckpt = Checkpoints.open(gguf); Transformer model = Checkpoints.load(ckpt, 2)) {
            // llama-imatrix's -f drops one trailing newline; calibration.txt has none
            String text = Files.readString(resource("calibration.txt"), StandardCharsets.UTF_8);
            assertArrayEquals(llamaTokens, Checkpoints.tokenizer(ckpt).encodeWithSpecials(text), "our tokens are llama.cpp's");
            assertFalse(Checkpoints.tokenizer(ckpt).addsBos(), "llama-imatrix would put BOS over each chunk's first token");
            int[][] windows = new int[ref.chunkCount()][];
            for (int i = 0; i < windows.length; i++) windows[i] = Arrays.copyOfRange(llamaTokens, i * n, (i + 1) * n);
            ImportanceMatrix ours = ImportanceMatrix.compute(model, windows, List.of("calibration.txt"), Progress.NONE);
            assertEquals(30 * 7, ours.entries().size(), "every linear of the 30 blocks, q/k/v each");
            assertEquals(ref.chunkCount(), ours.chunkCount());
            assertEquals(n, ours.chunkSize());
            double worst = 0, worstElement = 0;
            String worstName = null;
            for (String name : ref.entries().keySet()) {
                assertEquals(ref.entries().get(name).count(), ours.entries().get(name).count(), name);
                float[] a = ref.importance(name), b = ours.importance(name);
                double num = 0, den = 0;
                for (int j = 0; j < a.length; j++) {
                    num = Math.max(num, Math.abs(a[j] - b[j]));
                    den = Math.max(den, Math.abs(a[j]));
                    if (a[j] > 1e-6) worstElement = Math.max(worstElement, Math.abs(a[j] - b[j]) / a[j]);
                }
                if (num / den > worst) {
                    worst = num / den;
                    worstName = name;
                }
            }
            System.out.printf("imatrix vs llama-imatrix: max |diff| / max |ref| per tensor = %.3g (%s); max per-column relative = %.3g%n",
                    worst, worstName, worstElement);
            assertTrue(worst < 2e-5, "max relative difference " + worst + " in " + worstName);
            assertTrue(ours.checkAgainst(ggufColumns(gguf)).isEmpty(), "every block linear has an entry");
        }
    }

    /** The default model's block weights by GGUF name, with their input columns (ne0). */
    private static Map<String, Integer> ggufColumns(Path gguf) {
        Map<String, Integer> m = new HashMap<>();
        try (GgufFile f = GgufFile.open(gguf)) {
            for (GgufTensor t : f.tensors())
                if (t.name().startsWith("blk.") && t.name().endsWith(".weight") && t.nDims() == 2) m.put(t.name(), (int) t.dims()[0]);
        }
        return m;
    }
}
