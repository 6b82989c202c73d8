package lowbit.checkpoint.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.io.gguf.Dequantize;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GgufExportTest {
    @Test
    void permuteIsConvertHfToGgufsOrderAndUnpermuteItsInverse() {
        // 2 heads of head_dim 4, one column: convert_hf_to_gguf's reshape(2, 2, 2, 1).swapaxes(1, 2) stores HF rows 0 2 1 3 | 4 6 5 7
        float[] hf = {0, 1, 2, 3, 4, 5, 6, 7};
        assertArrayEquals(new float[] {0, 2, 1, 3, 4, 6, 5, 7}, GgufCheckpoint.permute(hf, 8, 1, 2));
        SplittableRandom r = new SplittableRandom(1);
        for (int[] c : new int[][] {{576, 3, 9}, {192, 5, 3}, {128, 2, 1}}) {
            int rows = c[0], cols = c[1], heads = c[2];
            float[] x = new float[rows * cols];
            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
            assertArrayEquals(x, GgufCheckpoint.unpermute(GgufCheckpoint.permute(x, rows, cols, heads), rows, cols, heads));
            assertArrayEquals(x, GgufCheckpoint.permute(GgufCheckpoint.unpermute(x, rows, cols, heads), rows, cols, heads));
            byte[] b = new byte[rows * 4];
            for (int i = 0; i < b.length; i++) b[i] = (byte) (i / 4);
            byte[] p = GgufCheckpoint.permute(b, rows, 4, heads);
            float[] rowIds = new float[rows];
            for (int i = 0; i < rows; i++) rowIds[i] = i;
            float[] expected = GgufCheckpoint.permute(rowIds, rows, 1, heads);
            for (int i = 0; i < rows; i++) assertEquals((byte) expected[i], p[i * 4], "byte row " + i);
        }
    }

    /** Packed blocks of every exact grid dequantize (ggml's formulas, {@link Dequantize}) to lowbit's own dequantized weights. */
    @Test
    void exactGridsPackToBlocksThatDequantizeToLowbitsWeights() {
        SplittableRandom r = new SplittableRandom(7);
        int rows = 5, cols = 96;
        float[] w = new float[rows * cols];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextGaussian() * 0.05 + (i % 7 == 0 ? 0.02 : 0));
        QuantConfig sym = new QuantConfig(4, true, 32, QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F16, false);
        Map<QuantConfig, GgmlType> grids = Map.of(
                QuantConfig.q4_1(), GgmlType.Q4_1,
                QuantConfig.q4_1().withBits(5), GgmlType.Q5_1,
                sym, GgmlType.Q4_0,
                sym.withBits(5), GgmlType.Q5_0,
                sym.withBits(8), GgmlType.Q8_0,
                new QuantConfig(8, true, 32, QuantConfig.ZeroPoint.ABSMAX, QuantConfig.ScaleFormat.F16, false), GgmlType.Q8_0);
        for (var g : grids.entrySet()) {
            assertEquals(g.getValue(), GgufExport.exactType(g.getKey(), cols), g.getKey().toString());
            QuantizedWeight q = Rtn.quantize("w", w, rows, cols, g.getKey());
            byte[] packed = GgufExport.pack(q, g.getValue());
            assertEquals(g.getValue().byteSize((long) rows * cols), packed.length);
            float[] ggml = new float[rows * cols];
            Dequantize.dequantize(g.getValue(), ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN), ggml.length, ggml);
            assertArrayEquals(q.dequantize(), ggml, g.getKey() + " as " + g.getValue());
        }
        // no GGUF type: an integer zero point, groups of 128, 3 bits, fp32 scales
        assertEquals(null, GgufExport.exactType(QuantConfig.group(4, 32), cols));
        assertEquals(null, GgufExport.exactType(QuantConfig.q4_1().withScaleFormat(QuantConfig.ScaleFormat.F32), cols));
        assertEquals(null, GgufExport.exactType(sym.withBits(3), cols));
        assertEquals(null, GgufExport.exactType(QuantConfig.group(4, 128).withZeroPoint(QuantConfig.ZeroPoint.FLOAT_MIN), cols));
    }

    /** rtn:w4g32fmin finds llama.cpp's Q4_1 grid again, and export writes the codes: every tensor is the source's bytes. */
    @Test
    void rtnW4g32fminExportsTheDefaultModelsQ4_1BytesExactly(@TempDir Path tmp) {
        Path source = GgufCheckpointTest.defaultModel();
        Path out = tmp.resolve("q4_1.gguf");
        GgufExport.Result result;
        try (EvaluatedModel m = EvaluatedModel.load(Checkpoints.open(source), 2)) {
            var outcome = m.quantize(QuantizationRecipe.of("rtn:w4g32fmin"), Progress.NONE);
            result = GgufExport.of(m.checkpoint(), m.transformer(), outcome, GgufExport.Options.of(null)).write(out, Progress.NONE);
        }
        assertEquals(210, result.exact().size());
        int q41 = 0;
        try (GgufFile a = GgufFile.open(source); GgufFile b = GgufFile.open(out)) {
            assertEquals(a.tensors().size(), b.tensors().size());
            for (GgufTensor t : a.tensors()) {
                assertEquals(t.type(), b.tensor(t.name()).type(), t.name());
                assertEquals(a.raw(t.name()), b.raw(t.name()), t.name());
                if (t.type() == GgmlType.Q4_1) q41++;
            }
            assertEquals(210, q41);
            assertEquals(2L, b.metadata().get("general.quantization_version"));
            assertEquals(a.metadata().get("general.file_type"), b.metadata().get("general.file_type"), "guessed from the 210 Q4_1 tensors");
            assertEquals(a.metadata().get("tokenizer.ggml.merges"), b.metadata().get("tokenizer.ggml.merges"));
        }
    }

    @Test
    void aGridWithoutAGgufTypeIsRefusedUnlessReQuantized(@TempDir Path tmp) {
        try (EvaluatedModel m = EvaluatedModel.load(Checkpoints.open(GgufCheckpointTest.defaultModel()), 2)) {
            var outcome = m.quantize(QuantizationRecipe.of("rtn:w4g128"), Progress.NONE);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> GgufExport.of(m.checkpoint(), m.transformer(), outcome, GgufExport.Options.of(null)));
            assertTrue(e.getMessage().startsWith("blk.0.") && e.getMessage().contains("w4g128") && e.getMessage().contains("give --type"),
                    e.getMessage());
            var options = new GgufExport.Options(GgufPreset.Q4_0, List.of(), Map.of(), null);
            GgufTypePlan plan = GgufExport.of(m.checkpoint(), m.transformer(), outcome, options).plan();
            assertTrue(plan.entries().stream().filter(x -> x.name().equals("blk.0.attn_q.weight")).allMatch(x -> x.type() == GgmlType.Q4_0));
        }
    }

    @Test
    void aFailedExportLeavesNoFile(@TempDir Path tmp) {
        Path out = tmp.resolve("bad.gguf");
        try (var ckpt = Checkpoints.open(GgufCheckpointTest.defaultModel())) {
            // an imatrix whose vectors have the wrong length fails at the first quantized block tensor, mid-file
            var options = new GgufExport.Options(GgufPreset.Q4_0, List.of(), Map.of(), name -> new float[3]);
            var e = assertThrows(IllegalArgumentException.class, () -> GgufExport.of(ckpt, options).write(out, Progress.NONE));
            assertTrue(e.getMessage().contains("has 3 values"), e.getMessage());
        }
        assertFalse(Files.exists(out));
        assertEquals(0, tmp.toFile().list().length, "no partial file left: " + List.of(tmp.toFile().list()));
    }

    @Test
    void aBitsMapChoosesTheTypeOfEachLinearsWidth() {
        // the default model's shapes: 1536 inputs for down_proj (6 blocks of 256), 576 for the rest (32 blocks of 18)
        Map<String, Integer> linears = new java.util.LinkedHashMap<>();
        linears.put("model.layers.0.mlp.down_proj", 1536);
        linears.put("model.layers.0.self_attn.v_proj", 576);
        linears.put("model.layers.1.self_attn.q_proj", 576);
        linears.put("model.layers.1.mlp.up_proj", 576);
        linears.put("model.layers.1.self_attn.o_proj", 576);
        linears.put("model.layers.1.mlp.down_proj", 1536);
        linears.put("model.layers.2.mlp.gate_proj", 576);
        linears.put("model.layers.2.mlp.down_proj", 1536);
        BitsMap map = new BitsMap(Path.of("map.json"), QuantConfig.group(4, 128), Map.of("model.layers.0.mlp.down_proj", 6,
                "model.layers.0.self_attn.v_proj", 8, "model.layers.1.self_attn.q_proj", 2, "model.layers.1.self_attn.o_proj", 3,
                "model.layers.1.mlp.down_proj", 3, "model.layers.2.mlp.gate_proj", 5, "model.layers.2.mlp.down_proj", 5), Map.of());
        Map<String, GgmlType> want = new java.util.HashMap<>();
        want.put("blk.0.ffn_down.weight", GgmlType.Q6_K);
        want.put("blk.0.attn_v.weight", GgmlType.Q8_0);
        want.put("blk.1.attn_q.weight", GgmlType.Q4_0);       // no 2-bit 32-block type: llama.cpp's fallback
        want.put("blk.1.ffn_up.weight", GgmlType.Q4_0);       // 4 bits: the 32-block type of the same width, not Q5_0
        want.put("blk.1.attn_output.weight", GgmlType.Q4_0);
        want.put("blk.1.ffn_down.weight", GgmlType.Q3_K);
        want.put("blk.2.ffn_gate.weight", GgmlType.Q5_0);
        want.put("blk.2.ffn_down.weight", GgmlType.Q5_K);
        assertEquals(want, GgufExport.bitsMapTypes(map, linears));
        BitsMap seven = new BitsMap(Path.of("map.json"), QuantConfig.group(4, 128), Map.of("model.layers.1.mlp.up_proj", 7), Map.of());
        var e = assertThrows(IllegalArgumentException.class, () -> GgufExport.bitsMapTypes(seven, linears));
        assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj has 7 bits, which no GGUF type has"), e.getMessage());
    }
}
