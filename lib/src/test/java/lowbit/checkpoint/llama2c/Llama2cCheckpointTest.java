package lowbit.checkpoint.llama2c;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Iterator;
import java.util.Map;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama2cCheckpointTest {
    @TempDir Path tmp;

    static Path stories() {
        return DataDir.require("models/stories260K/stories260K.bin");
    }

    @Test
    void stories260KHeaderAndConfig() {
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories())) {
            assertEquals(new Llama2cCheckpoint.Header(64, 172, 5, 8, 4, 512, 512), c.header());
            ModelConfig m = c.config();
            assertEquals("llama2c", m.modelType());
            assertEquals(ModelConfig.Family.LLAMA, m.family());
            assertEquals(64, m.hiddenSize());
            assertEquals(172, m.intermediateSize());
            assertEquals(5, m.numLayers());
            assertEquals(8, m.numHeads());
            assertEquals(4, m.numKvHeads());
            assertEquals(8, m.headDim());
            assertEquals(512, m.vocabSize());
            assertEquals(512, m.maxPositions());
            assertEquals(10000.0, m.ropeTheta());
            assertEquals(1e-5, m.normEps());
            assertTrue(m.tieWordEmbeddings());
            assertEquals("silu", m.hiddenAct());
            // 1 embedding + 9 per layer + final norm; tied, so no lm_head
            assertEquals(1 + 9 * 5 + 1, c.tensors().size());
            assertFalse(c.tensors().containsKey("lm_head.weight"));
            assertArrayEquals(new long[] {32, 64}, c.tensors().get("model.layers.3.self_attn.k_proj.weight").shape());
            assertArrayEquals(new long[] {64, 172}, c.tensors().get("model.layers.3.mlp.down_proj.weight").shape());
            assertArrayEquals(new long[] {172, 64}, c.tensors().get("model.layers.3.mlp.up_proj.weight").shape());
            assertEquals(Hashing.sha256(stories()), c.sha256());
        }
    }

    @Test
    void stories260KMatchesLlama2cExportPermutation() throws IOException {
        // golden from environment/fixtures/make_llama2c_golden.py (llama2.c export.py's permute_original in torch)
        JsonNode golden = new ObjectMapper().readTree(getClass().getResourceAsStream("/llama2c/stories260K-golden.json"));
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(stories())) {
            int checked = 0;
            for (Iterator<Map.Entry<String, JsonNode>> it = golden.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getKey().startsWith("model.layers.")) continue;
                float[] w = c.floats(e.getKey());
                int cols = (int) c.tensors().get(e.getKey()).shape()[1];
                for (Iterator<Map.Entry<String, JsonNode>> rows = e.getValue().fields(); rows.hasNext(); ) {
                    Map.Entry<String, JsonNode> row = rows.next();
                    int r = Integer.parseInt(row.getKey());
                    float[] expected = floats(row.getValue());
                    assertArrayEquals(expected, Arrays.copyOfRange(w, r * cols, r * cols + expected.length), e.getKey() + " row " + r);
                    checked++;
                }
            }
            assertEquals(2 * (10 + 10 + 1), checked);
            assertArrayEquals(floats(golden.get("model.norm.weight")), c.floats("model.norm.weight"));
            float[] emb = c.floats("model.embed_tokens.weight");
            assertArrayEquals(floats(golden.get("model.embed_tokens.weight[511]")), Arrays.copyOfRange(emb, 511 * 64, 512 * 64));
        }
    }

    static float[] floats(JsonNode array) {
        float[] out = new float[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) array.get(i).doubleValue();
        return out;
    }

    /** dim 4, hidden 2, 1 layer, 1 head, vocab -3 (own classifier), seq 2; weights are 0, 1, 2, ... in file order. */
    static byte[] tinyFile() {
        int floats = 132;
        ByteBuffer b = ByteBuffer.allocate(28 + 4 * floats).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : new int[] {4, 2, 1, 1, 1, -3, 2}) b.putInt(v);
        for (int i = 0; i < floats; i++) b.putFloat(i);
        return b.array();
    }

    static float[] range(int from, int to) {
        float[] r = new float[to - from];
        for (int i = 0; i < r.length; i++) r[i] = from + i;
        return r;
    }

    static float[] concat(float[]... parts) {
        float[] out = new float[Arrays.stream(parts).mapToInt(p -> p.length).sum()];
        int at = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, out, at, p.length);
            at += p.length;
        }
        return out;
    }

    @Test
    void tinyFileLayoutByHand() throws IOException {
        Path file = Files.write(tmp.resolve("tiny.bin"), tinyFile());
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(file)) {
            assertFalse(c.config().tieWordEmbeddings());
            assertEquals(3, c.config().vocabSize());
            assertArrayEquals(range(0, 12), c.floats("model.embed_tokens.weight"));
            assertArrayEquals(range(12, 16), c.floats("model.layers.0.input_layernorm.weight"));
            // q rows in llama2.c pair order r0 r1 r2 r3 -> rotate_half order r0 r2 r1 r3
            assertArrayEquals(concat(range(16, 20), range(24, 28), range(20, 24), range(28, 32)), c.floats("model.layers.0.self_attn.q_proj.weight"));
            assertArrayEquals(concat(range(32, 36), range(40, 44), range(36, 40), range(44, 48)), c.floats("model.layers.0.self_attn.k_proj.weight"));
            assertArrayEquals(range(48, 64), c.floats("model.layers.0.self_attn.v_proj.weight"));
            assertArrayEquals(range(64, 80), c.floats("model.layers.0.self_attn.o_proj.weight"));
            assertArrayEquals(range(80, 84), c.floats("model.layers.0.post_attention_layernorm.weight"));
            assertArrayEquals(range(84, 92), c.floats("model.layers.0.mlp.gate_proj.weight"));
            assertArrayEquals(range(92, 100), c.floats("model.layers.0.mlp.down_proj.weight"));
            assertArrayEquals(new long[] {4, 2}, c.tensors().get("model.layers.0.mlp.down_proj.weight").shape());
            assertArrayEquals(range(100, 108), c.floats("model.layers.0.mlp.up_proj.weight"));
            assertArrayEquals(range(108, 112), c.floats("model.norm.weight"));
            // 8 floats of freq_cis skipped
            assertArrayEquals(range(120, 132), c.floats("lm_head.weight"));
        }
    }

    @Test
    void truncatedStoriesIsRefused() throws IOException {
        byte[] all = Files.readAllBytes(stories());
        Path cut = Files.write(tmp.resolve("stories260K.bin"), Arrays.copyOf(all, all.length - 100));
        FormatException e = assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(cut));
        assertEquals(cut, e.file());
        assertTrue(e.getMessage().contains("expected 1056540 bytes") && e.getMessage().contains("found 1056440"), e.getMessage());
    }

    @Test
    void refusesBadHeaders() throws IOException {
        Path shortFile = Files.write(tmp.resolve("short.bin"), new byte[10]);
        assertTrue(assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(shortFile)).getMessage().contains("28-byte"));

        byte[] zeros = tinyFile();
        ByteBuffer.wrap(zeros).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0);
        Path zeroDim = Files.write(tmp.resolve("zero.bin"), zeros);
        assertTrue(assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(zeroDim)).getMessage().contains("implausible"));

        byte[] odd = tinyFile();
        ByteBuffer.wrap(odd).order(ByteOrder.LITTLE_ENDIAN).putInt(12, 3); // 3 heads do not divide dim 4
        Path oddHeads = Files.write(tmp.resolve("odd.bin"), odd);
        assertTrue(assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(oddHeads)).getMessage().contains("inconsistent"));

        byte[] v1 = tinyFile();
        ByteBuffer.wrap(v1).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 0x616b3432).putInt(4, 1);
        Path versioned = Files.write(tmp.resolve("v1.bin"), v1);
        assertTrue(assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(versioned)).getMessage().contains("version 1"));

        byte[] longer = Arrays.copyOf(tinyFile(), tinyFile().length + 4);
        Path extra = Files.write(tmp.resolve("extra.bin"), longer);
        assertTrue(assertThrows(FormatException.class, () -> Llama2cCheckpoint.open(extra)).getMessage().contains("expected 556 bytes"));
    }

    @Test
    void missingTokenizerIsNamed() throws IOException {
        Path file = Files.write(tmp.resolve("tiny.bin"), tinyFile());
        try (Llama2cCheckpoint c = Llama2cCheckpoint.open(file)) {
            FormatException e = assertThrows(FormatException.class, c::tokenizer);
            assertTrue(e.getMessage().contains("tok3.bin") && e.getMessage().contains("tokenizer.bin"), e.getMessage());
        }
    }
}
