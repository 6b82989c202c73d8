package lowbit.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.eval.EvaluatedModel;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.activation.KvCacheQuantizer;
import lowbit.quant.activation.KvWidths;
import lowbit.quant.mixed.BitAllocator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The bits map's "kv" object: parsing, writing, applying it through a recipe, and the quantized model's manifest. */
class KvBitsMapTest {
    private static final String HEAD = "{\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4, \"group_size\": 32}, \"layers\": {}";

    @TempDir
    Path dir;

    static Path stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        return bin;
    }

    @Test
    void aKvObjectIsReadAndWrittenBack() throws IOException {
        Path f = write("kv.json", HEAD + ", \"kv\": {\"group_size\": 4, \"layers\": {\"1\": {\"key_bits\": 8, \"value_bits\": 16}, "
                + "\"0\": {\"key_bits\": 2, \"value_bits\": 3}}}}");
        BitsMap m = BitsMap.read(f);
        assertEquals(4, m.kv().groupSize());
        assertEquals(KvWidths.perLayer(new int[] {2, 8}, new int[] {3, 16}), m.kv().widths(), "by layer index, not file order");
        m.checkKvLayers(2);
        Path g = dir.resolve("out.json");
        BitsMap.write(g, new BitAllocator.Allocation(Map.of("model.layers.0.mlp.up_proj", 3), 3.1, 0.5, 310), QuantConfig.group(4, 32),
                m.kv(), Map.of("why", "test"));
        BitsMap back = BitsMap.read(g);
        assertEquals(m.kv(), back.kv());
        assertEquals(Map.of("model.layers.0.mlp.up_proj", 3), back.layers());
        BitsMap.write(g, null, QuantConfig.group(4, 32), m.kv(), null);
        assertEquals(m.kv(), BitsMap.read(g).kv());
        assertTrue(BitsMap.read(g).layers().isEmpty(), "a KV-only map lists no linear");
        BitsMap.write(g, new BitAllocator.Allocation(Map.of(), 4, 0, 1), QuantConfig.group(4, 32), null);
        assertNull(BitsMap.read(g).kv(), "the old overload writes no kv");
    }

    @Test
    void badKvEntriesNameTheFileAndTheEntry() throws IOException {
        bad(HEAD + ", \"kv\": 4}", "\"kv\" must be an object");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4}}, \"bits\": 4}}",
                "kv: unknown key \"bits\" (allowed: group_size, layers)");
        bad(HEAD + ", \"kv\": {\"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4}}}}", "kv: \"group_size\" is missing (0: the whole head)");
        bad(HEAD + ", \"kv\": {\"group_size\": -8, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4}}}}",
                "kv: \"group_size\" must be an integer >= 0 (0: the whole head), got -8");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {}}}", "kv: \"layers\" must be a non-empty object");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 9, \"value_bits\": 4}}}}",
                "kv layer 0: \"key_bits\" must be an integer 2..8, or 16 for float, got 9");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 1}}}}",
                "kv layer 0: \"value_bits\" must be an integer 2..8, or 16 for float, got 1");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 0}}}}",
                "kv layer 0: \"value_bits\" must be an integer 2..8, or 16 for float, got 0");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4}}}}", "kv layer 0: \"value_bits\" is missing");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4, \"bits\": 4}}}}",
                "kv layer 0: unknown key \"bits\" (allowed: key_bits, value_bits)");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"first\": {\"key_bits\": 4, \"value_bits\": 4}}}}",
                "kv layer first: the layer must be an index 0, 1, ..., got \"first\"");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": 4}}}", "kv layer 0: expected {\"key_bits\": K, \"value_bits\": V}, got 4");
        bad(HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4}, \"2\": {\"key_bits\": 4, \"value_bits\": 4}}}}",
                "kv: layer 1 is missing (layers must be 0..1 with none left out; got up to 2)");
    }

    @Test
    void aKvMapForAnotherModelIsRefused() throws IOException {
        Path f = write("three.json", HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": {\"0\": {\"key_bits\": 4, \"value_bits\": 4}, "
                + "\"1\": {\"key_bits\": 4, \"value_bits\": 4}, \"2\": {\"key_bits\": 4, \"value_bits\": 4}}}}");
        BitsMap m = BitsMap.read(f);
        m.checkKvLayers(3);
        var e = assertThrows(FormatException.class, () -> m.checkKvLayers(5));
        assertEquals(f + ": \"kv\" lists layers 0..2, the model has 5 (0..4)", e.getMessage());
        e = assertThrows(FormatException.class, () -> m.checkKvLayers(2));
        assertEquals(f + ": \"kv\" lists layers 0..2, the model has 2 (0..1)", e.getMessage());
    }

    @Test
    void aKvMapAndAnotherKvOptionAreRefused() throws Exception {
        Path f = write("five.json", HEAD + ", \"kv\": {\"group_size\": 0, \"layers\": " + fiveLayers() + "}}");
        BitsMap m = BitsMap.read(f);
        try (Checkpoint c = Checkpoints.open(stories()); Transformer t = Checkpoints.load(c, 1)) {
            var e = assertThrows(IllegalArgumentException.class, () -> QuantizationRecipe.of("rtn:w4g32+kv4").withBitsMap(m).validate(t));
            assertEquals("--bits-map " + f + " sets the KV cache per layer (\"kv\"); drop the kv4 term of --quant rtn:w4g32+kv4", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> QuantizationRecipe.of("rtn:w4g32").withBitsMap(m)
                    .withRuntime(new QuantizationRecipe.RuntimeOptions(false, 8, 0, 0)).validate(t));
            assertEquals("--bits-map " + f + " sets the KV cache per layer (\"kv\"); drop --kv-key-bits", e.getMessage());
            QuantizationRecipe.of("rtn:w4g32").withBitsMap(m).validate(t);
            Path g = write("g3.json", HEAD + ", \"kv\": {\"group_size\": 3, \"layers\": " + fiveLayers() + "}}");
            var fe = assertThrows(FormatException.class, () -> QuantizationRecipe.of("rtn:w4g32").withBitsMap(BitsMap.read(g)).validate(t));
            assertEquals(g + ": kv: KV group size must divide headDim 8, got 3", fe.getMessage());
        }
    }

    /** rtn with a kv map: the model runs each layer's widths, and a saved model loads back running exactly the same. */
    @Test
    void perLayerKvWidthsGoThroughTheManifest() throws Exception {
        Path f = write("five.json", HEAD + ", \"kv\": {\"group_size\": 4, \"layers\": " + fiveLayers() + "}}");
        Path out = dir.resolve("q");
        int[] window = new Random(3).ints(40, 1, 512).toArray();
        double[] nll;
        QuantizationRecipe recipe = QuantizationRecipe.of("rtn:w4g32").withBitsMap(BitsMap.read(f));
        try (Checkpoint c = Checkpoints.open(stories()); Transformer t = Checkpoints.load(c, 1); Transformer plain = Checkpoints.load(c, 1)) {
            var outcome = recipe.apply(t, null, Progress.NONE);
            nll = t.nll(window);
            QuantizedModel.rtn(plain, QuantConfig.group(4, 32));
            double[] kvFloat = plain.nll(window);
            assertNotEquals(sum(kvFloat), sum(nll), "the KV cache is quantized");
            // the same widths by hand: one hook of those widths on the weight-quantized model
            try (AutoCloseable h = plain.addHook(new KvCacheQuantizer(plain.config(), widths(), 4, KvCacheQuantizer.Grid.QLLM_EVAL))) {
                assertArrayEquals(nll, plain.nll(window), 0.0);
            }
            assertEquals(widths(), outcome.runtime().kv());
            QuantizedModelFiles.write(out, c, stories().toString(), t, outcome.model(), outcome.provenance());
        }
        try (EvaluatedModel m = EvaluatedModel.load(Checkpoints.open(out), 1)) {
            QuantizedCheckpoint qc = (QuantizedCheckpoint) m.checkpoint();
            var runtime = RuntimeQuantization.fromJson(qc.manifest().at("/quantization/runtime"));
            assertEquals(widths(), runtime.kv());
            assertEquals(4, runtime.kvGroupSize());
            assertEquals(8, qc.manifest().at("/quantization/runtime/kv_layers/1/key_bits").asInt());
            assertArrayEquals(nll, m.transformer().nll(window), 0.0, "the loaded model runs the same KV widths");
        }
    }

    private static KvWidths widths() {
        return KvWidths.perLayer(new int[] {2, 8, 16, 4, 3}, new int[] {16, 3, 4, 8, 2});
    }

    private static String fiveLayers() {
        KvWidths w = widths();
        StringBuilder s = new StringBuilder("{");
        for (int l = 0; l < 5; l++)
            s.append(l == 0 ? "" : ", ").append("\"").append(l).append("\": {\"key_bits\": ").append(w.key(l)).append(", \"value_bits\": ")
                    .append(w.value(l)).append("}");
        return s.append("}").toString();
    }

    private static double sum(double[] a) {
        double s = 0;
        for (double v : a) s += v;
        return s;
    }

    private void bad(String text, String expected) throws IOException {
        Path f = write("bad.json", text);
        var e = assertThrows(FormatException.class, () -> BitsMap.read(f), text);
        assertEquals(f, e.file());
        assertTrue(e.getMessage().startsWith(f + ": " + expected), "expected '" + expected + "', got: " + e.getMessage());
    }

    private Path write(String name, String text) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }
}
