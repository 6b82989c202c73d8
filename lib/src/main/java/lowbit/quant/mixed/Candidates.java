package lowbit.quant.mixed;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Supplier;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.Rtn;
import lowbit.tokenizer.Tokenizer;

/**
 * Every block linear quantized at every candidate width, by the method in the loop: what an allocation is assembled
 * from, measured and evaluated with.
 *
 * <p>RTN quantizes each linear alone, so its candidates are exact for any allocation. GPTQ's are the weights of one
 * uniform GPTQ run per width (sequential, each layer calibrated on the outputs of the layers before it quantized at
 * that width); a mixed model assembled from them differs from a GPTQ run with the mixed widths in the inputs the
 * error compensation saw after a width change, which is enough to change the answer (on the default model at
 * 3.16 bits/weight the assembled answer measured worse than uniform), so the answer is run by GPTQ itself
 * ({@link #realize}) before it is kept. AWQ folds scales searched per width into norms and earlier linears, so its
 * widths cannot be assembled: its allocation is measured with RTN candidates ({@link #measuredWith()}) and the answer
 * is run by AWQ itself.
 */
public final class Candidates {
    private final String method;
    private final String measuredWith;
    private final QuantConfig grid;
    private final List<Integer> widths;
    private final Map<String, Map<Integer, QuantizedTensor>> weights;
    private final Map<String, Object> calibration;
    private final Realizer realizer;

    /** How the method itself quantizes an allocation (null: the candidates are exact, as RTN's). */
    private record Realizer(QuantizationRecipe recipe, Supplier<Transformer> fresh, Tokenizer tokenizer) {}

    private Candidates(String method, String measuredWith, QuantConfig grid, List<Integer> widths,
                       Map<String, Map<Integer, QuantizedTensor>> weights, Map<String, Object> calibration, Realizer realizer) {
        this.realizer = realizer;
        this.method = method;
        this.measuredWith = measuredWith;
        this.grid = grid;
        this.widths = List.copyOf(widths);
        this.weights = weights;
        this.calibration = calibration;
    }

    /** The widths allowed as candidates: 2..8, each once, ascending. */
    public static List<Integer> checkWidths(List<Integer> widths) {
        if (widths == null || widths.isEmpty()) throw new IllegalArgumentException("--candidates: give at least one width, e.g. 2,3,4,8");
        List<Integer> sorted = new ArrayList<>(new java.util.TreeSet<>(widths));
        if (sorted.size() != widths.size()) throw new IllegalArgumentException("--candidates " + widths + " lists a width twice");
        for (int b : sorted)
            if (b < 2 || b > 8) throw new IllegalArgumentException("--candidates " + widths + ": width " + b + " is outside 2..8");
        return sorted;
    }

    /** RTN candidates of {@code model}'s current weights on {@code grid} at each width. */
    public static Candidates rtn(Transformer model, QuantConfig grid, List<Integer> widths) {
        return rtn("rtn", model, grid, widths);
    }

    private static Candidates rtn(String method, Transformer model, QuantConfig grid, List<Integer> widths) {
        widths = checkWidths(widths);
        Map<String, Map<Integer, QuantizedTensor>> w = new LinkedHashMap<>();
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l)) {
                Map<Integer, QuantizedTensor> byWidth = new TreeMap<>();
                float[] weight = lin.weight();
                for (int b : widths) byWidth.put(b, Rtn.quantize(lin.name(), weight, lin.outFeatures(), lin.inFeatures(), grid.withBits(b)));
                w.put(lin.name(), byWidth);
            }
        return new Candidates(method, "rtn", grid, widths, w, null, null);
    }

    /**
     * Candidates by {@code recipe}'s method: RTN directly; GPTQ by one uniform run per width, each on a fresh float
     * model from {@code fresh}; AWQ by RTN (see the class comment). {@code floatModel} is the float model the probe
     * measures on (RTN and AWQ quantize its weights; it is not changed).
     */
    public static Candidates of(QuantizationRecipe recipe, QuantConfig grid, List<Integer> widths, Transformer floatModel,
                                Supplier<Transformer> fresh, Tokenizer tokenizer, Progress progress) {
        String method = recipe.spec().method();
        widths = checkWidths(widths);
        switch (String.valueOf(method)) {
            case "rtn":
                return rtn(floatModel, grid, widths);
            case "awq": {
                Candidates r = rtn("awq", floatModel, grid, widths);
                return new Candidates("awq", "rtn", grid, r.widths, r.weights, null, new Realizer(recipe, fresh, tokenizer));
            }
            case "gptq":
                break;
            default:
                throw new IllegalArgumentException("--method " + method + ": mixed precision allocates rtn, gptq or awq");
        }
        Map<String, Map<Integer, QuantizedTensor>> w = new LinkedHashMap<>();
        Map<String, Object> calib = null;
        try (Progress.Task task = progress.start("gptq candidates", widths.size(), "width")) {
            for (int b : widths) {
                task.message("w" + b);
                QuantizationRecipe r = recipe.withSpec(QuantSpec.of("gptq", grid.withBits(b)));
                try (Transformer m = fresh.get()) {
                    QuantizationRecipe.Outcome out = r.apply(m, tokenizer, Progress.NONE);
                    QuantizedModel qm = out.model();
                    for (var e : qm.weights().entrySet()) w.computeIfAbsent(e.getKey(), k -> new TreeMap<>()).put(b, e.getValue());
                    if (calib == null && out.calibration() != null) calib = out.calibration().provenance();
                }
                task.step(1);
            }
        }
        return new Candidates("gptq", "gptq", grid, widths, w, calib, new Realizer(recipe, fresh, tokenizer));
    }

    /** The method the allocation is for. */
    public String method() {
        return method;
    }

    /** The method whose weights the allocation is measured with (AWQ's is RTN). */
    public String measuredWith() {
        return measuredWith;
    }

    public QuantConfig grid() {
        return grid;
    }

    public List<Integer> widths() {
        return widths;
    }

    /** The block linears, in model order. */
    public List<String> linears() {
        return List.copyOf(weights.keySet());
    }

    /** The GPTQ candidates' calibration draw, or null (RTN needs none). */
    public Map<String, Object> calibration() {
        return calibration;
    }

    public QuantizedTensor get(String linear, int bits) {
        Map<Integer, QuantizedTensor> byWidth = weights.get(linear);
        if (byWidth == null) throw new IllegalArgumentException("no candidates for linear " + linear);
        QuantizedTensor q = byWidth.get(bits);
        if (q == null) throw new IllegalArgumentException(linear + " has no " + bits + "-bit candidate (candidates: " + widths + ")");
        return q;
    }

    public long storageBits(String linear, int bits) {
        return get(linear, bits).storageBits();
    }

    public long parameters(String linear) {
        QuantizedTensor q = get(linear, widths.get(0));
        return (long) q.rows() * q.columns();
    }

    /** Whether {@link #realize} runs the method (GPTQ, AWQ) instead of assembling candidates (RTN). */
    public boolean realizes() {
        return realizer != null;
    }

    /** Whether candidates for {@code method} are run by the method itself before an answer is kept. */
    public static boolean realizes(String method) {
        return "gptq".equals(method) || "awq".equals(method);
    }

    /**
     * The allocation quantized by the method itself, on a fresh float model with {@code bits} as its bits map: for GPTQ
     * one sequential run in which every layer is calibrated on the outputs of the mixed model before it (what
     * {@code quantize --bits-map} gives), for AWQ its scale and clip searches on the mixed grids. RTN's, and any
     * uniform allocation's, are the candidates themselves (the same run).
     */
    public Map<String, QuantizedTensor> realize(Map<String, Integer> bits, Progress progress) {
        Map<String, QuantizedTensor> out = new LinkedHashMap<>();
        boolean uniform = bits.values().stream().distinct().count() == 1;
        if (realizer == null || (uniform && measuredWith.equals(method))) {
            for (String l : weights.keySet()) out.put(l, get(l, bits.get(l)));
            return out;
        }
        int base = bits.values().iterator().next();
        QuantizationRecipe r = realizer.recipe().withSpec(QuantSpec.of(method, grid.withBits(base)))
                .withBitsMap(new BitsMap(null, grid.withBits(base), bits, Map.of()));
        try (Transformer m = realizer.fresh().get()) {
            QuantizedModel qm = r.apply(m, realizer.tokenizer(), progress).model();
            for (String l : weights.keySet()) out.put(l, qm.weights().get(l));
        }
        return out;
    }

    /** Puts the assembled weights of {@code bits} (every block linear must be listed) into {@code model}. */
    public void applyTo(Transformer model, Map<String, Integer> bits) {
        for (String name : weights.keySet()) {
            Integer b = bits.get(name);
            if (b == null) throw new IllegalArgumentException("allocation has no width for " + name);
            model.linear(name).setWeight(get(name, b).dequantize());
        }
    }

    /** Bits per weight of {@code bits} as stored (codes, scales, zeros), over the block linears. */
    public double bitsPerWeight(Map<String, Integer> bits) {
        long s = 0, p = 0;
        for (String name : weights.keySet()) {
            s += storageBits(name, bits.get(name));
            p += parameters(name);
        }
        return (double) s / p;
    }
}
