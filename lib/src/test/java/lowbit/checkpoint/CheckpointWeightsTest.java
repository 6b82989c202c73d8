package lowbit.checkpoint;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import lowbit.io.FormatException;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every format reaches the model through CheckpointWeights: each tensor is read exactly as the config implies, or refused. */
class CheckpointWeightsTest {
    @TempDir Path dir;

    @Test
    void aCompleteCheckpointLoads() throws Exception {
        TinyHf.write(dir, TinyHf.config(2, ""), 2);
        try (Checkpoint c = Checkpoints.open(dir); Transformer m = Checkpoints.load(c, 1)) {
            assertEquals(2 * 7 + 1, m.linears().size());
            assertEquals(3, m.nll(new int[] {0, 1, 2, 1}).length);
        }
    }

    @Test
    void aConfigDeclaringFewerLayersThanTheFileHoldsIsRefused() throws Exception {
        // before: layer 1 was silently dropped and the perplexity was that of a different model
        TinyHf.write(dir, TinyHf.config(1, ""), 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.open(dir));
        assertTrue(e.getMessage().startsWith(dir + ": 9 tensor(s)"), e.getMessage());
        assertTrue(e.getMessage().contains("(1 layers)") && e.getMessage().contains("model.layers.1.input_layernorm.weight"),
                e.getMessage());
    }

    @Test
    void aConfigDeclaringMoreLayersThanTheFileHoldsIsRefused() throws Exception {
        TinyHf.write(dir, TinyHf.config(3, ""), 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.open(dir));
        assertEquals(dir + ": tensor model.layers.2.input_layernorm.weight is missing (expected shape [4] for a llama model)",
                e.getMessage());
    }

    @Test
    void aTensorOfNoKnownPartIsRefused() throws Exception {
        var t = TinyHf.tensors(1);
        t.put("model.layers.0.mlp.extra.weight", new TinyHf.Tensor(new long[] {2}, new float[] {1, 2}));
        TinyHf.write(dir, TinyHf.config(1, ""), t);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.open(dir));
        assertTrue(e.getMessage().contains("1 tensor(s)") && e.getMessage().contains("model.layers.0.mlp.extra.weight"), e.getMessage());
    }

    @Test
    void aStoredCopyOfTiedEmbeddingsAndRotaryBuffersAreNotRefused() throws Exception {
        // transformers ignores both: lm_head is tied to the embeddings, inv_freq is recomputed from the config
        var t = TinyHf.tensors(1);
        t.put("lm_head.weight", new TinyHf.Tensor(new long[] {3, 4}, TinyHf.values(12, 1)));
        t.put("model.layers.0.self_attn.rotary_emb.inv_freq", new TinyHf.Tensor(new long[] {1}, new float[] {1}));
        TinyHf.write(dir, TinyHf.config(1, ""), t);
        try (Checkpoint c = Checkpoints.open(dir); Transformer m = Checkpoints.load(c, 1)) {
            assertEquals(8, m.linears().size());
        }
    }

    @Test
    void aNonFiniteWeightIsRefusedNamingTheTensorAndElement() throws Exception {
        for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY}) {
            var t = TinyHf.tensors(1);
            t.get("model.layers.0.mlp.up_proj.weight").values()[5] = bad;
            TinyHf.write(dir, TinyHf.config(1, ""), t);
            try (Checkpoint c = Checkpoints.open(dir)) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.load(c, 1));
                assertEquals(dir + ": tensor model.layers.0.mlp.up_proj.weight holds " + bad + " at element 5; weights must be finite",
                        e.getMessage());
            }
        }
    }

    @Test
    void configValuesAreCheckedWhenLoadingNamingFileAndKey() throws Exception {
        Path cfg = dir.resolve("config.json");
        String[][] cases = {
                {", \"rope_theta\": 0", "rope_theta must be a finite number > 0, found 0.0"},
                {", \"rope_theta\": -10000", "rope_theta must be a finite number > 0, found -10000.0"},
                {", \"rms_norm_eps\": -1e-6", "rms_norm_eps must be a finite number >= 0, found -1.0E-6"},
                {", \"rms_norm_eps\": 1e999", "rms_norm_eps must be a finite number >= 0, found Infinity"},
                {", \"num_key_value_heads\": 0", "num_key_value_heads must be >= 1, found 0"},
                {", \"head_dim\": 3", "head_dim 3 must be even"},
                {", \"max_position_embeddings\": 0", "max_position_embeddings must be >= 1, found 0"},
        };
        for (String[] c : cases) {
            TinyHf.write(dir, TinyHf.config(1, c[0]), 1);
            FormatException e = assertThrows(FormatException.class, () -> Checkpoints.open(dir), c[0]);
            assertTrue(e.getMessage().startsWith(cfg + ": " + c[1]), c[0] + " -> " + e.getMessage());
        }
        // num_attention_heads 0 used to divide by zero (a stack trace)
        TinyHf.write(dir, TinyHf.config(1, "").replace("\"num_attention_heads\": 2", "\"num_attention_heads\": 0"), 1);
        FormatException e = assertThrows(FormatException.class, () -> Checkpoints.open(dir));
        assertEquals(cfg + ": \"num_attention_heads\" must be >= 1, found 0", e.getMessage());
    }
}
