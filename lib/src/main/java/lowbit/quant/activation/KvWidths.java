package lowbit.quant.activation;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The KV-cache widths of every attention layer: keys and values of layer l at {@link #key(int)} and {@link #value(int)}
 * bits, 16 (or 0) keeping that tensor in float. A single entry applies to every layer, so a uniform width needs no layer
 * count; a per-layer allocation lists one entry per layer. The quantizer reads both the same way.
 *
 * @param keyBits   per layer, or one for all; 2..8, 16 or 0
 * @param valueBits as keyBits, of the same length
 */
public record KvWidths(List<Integer> keyBits, List<Integer> valueBits) {
    public KvWidths {
        if (keyBits == null || valueBits == null || keyBits.isEmpty() || keyBits.size() != valueBits.size())
            throw new IllegalArgumentException("KV widths need as many key as value widths, at least one, got " + keyBits + " and " + valueBits);
        for (int l = 0; l < keyBits.size(); l++) {
            check("key", l, keyBits.get(l), keyBits.size());
            check("value", l, valueBits.get(l), keyBits.size());
        }
        keyBits = List.copyOf(keyBits);
        valueBits = List.copyOf(valueBits);
    }

    /** Every layer at one key and one value width. */
    public static KvWidths uniform(int keyBits, int valueBits) {
        return new KvWidths(List.of(keyBits), List.of(valueBits));
    }

    /** One entry per layer. */
    public static KvWidths perLayer(int[] keyBits, int[] valueBits) {
        List<Integer> k = new ArrayList<>(), v = new ArrayList<>();
        for (int b : keyBits) k.add(b);
        for (int b : valueBits) v.add(b);
        return new KvWidths(k, v);
    }

    /** Whether one entry applies to every layer. */
    public boolean uniform() {
        return keyBits.size() == 1;
    }

    /** Layers listed (1 when uniform). */
    public int layers() {
        return keyBits.size();
    }

    /** Key width of {@code layer}, {@link KvCacheQuantizer#FLOAT} for float. */
    public int key(int layer) {
        return floatAsSixteen(keyBits.get(index(layer)));
    }

    /** Value width of {@code layer}, {@link KvCacheQuantizer#FLOAT} for float. */
    public int value(int layer) {
        return floatAsSixteen(valueBits.get(index(layer)));
    }

    /** Whether any layer quantizes its keys or values. */
    public boolean quantizes() {
        for (int l = 0; l < keyBits.size(); l++) if (key(l) != KvCacheQuantizer.FLOAT || value(l) != KvCacheQuantizer.FLOAT) return true;
        return false;
    }

    /** Fails unless these widths fit a model of {@code numLayers} attention layers. */
    public void checkLayers(int numLayers) {
        if (!uniform() && keyBits.size() != numLayers)
            throw new IllegalArgumentException("KV widths list " + keyBits.size() + " layers, the model has " + numLayers);
    }

    /** {"0": {"key_bits": K, "value_bits": V}, ...}, the bits map's and the manifest's per-layer form (16: float). */
    public Map<String, Map<String, Integer>> describeLayers() {
        Map<String, Map<String, Integer>> m = new LinkedHashMap<>();
        for (int l = 0; l < keyBits.size(); l++) {
            Map<String, Integer> e = new LinkedHashMap<>();
            e.put("key_bits", key(l));
            e.put("value_bits", value(l));
            m.put(Integer.toString(l), e);
        }
        return m;
    }

    private int index(int layer) {
        if (uniform()) return 0;
        if (layer < 0 || layer >= keyBits.size())
            throw new IllegalArgumentException("layer " + layer + " has no KV widths (they list layers 0.." + (keyBits.size() - 1) + ")");
        return layer;
    }

    private static int floatAsSixteen(int bits) {
        return bits == 0 ? KvCacheQuantizer.FLOAT : bits;
    }

    private static void check(String what, int layer, Integer bits, int size) {
        if (bits == null || !(bits == 0 || bits == KvCacheQuantizer.FLOAT || (bits >= 2 && bits <= 8)))
            throw new IllegalArgumentException("KV " + what + " bits" + (size == 1 ? "" : " of layer " + layer)
                    + " must be 2..8 (16 or 0 keeps float), got " + bits);
    }
}
