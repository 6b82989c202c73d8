package lowbit.checkpoint.hf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.UnaryOperator;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Export then import: a tiny random Llama (hidden 64, MLP 128, dimensions the GPTQ and AWQ packings tile) quantized
 * by RTN into our directory, exported to each format, read back through --model: the same weights, bit for bit, so
 * the same log-probs.
 */
class HfExportTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int[] TOKENS = {1, 5, 9, 3, 30, 17, 2, 8, 21, 4, 11};

    @TempDir Path tmp;

    private Path quantized(QuantConfig grid, String spec, UnaryOperator<QuantizedWeight> edit) throws Exception {
        return TinyQuantized.write(tmp, grid, spec, edit);
    }

    private static float[][] logProbs(Path model) {
        try (Checkpoint c = Checkpoints.open(model); Transformer m = Checkpoints.load(c, 1)) {
            return m.logProbs(TOKENS);
        }
    }

    private static void assertSameModel(Path ours, Path exported) {
        try (Checkpoint a = Checkpoints.open(ours); Checkpoint b = Checkpoints.open(exported)) {
            assertInstanceOf(HfQuantizedCheckpoint.class, b);
            assertEquals(a.config(), b.config());
            assertEquals(a.tensors().keySet(), b.tensors().keySet());
            for (String name : a.tensors().keySet()) assertArrayEquals(a.floats(name), b.floats(name), name);
        }
        float[][] x = logProbs(ours), y = logProbs(exported);
        for (int i = 0; i < x.length; i++) assertArrayEquals(x[i], y[i], "position " + i);
    }

    private static QuantConfig grid(String text) {
        // bits, group (0: per-channel), sym
        String[] p = text.split("/");
        QuantConfig c = p[1].equals("0") ? QuantConfig.perChannel(Integer.parseInt(p[0])) : QuantConfig.group(Integer.parseInt(p[0]), Integer.parseInt(p[1]));
        return c.withSymmetric(p[2].equals("sym"));
    }

    @ParameterizedTest
    @CsvSource({"gptq, 4/32/asym", "gptq, 4/32/sym", "gptq, 2/32/asym", "gptq, 3/32/asym", "gptq, 3/0/sym", "gptq, 8/0/sym", "awq, 4/32/asym", "awq, 4/64/sym",
            "compressed-tensors, 4/32/asym", "compressed-tensors, 3/16/sym", "compressed-tensors, 8/0/asym",
            "compressed-tensors, 5/32/asym"})
    void anExportedModelReadsBackToTheSameWeightsAndLogProbs(String format, String gridText) throws Exception {
        QuantConfig g = grid(gridText);
        Path q = quantized(g, "rtn:w" + g.bits(), w -> w);
        Path h = tmp.resolve("h");
        HfExport.Result r = HfExport.write(q, format, h, Progress.NONE);
        assertEquals(14, r.linears());
        JsonNode config = JSON.readTree(h.resolve("config.json").toFile());
        assertEquals(format, config.path("quantization_config").path("quant_method").asText());
        assertSameModel(q, h);
        // nothing but the finished directory: the hidden sibling was renamed into place
        try (var s = Files.list(tmp)) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().startsWith(".")).count());
        }
    }

    /** GPTQ's act-order: a group index that moves columns between groups travels as g_idx with desc_act. */
    @Test
    void actOrderTravelsAsGIdx() throws Exception {
        int[] perm = new int[64];
        for (int i = 0; i < 64; i++) perm[i] = (i * 37 + 5) % 64;
        Path q = quantized(QuantConfig.group(4, 32), "gptq:w4g32", w -> {
            if (w.columns() != 64) return w;
            int[] g = new int[64];
            for (int i = 0; i < 64; i++) g[perm[i]] = i / 32;
            return new QuantizedWeight(w.rows(), w.columns(), w.config(), w.packedCodes(), w.scales(), w.zeros(), g);
        });
        Path h = tmp.resolve("h");
        assertTrue(HfExport.write(q, "gptq", h, Progress.NONE).actOrder());
        assertTrue(JSON.readTree(h.resolve("config.json").toFile()).path("quantization_config").path("desc_act").asBoolean());
        try (HfQuantizedCheckpoint c = (HfQuantizedCheckpoint) Checkpoints.open(h)) {
            assertNotNull(c.quantizedWeight("model.layers.0.self_attn.q_proj").groupIndex());
            assertNull(c.quantizedWeight("model.layers.0.mlp.down_proj").groupIndex());
        }
        assertSameModel(q, h);
        String msg = assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "compressed-tensors", tmp.resolve("c"), Progress.NONE)).getMessage();
        assertTrue(msg.endsWith("model.layers.0.self_attn.q_proj: act-order moved columns between groups (a g_idx), which "
                + "pack-quantized's decompression does not apply"), msg);
        assertFalse(Files.exists(tmp.resolve("c")));
    }

    @Test
    void whatAFormatCannotHoldIsRefusedWithTheReason() throws Exception {
        Path q3 = quantized(QuantConfig.group(3, 32), "rtn:w3g32", w -> w);
        assertEquals(q3 + ": cannot export as awq: model.layers.0.self_attn.q_proj: AWQ's GEMM layout holds 4-bit codes only, not 3",
                assertThrows(IllegalArgumentException.class, () -> HfExport.write(q3, "awq", tmp.resolve("a"), Progress.NONE)).getMessage());
        assertFalse(Files.exists(tmp.resolve("a")));
        lowbit.io.AtomicOutput.delete(tmp.resolve("q"));
        Path q5 = quantized(QuantConfig.group(5, 32), "rtn:w5g32", w -> w);
        assertEquals(q5 + ": cannot export as gptq: model.layers.0.self_attn.q_proj: GPTQ's packing holds 2, 3, 4 or 8 bits per code, not 5",
                assertThrows(IllegalArgumentException.class, () -> HfExport.write(q5, "gptq", tmp.resolve("g"), Progress.NONE)).getMessage());
        assertFalse(Files.exists(tmp.resolve("g")));
    }

    @Test
    void theFloatMinGridIsRefused() throws Exception {
        Path q = quantized(QuantConfig.q4_1(), "rtn:w4g32fmin", w -> w);
        String msg = assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "gptq", tmp.resolve("h"), Progress.NONE)).getMessage();
        assertEquals(q + ": cannot export as gptq: model.layers.0.self_attn.q_proj is on the float-min grid (x = scale q + min), which "
                + "gptq cannot hold: its zero points are integers (export it as GGUF Q4_1 instead)", msg);
    }

    @Test
    void groupsThatDoNotDivideTheInputsAreRefusedWhereTheFormatNeedsThat() throws Exception {
        Path q = quantized(QuantConfig.group(4, 48), "rtn:w4g48", w -> w);
        String msg = assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "compressed-tensors", tmp.resolve("h"), Progress.NONE)).getMessage();
        assertTrue(msg.endsWith("group size 48 does not divide the 64 inputs (compressed-tensors refuses that)"), msg);
        msg = assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "awq", tmp.resolve("h"), Progress.NONE)).getMessage();
        assertTrue(msg.endsWith("group size 48 does not divide the 64 inputs (AWQ's groups are all equal)"), msg);
        // GPTQ's g_idx names each column's group, so a shorter last group is exact there
        Path h = tmp.resolve("h");
        HfExport.write(q, "gptq", h, Progress.NONE);
        assertSameModel(q, h);
    }

    @Test
    void aZeroPointOfZeroIsRefusedByGptqsV1Layout() throws Exception {
        Path q = quantized(QuantConfig.group(4, 32), "rtn:w4g32", w -> {
            float[] z = w.zeros().clone();
            z[0] = 0;
            return new QuantizedWeight(w.rows(), w.columns(), w.config(), w.packedCodes(), w.scales(), z, null);
        });
        String msg = assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "gptq", tmp.resolve("h"), Progress.NONE)).getMessage();
        assertTrue(msg.endsWith("q_proj: a zero point is 0, which GPTQ's v1 layout stores as -1 and every loader reads back as 16"), msg);
        Path h = tmp.resolve("c");
        HfExport.write(q, "compressed-tensors", h, Progress.NONE);
        assertSameModel(q, h);
    }

    @Test
    void runtimeQuantizationAndBadArgumentsAreRefused() throws Exception {
        Path q = quantized(QuantConfig.group(4, 32), "rtn:w4g32a8", w -> w);
        assertEquals(q + ": cannot export as gptq: its spec rtn:w4g32a8 quantizes activations, which needs runtime support the "
                + "weight-only export does not carry", assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "gptq", tmp.resolve("h"), Progress.NONE)).getMessage());
        assertEquals("--format exl2 is not one of compressed-tensors, gptq, awq",
                assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "exl2", tmp.resolve("h"), Progress.NONE)).getMessage());
        Files.createDirectories(tmp.resolve("exists"));
        assertEquals("--out " + tmp.resolve("exists") + " exists; choose a new directory or remove it",
                assertThrows(IllegalArgumentException.class, () -> HfExport.write(q, "gptq", tmp.resolve("exists"), Progress.NONE)).getMessage());
        Path src = tmp.resolve("src");
        assertEquals("--model " + src + " is not a lowbit quantized directory (no lowbit.json); export hf takes what ./lowbit quantize wrote",
                assertThrows(IllegalArgumentException.class, () -> HfExport.write(src, "gptq", tmp.resolve("h"), Progress.NONE)).getMessage());
    }
}
