package lowbit.model.cuda;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.URISyntaxException;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Test;

/**
 * What the GPU forward pass refuses and how much memory it asks for, checked where there is no GPU: the checks run before
 * anything is uploaded, on the loaded CPU model.
 */
class DeviceModelRefusalTest {
    static Path tiny(String name) throws URISyntaxException {
        return Path.of(DeviceModelRefusalTest.class.getClassLoader().getResource("tiny/" + name).toURI());
    }

    @Test
    void optIsRefusedInOneLine() throws Exception {
        try (Checkpoint c = Checkpoints.open(tiny("opt")); Transformer m = Checkpoints.load(c, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceModel.checkSupported(m));
            assertEquals(m.source() + " is OPT (opt): the GPU forward pass runs the Llama family (Llama, Mistral, SmolLM, Qwen2, Qwen3);"
                    + " use --device cpu", e.getMessage());
        }
    }

    @Test
    void onlineHadamardsAreRefusedInOneLine() throws Exception {
        try (Checkpoint c = Checkpoints.open(tiny("llama")); Transformer m = Checkpoints.load(c, 1)) {
            assertDoesNotThrow(() -> DeviceModel.checkSupported(m));
            m.setOnlineHadamards(false, true);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> DeviceModel.checkSupported(m));
            assertEquals(m.source() + " is rotated (QuaRot) and needs online Hadamard transforms, which the GPU forward pass does not run;"
                    + " use --device cpu", e.getMessage());
        }
    }

    @Test
    void llamaQwen2AndQwen3AreAccepted() throws Exception {
        for (String name : new String[] {"llama", "llama-tied-bf16", "qwen2", "qwen3", "smollm-like-f16"})
            try (Checkpoint c = Checkpoints.open(tiny(name)); Transformer m = Checkpoints.load(c, 1)) {
                assertDoesNotThrow(() -> DeviceModel.checkSupported(m), name);
            }
    }

    /**
     * The weights' bytes counted from the loaded model itself (every linear's weight and bias, the embeddings, every norm),
     * and the window's activations by hand for tiny/llama (hidden 64, 4 heads and 2 kv heads of 16, intermediate 128,
     * vocabulary 128): T (3 h + 2 qDim + 2 kvDim + 2 intermediate + headDim) floats = 8 x 656, 12 bytes per token for the
     * token, target and NLL buffers, and 256 rows of logits.
     */
    @Test
    void bytesNeededCountsTheModelsWeightsAndOneWindow() throws Exception {
        try (Checkpoint c = Checkpoints.open(tiny("llama")); Transformer m = Checkpoints.load(c, 1)) {
            var cfg = m.config();
            long weights = 0, floats = 0;
            for (Linear l : m.linears().values()) {
                weights += (long) l.outFeatures() * l.inFeatures();
                if (l.bias() != null) floats += l.bias().length;
            }
            weights += m.tokenEmbeddings().length;
            floats += m.normWeight(0, "final").length;
            for (int l = 0; l < cfg.numLayers(); l++) floats += m.normWeight(l, "attn").length + m.normWeight(l, "mlp").length;
            long logits = 4L * 256 * 128;
            assertEquals(4 * (weights + floats) + logits, DeviceModel.bytesNeeded(cfg, null, WeightFormat.FP32, 0));
            assertEquals(2 * weights + 4 * floats + logits, DeviceModel.bytesNeeded(cfg, null, WeightFormat.BF16, 0));
            assertEquals(4 * (weights + floats) + logits + 4L * 8 * 656 + 12 * 8, DeviceModel.bytesNeeded(cfg, null, WeightFormat.FP32, 8));
        }
    }
}
