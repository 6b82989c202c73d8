package lowbit.quant.activation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.quant.activation.KvCacheQuantizer.Grid;
import org.junit.jupiter.api.Test;

class KvCacheQuantizerTest {
    /** 2 rows (tokens) x 2 kv heads x headDim 4, whole-head groups; keys at 2 bits, values at 8 bits. */
    private static float[] keys() {
        return new float[]{
                0.1f, -1f, 2f, 0.5f, -4f, -3f, -2f, -1f,
                0.7f, 0.7f, 0.7f, 0.7f, 0.25f, -0.25f, 0.5f, -0.5f};
    }

    private static float[] values() {
        return new float[]{
                -10f, 117.5f, 3.25f, 0f, 1f, 2f, 3f, 4f,
                -2f, -2f, -2f, -2f, 0f, 0f, 0f, 0f};
    }

    @Test
    void qllmEvalGridByHand() {
        float[] k = keys(), v = values();
        KvCacheQuantizer.forShape(2, 4, 2, 8, 4, Grid.QLLM_EVAL).keyValue(0, k, v, 2);
        assertArrayEquals(new float[]{
                // maxint 3. [0.1, -1, 2, 0.5]: scale 3/3 = 1, zero = -rint(-1) = 1; rint(x)+1 = 1, 0, 3, 1 (0.5 ties to 0)
                0f, -1f, 2f, 0f,
                // negative only [-4..-1]: scale 1, zero = -rint(-4) = 4, clamped to 3: codes clamp(-1)=0, 0, 1, 2 -> -3, -3, -2, -1
                -3f, -3f, -2f, -1f,
                // constant group: kept exact
                0.7f, 0.7f, 0.7f, 0.7f,
                // [0.25, -0.25, 0.5, -0.5]: scale 1/3, zero = -rint(-1.5) = 2; x/scale = 0.75, -0.75, 1.5, -1.5
                // -> 1, -1, 2, -2, plus 2 -> 3, 1, 4 (clamped 3), 0 -> (q - 2)/3
                1f / 3, -1f / 3, 1f / 3, -2f / 3}, k, 0f);
        assertArrayEquals(new float[]{
                // maxint 255. range 127.5 -> scale 0.5, zero = 20; x/scale = -20, 235, 6.5 (-> 6), 0 -> codes 0, 255, 26, 20
                -10f, 117.5f, 3f, 0f,
                // positive only [1..4]: scale 3/255, zero = -rint(85) = -85, clamped to 0: codes 85, 170, 255, 340 -> 255
                1f, 2f, 3f, 3f,
                -2f, -2f, -2f, -2f,
                0f, 0f, 0f, 0f}, v, 0f);
    }

    @Test
    void minMaxGridKeepsOneSignedGroups() {
        float[] k = keys(), v = values();
        KvCacheQuantizer.forShape(2, 4, 2, 8, 4, Grid.MIN_MAX).keyValue(0, k, v, 2);
        // zero = 4 stays unclamped: codes 0, 1, 2, 3 -> exactly -4, -3, -2, -1; mixed-sign groups as above
        assertArrayEquals(new float[]{0f, -1f, 2f, 0f, -4f, -3f, -2f, -1f,
                0.7f, 0.7f, 0.7f, 0.7f, 1f / 3, -1f / 3, 1f / 3, -2f / 3}, k, 0f);
        // zero = -85: codes 0, 85, 170, 255 -> 1, 2, 3, 4
        assertArrayEquals(new float[]{-10f, 117.5f, 3f, 0f, 1f, 2f, 3f, 4f,
                -2f, -2f, -2f, -2f, 0f, 0f, 0f, 0f}, v, 0f);
    }

    @Test
    void smallerGroupsHaveTheirOwnGrids() {
        float[] k = {0.1f, -1f, 2f, 0.5f};
        float[] v = k.clone();
        KvCacheQuantizer.forShape(1, 4, 2, 16, 2, Grid.QLLM_EVAL).keyValue(0, k, v, 1);
        // [0.1, -1]: scale 1.1/3, zero = -rint(-1 / (1.1/3)) = -rint(-2.73) = 3; x/scale = 0.27, -2.73 -> codes 3, 0
        //   -> 0 and -3 * 1.1/3 = -1.1 (the integer zero point moves the grid off -1)
        // [2, 0.5]: positive only, scale 1.5/3 = 0.5, zero = -rint(1) = -1 -> clamped 0; x/scale = 4 -> 3, 1 -> 1.5, 0.5
        assertArrayEquals(new float[]{0f, -1.1f, 1.5f, 0.5f}, k, 1e-7f);
        assertArrayEquals(new float[]{0.1f, -1f, 2f, 0.5f}, v, 0f, "values at 16 bits are untouched");
    }

    @Test
    void badOptionsAreRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> KvCacheQuantizer.forShape(2, 16, 9, 4, 16, Grid.QLLM_EVAL));
        assertTrue(e.getMessage().startsWith("KV key bits must be 2..8") && e.getMessage().endsWith("got 9"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KvCacheQuantizer.forShape(2, 16, 4, 1, 16, Grid.QLLM_EVAL));
        assertTrue(e.getMessage().startsWith("KV value bits must be 2..8") && e.getMessage().endsWith("got 1"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KvCacheQuantizer.forShape(2, 16, 4, 4, 5, Grid.QLLM_EVAL));
        assertEquals("KV group size must divide headDim 16, got 5", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> KvCacheQuantizer.forShape(2, 16, 4, 4, 0, Grid.QLLM_EVAL));
        // 0 and 16 both mean float
        assertEquals(KvCacheQuantizer.FLOAT, KvCacheQuantizer.forShape(2, 16, 0, 16, 8, Grid.MIN_MAX).keyBits());
        var wrongShape = KvCacheQuantizer.forShape(2, 16, 4, 4, 16, Grid.QLLM_EVAL);
        assertThrows(IllegalArgumentException.class, () -> wrongShape.keyValue(0, new float[31], new float[32], 1));
    }

    @Test
    void describeRecordsTheSetting() {
        Map<String, Object> d = KvCacheQuantizer.forShape(2, 16, 4, 16, 8, Grid.QLLM_EVAL).describe();
        assertEquals(4, d.get("key_bits"));
        assertEquals("float", d.get("value_bits"));
        assertEquals(8, d.get("group_size"));
    }

    /** 8-bit KV barely moves the tiny model's log-probs, 2-bit moves them a lot; values at 16 bits pass through untouched. */
    @Test
    void endToEndOnTheTinyLlama() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            ModelConfig cfg = model.config();
            int[] tokens = TinyLlama.windows(1, 48, cfg.vocabSize(), 9)[0];
            float[][] ref = model.logProbs(tokens);
            double d8 = ActivationQuantizerTest.diffWith(model, new KvCacheQuantizer(cfg, 8, 8), tokens, ref);
            double d4 = ActivationQuantizerTest.diffWith(model, new KvCacheQuantizer(cfg, 4, 4), tokens, ref);
            double d2 = ActivationQuantizerTest.diffWith(model, new KvCacheQuantizer(cfg, 2, 2), tokens, ref);
            // The fixture's weights are pushed far from init (sharp attention, logits ~14 nats wide), so even KV8
            // moves the worst of its 48 x 128 log-probs by ~0.09; each 2 bits fewer multiplies that by ~4.
            assertTrue(d8 > 0 && d8 < 0.25, "KV8 " + d8);
            assertTrue(d4 > 5 * d8 && d2 > 3 * d4, "KV8 " + d8 + ", KV4 " + d4 + ", KV2 " + d2);

            List<float[]> rawK = new ArrayList<>(), rawV = new ArrayList<>(), outK = new ArrayList<>(), outV = new ArrayList<>();
            int[] widths = new int[2];
            ForwardHook before = new ForwardHook() {
                @Override
                public void keyValue(int layer, float[] k, float[] v, int rows) {
                    widths[0] = k.length / rows;
                    widths[1] = v.length / rows;
                    assertEquals(0, k.length % rows);
                    rawK.add(k.clone());
                    rawV.add(v.clone());
                }
            };
            ForwardHook after = new ForwardHook() {
                @Override
                public void keyValue(int layer, float[] k, float[] v, int rows) {
                    outK.add(k.clone());
                    outV.add(v.clone());
                }
            };
            KvCacheQuantizer keysOnly = new KvCacheQuantizer(cfg, 4, 16, 8, Grid.QLLM_EVAL);
            try (var a = model.addHook(before); var q = model.addHook(keysOnly); var b = model.addHook(after)) {
                model.logProbs(tokens);
            }
            assertEquals(cfg.numKvHeads() * cfg.headDim(), widths[0], "keys: numKvHeads * headDim per row");
            assertEquals(cfg.numKvHeads() * cfg.headDim(), widths[1]);
            assertEquals(cfg.numLayers(), outK.size());
            for (int l = 0; l < cfg.numLayers(); l++) {
                assertArrayEquals(rawV.get(l), outV.get(l), 0f, "values untouched at 16 bits, layer " + l);
                assertFalse(Arrays.equals(rawK.get(l), outK.get(l)), "keys quantized, layer " + l);
                float[] expected = rawK.get(l).clone();
                KvCacheQuantizer.quantizeGroups(expected, expected.length, 8, 4, Grid.QLLM_EVAL);
                assertArrayEquals(expected, outK.get(l), 0f, "keys are the group-wise grid of what RoPE produced");
            }
        }
    }
}
