package lowbit.quant;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.model.Linear;
import lowbit.model.Transformer;

/**
 * What a weight method produced for a model: one {@link QuantizedTensor} per quantized linear (in model
 * order), per-layer facts the method reports (GPTQ's loss and damping, ...), and timings. The model it ran
 * on already holds the dequantized weights.
 *
 * @param config  the uniform grid, or null for a method whose weights are not on one (BiLLM)
 */
public record QuantizedModel(String method, QuantConfig config, Map<String, Object> options,
                             Map<String, ? extends QuantizedTensor> weights, Map<String, Map<String, Object>> layers,
                             Map<String, Double> timings) {

    public QuantizedModel {
        weights = Collections.unmodifiableMap(new LinkedHashMap<>(weights));
        layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
        timings = Collections.unmodifiableMap(new LinkedHashMap<>(timings));
    }

    public long parameters() {
        long n = 0;
        for (QuantizedTensor w : weights.values()) n += (long) w.rows() * w.columns();
        return n;
    }

    /** Storage of all quantized linears (codes, scales, zeros, group indices) per weight. */
    public double bitsPerWeight() {
        long bits = 0;
        for (QuantizedTensor w : weights.values()) bits += w.storageBits();
        return (double) bits / parameters();
    }

    /** The grid provenance records: the uniform grid's description, or (no uniform grid) the first weight's own. */
    public Map<String, Object> grid() {
        if (config != null) return config.describe();
        return weights.isEmpty() ? Map.of() : weights.values().iterator().next().describe();
    }

    /** Puts the dequantized weights into a model (another instance of the same architecture). */
    public void applyTo(Transformer model) {
        for (var e : weights.entrySet()) {
            Linear l = model.linear(e.getKey());
            QuantizedTensor q = e.getValue();
            if (l.outFeatures() != q.rows() || l.inFeatures() != q.columns())
                throw new IllegalArgumentException(e.getKey() + " is " + l.outFeatures() + "x" + l.inFeatures()
                        + " in the model but " + q.rows() + "x" + q.columns() + " quantized");
            l.setWeight(q.dequantize());
        }
    }

    /** RTN over every linear of every block (lm_head stays in float, as in the GPTQ and AWQ references). */
    public static QuantizedModel rtn(Transformer model, QuantConfig cfg) {
        return rtn(model, cfg, name -> cfg);
    }

    /** RTN with each linear on its own grid ({@code configs} by module name); {@code cfg} is the default recorded. */
    public static QuantizedModel rtn(Transformer model, QuantConfig cfg, java.util.function.Function<String, QuantConfig> configs) {
        long t0 = System.nanoTime();
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, Map<String, Object>> layers = new LinkedHashMap<>();
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l)) {
                QuantizedWeight q = Rtn.quantize(lin.name(), lin.weight(), lin.outFeatures(), lin.inFeatures(), configs.apply(lin.name()));
                lin.setWeight(q.dequantize());
                weights.put(lin.name(), q);
                layers.put(lin.name(), Map.of("bits_per_weight", q.bitsPerWeight()));
            }
        return new QuantizedModel("rtn", cfg, Map.of(), weights, layers, Map.of("total_seconds", (System.nanoTime() - t0) / 1e9));
    }
}
