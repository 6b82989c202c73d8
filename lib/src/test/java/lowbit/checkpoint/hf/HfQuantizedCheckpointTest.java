package lowbit.checkpoint.hf;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.FormatException;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Import of a checkpoint compressed by compressed-tensors itself (a tiny Llama, asymmetric 4-bit groups of 32, written
 * as llm-compressor writes it): every linear dequantizes to exactly what transformers' compressed-tensors decompression
 * gives, and the model's log-probs agree with transformers' float32 forward pass. Regenerate with
 * {@code /work/refvenv/bin/python lib/src/test/resources/hf/quantized/make_fixtures.py lib/src/test/resources/hf/quantized}.
 */
class HfQuantizedCheckpointTest {
    private static final Path DIR = Path.of("src/test/resources/hf/quantized");
    private static final int[] TOKENS = {1, 5, 9, 3, 30, 17, 2, 8, 21, 4, 11};

    @TempDir Path tmp;

    @Test
    void aCompressedTensorsCheckpointDequantizesAsCompressedTensorsDoes() {
        try (SafetensorsFile ref = SafetensorsFile.open(DIR.resolve("ct_model_dense.safetensors"));
             Checkpoint c = Checkpoints.open(DIR.resolve("ct_model"))) {
            assertInstanceOf(HfQuantizedCheckpoint.class, c);
            int linears = 0;
            for (String name : ref.tensors().keySet()) {
                if (!name.endsWith("_proj.weight")) continue;
                assertEquals("F32", c.tensors().get(name).dtype());
                assertArrayEquals(ref.floats(name), c.floats(name), name);
                linears++;
            }
            assertEquals(14, linears);
            try (Transformer m = Checkpoints.load(c, 1)) {
                float[][] ours = m.logProbs(TOKENS);
                float[] theirs = ref.floats("log_probs");
                int vocab = c.config().vocabSize();
                for (int p = 0; p < TOKENS.length; p++)
                    for (int v = 0; v < vocab; v++)
                        assertEquals(theirs[p * vocab + v], ours[p][v], 2e-5, "position " + p + ", token " + v);
            }
        }
    }

    @Test
    void anUnknownQuantMethodIsOneClearError() throws Exception {
        Path d = copy();
        Files.writeString(d.resolve("config.json"), Files.readString(d.resolve("config.json"))
                .replace("\"quant_method\": \"compressed-tensors\"", "\"quant_method\": \"exl2\""));
        String msg = assertThrows(FormatException.class, () -> Checkpoints.open(d).close()).getMessage();
        assertEquals(d.resolve("config.json") + ": quantization_config.quant_method \"exl2\" is not one lowbit reads (gptq, awq, "
                + "compressed-tensors)", msg);
    }

    @Test
    void activationQuantizationIsRefused() throws Exception {
        Path d = copy();
        Files.writeString(d.resolve("config.json"), Files.readString(d.resolve("config.json"))
                .replace("\"input_activations\": null", "\"input_activations\": {\"num_bits\": 8, \"type\": \"int\"}"));
        String msg = assertThrows(FormatException.class, () -> Checkpoints.open(d).close()).getMessage();
        assertEquals(d.resolve("config.json") + ": quantization_config.config_groups.group_0.input_activations is set: activation "
                + "quantization needs a runtime lowbit's import does not model", msg);
    }

    private Path copy() throws Exception {
        Path d = tmp.resolve("m");
        Files.createDirectories(d);
        try (var s = Files.list(DIR.resolve("ct_model"))) {
            for (Path p : s.toList()) Files.copy(p, d.resolve(p.getFileName()));
        }
        return d;
    }
}
