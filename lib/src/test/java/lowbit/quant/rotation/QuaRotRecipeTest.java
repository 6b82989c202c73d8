package lowbit.quant.rotation;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.eval.EvaluatedModel;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The quarot term through the recipe: rotation first, provenance, and a quantized directory that loads back exactly. */
class QuaRotRecipeTest {
    @TempDir Path tmp;

    private static QuantizationRecipe.Outcome apply(String spec, long seed, Transformer model) {
        return QuantizationRecipe.of(spec).withRotation(new QuantizationRecipe.RotationOptions(seed)).apply(model, null, Progress.NONE);
    }

    @Test
    void quarotAloneIsTheRotatedFloatModel() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("qwen3")); Transformer model = Checkpoints.load(ckpt, 2)) {
            int[] ids = QuaRotTest.tokens(32, model.config().vocabSize(), 4);
            float[][] before = model.logProbs(ids);
            QuantizationRecipe.Outcome o = apply("quarot", 5, model);
            assertNull(o.model());
            Map<String, Object> p = o.provenance();
            assertEquals("quarot", p.get("spec"));
            assertEquals(32.0, p.get("bits_per_weight"));
            @SuppressWarnings("unchecked") Map<String, Object> rot = (Map<String, Object>) p.get("rotation");
            assertEquals("quarot", rot.get("method"));
            assertEquals(5L, rot.get("seed"));
            assertEquals(64, rot.get("residual_hadamard"));
            assertEquals(32, rot.get("head_hadamard"));
            assertEquals(128, rot.get("down_input_hadamard"));
            assertEquals(false, rot.get("online_queries_keys"));
            double d = QuaRotTest.maxDiff(before, model.logProbs(ids));
            assertTrue(d < 1e-4, "quarot moved the float model's log-probs by " + d);
        }
    }

    @Test
    void kvQuantizationSwitchesTheOnlineQueryKeyHadamardOn() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("llama")); Transformer model = Checkpoints.load(ckpt, 2)) {
            QuantizationRecipe.Outcome o = apply("quarot+rtn:w4a8+kv4", 0, model);
            assertTrue(model.onlineQueryKeyHadamard());
            assertTrue(model.onlineDownHadamard());
            assertEquals(true, o.rotation().describe().get("online_queries_keys"));
            assertEquals("quarot+rtn:w4a8+kv4", o.provenance().get("spec"));
        }
    }

    @Test
    void rotationBeforeTheWeightMethod() throws Exception {
        // quantizing the rotated weights is not the same as rotating quantized ones: the recipe's order shows in the weights
        float[] viaRecipe, rotatedThenRtn;
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("llama")); Transformer model = Checkpoints.load(ckpt, 2)) {
            apply("quarot+rtn:w4g32", 9, model);
            viaRecipe = model.linear("model.layers.0.mlp.down_proj").weight();
        }
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("llama")); Transformer model = Checkpoints.load(ckpt, 2)) {
            QuaRot.rotate(model, 9, false, Progress.NONE);
            QuantizationRecipe.of("rtn:w4g32").apply(model, null, Progress.NONE);
            rotatedThenRtn = model.linear("model.layers.0.mlp.down_proj").weight();
        }
        assertArrayEquals(rotatedThenRtn, viaRecipe);
    }

    @ParameterizedTest
    @ValueSource(strings = {"quarot+rtn:w4g32+kv4", "quarot", "quarot+rtn:w4a4"})
    void aRotatedDirectoryLoadsBackExactly(String spec) throws Exception {
        Path out = tmp.resolve("q");
        int[] ids;
        float[][] expected;
        Path src = QuaRotTest.tiny("qwen3");   // tied embeddings: the directory must carry its own lm_head
        try (Checkpoint ckpt = Checkpoints.open(src); Transformer model = Checkpoints.load(ckpt, 2)) {
            assertTrue(ckpt.config().tieWordEmbeddings());
            ids = QuaRotTest.tokens(32, model.config().vocabSize(), 6);
            QuantizationRecipe.Outcome o = apply(spec, 1, model);
            expected = model.logProbs(ids);
            QuantizedModelFiles.write(out, ckpt, src.toString(), model, o.model(), o.provenance());
        }
        JsonNode manifest = new ObjectMapper().readTree(out.resolve(QuantizedModelFiles.MANIFEST).toFile());
        assertFalse(manifest.path("config").path("tieWordEmbeddings").asBoolean(true));
        assertEquals("quarot", manifest.path("quantization").path("rotation").path("method").asText());
        try (Checkpoint ckpt = Checkpoints.open(out)) {
            assertTrue(ckpt.tensors().containsKey("lm_head.weight"));
            try (Transformer model = Checkpoints.load(ckpt, 1); EvaluatedModel em = EvaluatedModel.of(ckpt, model, null, null)) {
                assertTrue(model.onlineDownHadamard());
                assertEquals(spec.contains("kv"), model.onlineQueryKeyHadamard());
                float[][] got = em.transformer().logProbs(ids);
                for (int t = 0; t < ids.length; t++) assertArrayEquals(expected[t], got[t], "position " + t);
            }
        }
    }

    @Test
    void optIsRefusedByTheRecipeBeforeAnyChange() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("opt")); Transformer model = Checkpoints.load(ckpt, 1)) {
            QuantizationRecipe r = QuantizationRecipe.of("quarot+rtn:w4a8");
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.validate(model));
            assertEquals("--quant quarot+rtn:w4a8: quarot rotates RMSNorm models only (the Llama family: Llama, Mistral, SmolLM, "
                    + "Qwen2, Qwen3); opt uses LayerNorm, whose mean subtraction and bias QuaRot's folding does not keep exact here",
                    e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> r.apply(model, null, Progress.NONE));
            assertFalse(model.onlineDownHadamard());
        }
    }
}
