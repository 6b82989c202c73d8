package lowbit.quant.activation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import lowbit.quant.activation.KvCacheQuantizer.Grid;
import org.junit.jupiter.api.Test;

class KvWidthsTest {
    /**
     * Two layers, one kv head of 4 dimensions, whole-head groups: layer 0 keys at 2 bits and values in float, layer 1
     * keys at 8 bits and values at 3 bits. The same arrays fed to either layer come out on that layer's grid.
     */
    @Test
    void eachLayerQuantizesAtItsOwnWidthsByHand() {
        KvCacheQuantizer q = KvCacheQuantizer.forShape(1, 4, KvWidths.perLayer(new int[] {2, 8}, new int[] {16, 3}), 4, Grid.QLLM_EVAL);
        float[] k0 = {0.1f, -1f, 2f, 0.5f}, v0 = {0f, 7f, 3.2f, 1.4f};
        float[] k1 = {-10f, 117.5f, 3.25f, 0f}, v1 = v0.clone();
        q.keyValue(0, k0, v0, 1);
        q.keyValue(1, k1, v1, 1);
        // layer 0 keys, maxint 3: scale (2 - -1)/3 = 1, zero = -rint(-1/1) = 1; codes rint(x)+1 = 1, 0, 3, 1 (0.5 ties to even 0)
        // -> (q - 1) * 1
        assertArrayEquals(new float[] {0f, -1f, 2f, 0f}, k0, 0f);
        assertArrayEquals(new float[] {0f, 7f, 3.2f, 1.4f}, v0, 0f, "layer 0 values stay in float");
        // layer 1 keys, maxint 255: scale 127.5/255 = 0.5, zero = -rint(-10/0.5) = 20; x/scale = -20, 235, 6.5, 0
        // -> codes 0, 255, 26 (6.5 ties to even 6, + 20), 20 -> 0.5 * (code - 20)
        assertArrayEquals(new float[] {-10f, 117.5f, 3f, 0f}, k1, 0f);
        // layer 1 values, maxint 7: scale 7/7 = 1, zero = 0; codes rint(x) = 0, 7, 3, 1
        assertArrayEquals(new float[] {0f, 7f, 3f, 1f}, v1, 0f);
    }

    @Test
    void aUniformWidthIsEveryLayerAtThatWidth() {
        float[] a = {0.3f, -0.7f, 1.9f, 0.2f, 5f, -3f, 0.25f, 1f};
        float[] uniform = a.clone(), perLayer = a.clone(), va = a.clone(), vb = a.clone();
        KvCacheQuantizer.forShape(1, 4, 4, 4, 4, Grid.QLLM_EVAL).keyValue(2, uniform, va, 2);
        KvCacheQuantizer.forShape(1, 4, KvWidths.perLayer(new int[] {8, 8, 4}, new int[] {8, 8, 4}), 4, Grid.QLLM_EVAL)
                .keyValue(2, perLayer, vb, 2);
        assertArrayEquals(uniform, perLayer, 0f);
        assertArrayEquals(va, vb, 0f);
    }

    @Test
    void widthsAreChecked() {
        var e = assertThrows(IllegalArgumentException.class, () -> KvWidths.perLayer(new int[] {4, 9}, new int[] {4, 4}));
        assertEquals("KV key bits of layer 1 must be 2..8 (16 or 0 keeps float), got 9", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> KvWidths.perLayer(new int[] {4, 4}, new int[] {4}));
        assertTrue(e.getMessage().startsWith("KV widths need as many key as value widths"), e.getMessage());
        KvCacheQuantizer q = KvCacheQuantizer.forShape(1, 4, KvWidths.perLayer(new int[] {4, 4}, new int[] {4, 4}), 4, Grid.QLLM_EVAL);
        e = assertThrows(IllegalArgumentException.class, () -> q.keyValue(2, new float[4], new float[4], 1));
        assertEquals("layer 2 has no KV widths (they list layers 0..1)", e.getMessage());
        assertThrows(IllegalStateException.class, q::keyBits, "a per-layer quantizer has no single key width");
    }

    @Test
    void describeListsEveryLayer() {
        Map<String, Object> d = KvCacheQuantizer.forShape(1, 4, KvWidths.perLayer(new int[] {8, 2}, new int[] {0, 3}), 2, Grid.QLLM_EVAL).describe();
        assertEquals("per layer", d.get("key_bits"));
        assertEquals(Map.of("0", Map.of("key_bits", 8, "value_bits", 16), "1", Map.of("key_bits", 2, "value_bits", 3)), d.get("layers"));
    }
}
