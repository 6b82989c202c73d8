package lowbit.quant;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.model.ForwardHook;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.quant.activation.ActivationQuantizer;
import lowbit.quant.activation.KvCacheQuantizer;
import lowbit.quant.activation.KvWidths;

/**
 * What is quantized while the model runs, as opposed to in its stored weights: the linears' inputs and the
 * KV cache. Saved with a quantized model (manifest "runtime") and attached again when it is loaded.
 *
 * @param activationBits  0: float activations
 * @param staticScales    per-tensor static scales by linear name (from calibration), or null for per-token dynamic
 * @param kv              key and value widths, one pair for every layer or one per layer (0 or 16: float)
 * @param kvGroupSize     along the head dimension; 0: the whole head
 * @param observer        the observer the static scales came from ({@link lowbit.quant.observer.ObserverSpec#text()}),
 *                        "minmax" when static scales are given without one; null for per-token dynamic
 */
public record RuntimeQuantization(int activationBits, Map<String, Float> staticScales, KvWidths kv, int kvGroupSize, String observer) {
    public static final RuntimeQuantization NONE = new RuntimeQuantization(0, null, 0, 0, 0);

    public RuntimeQuantization {
        if (kv == null) throw new IllegalArgumentException("KV widths are required (KvWidths.uniform(0, 0): float)");
        observer = staticScales == null ? null : observer == null ? "minmax" : observer;
    }

    public RuntimeQuantization(int activationBits, Map<String, Float> staticScales, KvWidths kv, int kvGroupSize) {
        this(activationBits, staticScales, kv, kvGroupSize, null);
    }

    /** Every layer's keys at {@code keyBits} and values at {@code valueBits}. */
    public RuntimeQuantization(int activationBits, Map<String, Float> staticScales, int keyBits, int valueBits, int kvGroupSize) {
        this(activationBits, staticScales, KvWidths.uniform(keyBits, valueBits), kvGroupSize);
    }

    public boolean any() {
        return activationBits != 0 || quantizesKv();
    }

    boolean quantizesKv() {
        return kv.quantizes();
    }

    /** The hooks, built (and their options validated) for this model. */
    public List<ForwardHook> hooks(ModelConfig cfg) {
        List<ForwardHook> hooks = new ArrayList<>();
        if (activationBits != 0)
            hooks.add(staticScales == null ? ActivationQuantizer.perTokenDynamic(activationBits)
                    : ActivationQuantizer.perTensorStatic(activationBits, staticScales));
        if (quantizesKv())
            hooks.add(new KvCacheQuantizer(cfg, kv, kvGroupSize == 0 ? cfg.headDim() : kvGroupSize, KvCacheQuantizer.Grid.QLLM_EVAL));
        return hooks;
    }

    /** Attaches the hooks; closing the result detaches them. */
    public AutoCloseable attach(Transformer model) {
        List<AutoCloseable> handles = new ArrayList<>();
        for (ForwardHook h : hooks(model.config())) handles.add(model.addHook(h));
        return () -> {
            for (AutoCloseable h : handles) h.close();
        };
    }

    /**
     * What {@link #fromJson} reads back. Uniform KV widths as "kv_key_bits" and "kv_value_bits"; per-layer ones as
     * "kv_layers": {"0": {"key_bits": K, "value_bits": V}, ...} (16: float) instead.
     */
    public Map<String, Object> describe(ModelConfig cfg) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("activation_bits", activationBits);
        m.put("activation_mode", activationBits == 0 ? null : staticScales == null ? "per-token-dynamic" : "per-tensor-static");
        if (staticScales != null) {
            m.put("activation_observer", observer);
            m.put("activation_scales", staticScales);
        }
        if (kv.uniform()) {
            m.put("kv_key_bits", kv.keyBits().get(0));
            m.put("kv_value_bits", kv.valueBits().get(0));
        } else {
            m.put("kv_layers", kv.describeLayers());
        }
        m.put("kv_group_size", kvGroupSize == 0 && quantizesKv() ? cfg.headDim() : kvGroupSize);
        for (ForwardHook h : hooks(cfg)) {
            if (h instanceof ActivationQuantizer a) m.put("activation", a.describe());
            if (h instanceof KvCacheQuantizer k) m.put("kv", k.describe());
        }
        return m;
    }

    /** From a manifest's or a result's "runtime" object; missing means none. */
    public static RuntimeQuantization fromJson(JsonNode n) {
        if (n == null || n.isMissingNode() || n.isNull()) return NONE;
        Map<String, Float> scales = null;
        if (n.hasNonNull("activation_scales")) {
            scales = new LinkedHashMap<>();
            var it = n.get("activation_scales").fields();
            while (it.hasNext()) {
                var e = it.next();
                scales.put(e.getKey(), (float) e.getValue().asDouble());
            }
        }
        KvWidths kv;
        if (n.hasNonNull("kv_layers")) {
            JsonNode layers = n.get("kv_layers");
            int count = layers.size();
            int[] k = new int[count], v = new int[count];
            for (int l = 0; l < count; l++) {
                JsonNode e = layers.get(Integer.toString(l));
                if (e == null) throw new IllegalArgumentException("runtime kv_layers lists " + count + " layers but not layer " + l);
                k[l] = e.path("key_bits").asInt();
                v[l] = e.path("value_bits").asInt();
            }
            kv = KvWidths.perLayer(k, v);
        } else {
            kv = KvWidths.uniform(n.path("kv_key_bits").asInt(), n.path("kv_value_bits").asInt());
        }
        // directories written before observers were offered hold min/max scales, which the constructor records as such
        String observer = n.hasNonNull("activation_observer") ? n.get("activation_observer").asText() : null;
        return new RuntimeQuantization(n.path("activation_bits").asInt(), scales, kv, n.path("kv_group_size").asInt(), observer);
    }
}
