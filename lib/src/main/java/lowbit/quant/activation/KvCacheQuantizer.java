package lowbit.quant.activation;

import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.model.ForwardHook;
import lowbit.model.ModelConfig;

/**
 * Fake-quantizes the KV cache: the keys (after RoPE, and Qwen3's k-norm) and the values of every attention layer,
 * as the cache would hold them, before attention reads them. Group-wise asymmetric min-max per token, per kv head,
 * per group of {@code groupSize} consecutive head dimensions (default: the whole head); keys and values have their
 * own bit widths, per layer ({@link KvWidths}: one pair for every layer, or one per layer), and 16 (or 0) keeps one of
 * them in float.
 *
 * <p>The grid is qllm-eval's (thu-nics/qllm-eval, qllm_eval/quantization/quant_funcs.py {@code pseudo_quantize_tensor}
 * with zero_point=True, applied to key_states/value_states reshaped to (-1, kv_group_size) in
 * qattn/sw/llama_attn.py), {@link Grid#QLLM_EVAL}:
 * <pre>
 *   maxint = 2^b - 1
 *   scale  = max(max - min, 1e-5) / maxint
 *   zero   = clamp(-rint(min / scale), 0, maxint)
 *   x'     = scale * (clamp(rint(x / scale) + zero, 0, maxint) - zero)
 * </pre>
 * The range is not widened to include 0 (unlike our weight grid); instead the zero point is clamped to the code
 * range, so a group of one sign is clipped to [min - max, 0] or [0, max - min]. With a whole head (64-128 values after
 * RoPE) that almost never happens; with small groups it does, so {@link Grid#MIN_MAX} keeps the zero point unclamped
 * (an integer that may lie outside 0..maxint, as if it were stored wider or as a float min, KIVI-style) and covers
 * exactly [min, max]. One deliberate departure in both grids: a constant group (max == min) is left exact. The
 * reference's 1e-5 floor would turn a constant c into a single code near 0 (c = 0.5 at 8 bits becomes 1e-5).
 *
 * <p>Scale and codes are computed in double, each result rounded once to float (the reference runs in fp16).
 */
public final class KvCacheQuantizer implements ForwardHook {
    /** Bits meaning "leave this tensor in float". */
    public static final int FLOAT = 16;
    public static final double MIN_RANGE = 1e-5;

    public enum Grid {
        /** qllm-eval's pseudo_quantize_tensor: 1e-5 floor on the range, zero point clamped to 0..2^b-1. */
        QLLM_EVAL,
        /** Plain min-max: zero point unclamped, the group's [min, max] exactly covered. */
        MIN_MAX
    }

    private final int numKvHeads, headDim, groupSize;
    private final KvWidths widths;
    private final Grid grid;

    private KvCacheQuantizer(int numKvHeads, int headDim, KvWidths widths, int groupSize, Grid grid) {
        if (numKvHeads <= 0 || headDim <= 0)
            throw new IllegalArgumentException("numKvHeads and headDim must be positive, got " + numKvHeads + " and " + headDim);
        if (widths == null) throw new IllegalArgumentException("KV widths are required");
        this.numKvHeads = numKvHeads;
        this.headDim = headDim;
        this.widths = widths;
        if (groupSize < 1 || headDim % groupSize != 0)
            throw new IllegalArgumentException("KV group size must divide headDim " + headDim + ", got " + groupSize);
        this.groupSize = groupSize;
        if (grid == null) throw new IllegalArgumentException("KV grid is required");
        this.grid = grid;
    }

    /** Whole-head groups, qllm-eval's grid, every layer at one key and one value width. */
    public KvCacheQuantizer(ModelConfig cfg, int keyBits, int valueBits) {
        this(cfg, keyBits, valueBits, cfg.headDim(), Grid.QLLM_EVAL);
    }

    /** @param groupSize head dimensions per group; must divide cfg.headDim() */
    public KvCacheQuantizer(ModelConfig cfg, int keyBits, int valueBits, int groupSize, Grid grid) {
        this(cfg, KvWidths.uniform(keyBits, valueBits), groupSize, grid);
    }

    /** Each layer at its own widths ({@code widths} uniform, or one entry per layer of {@code cfg}). */
    public KvCacheQuantizer(ModelConfig cfg, KvWidths widths, int groupSize, Grid grid) {
        this(cfg.numKvHeads(), cfg.headDim(), checked(widths, cfg.numLayers()), groupSize, grid);
    }

    /** For a cache of numKvHeads heads of headDim, without a model config. */
    public static KvCacheQuantizer forShape(int numKvHeads, int headDim, int keyBits, int valueBits, int groupSize, Grid grid) {
        return forShape(numKvHeads, headDim, KvWidths.uniform(keyBits, valueBits), groupSize, grid);
    }

    /** As {@link #forShape(int, int, int, int, int, Grid)} with widths per layer. */
    public static KvCacheQuantizer forShape(int numKvHeads, int headDim, KvWidths widths, int groupSize, Grid grid) {
        return new KvCacheQuantizer(numKvHeads, headDim, widths, groupSize, grid);
    }

    private static KvWidths checked(KvWidths widths, int numLayers) {
        if (widths != null) widths.checkLayers(numLayers);
        return widths;
    }

    @Override
    public void keyValue(int layer, float[] keys, float[] values, int rows) {
        int n = rows * numKvHeads * headDim;
        if (keys.length < n || values.length < n)
            throw new IllegalArgumentException("layer " + layer + ": expected keys and values of " + rows + " rows x "
                    + numKvHeads + " kv heads x " + headDim + " = " + n + " floats, got " + keys.length + " and " + values.length);
        // Heads sit side by side in a row and groups divide headDim, so the groups are simply consecutive runs.
        int keyBits = widths.key(layer), valueBits = widths.value(layer);
        if (keyBits != FLOAT) quantizeGroups(keys, n, groupSize, keyBits, grid);
        if (valueBits != FLOAT) quantizeGroups(values, n, groupSize, valueBits, grid);
    }

    /** Fake-quantizes a[0..n) in place, each run of {@code group} consecutive values on its own grid. */
    public static void quantizeGroups(float[] a, int n, int group, int bits, Grid grid) {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("KV bits must be 2..8, got " + bits);
        if (group < 1 || n % group != 0) throw new IllegalArgumentException("group size " + group + " does not divide " + n + " values");
        int maxint = (1 << bits) - 1;
        for (int off = 0; off < n; off += group) {
            double lo = a[off], hi = a[off];
            for (int i = off + 1; i < off + group; i++) {
                lo = Math.min(lo, a[i]);
                hi = Math.max(hi, a[i]);
            }
            if (Double.isNaN(lo) || Double.isNaN(hi)) {   // keep a NaN visible instead of quantizing around it
                for (int i = off; i < off + group; i++) a[i] = Float.NaN;
                continue;
            }
            if (lo == hi) continue;
            double range = grid == Grid.QLLM_EVAL ? Math.max(hi - lo, MIN_RANGE) : hi - lo;
            double scale = range / maxint;
            double zero = -Math.rint(lo / scale);
            if (grid == Grid.QLLM_EVAL) zero = Math.max(0, Math.min(maxint, zero));
            for (int i = off; i < off + group; i++) {
                double q = Math.max(0, Math.min(maxint, Math.rint(a[i] / scale) + zero));
                a[i] = (float) (scale * (q - zero));
            }
        }
    }

    /** The key width of every layer (16: float); per-layer widths are in {@link #widths()}. */
    public int keyBits() {
        requireUniform();
        return widths.key(0);
    }

    /** The value width of every layer (16: float). */
    public int valueBits() {
        requireUniform();
        return widths.value(0);
    }

    public KvWidths widths() {
        return widths;
    }

    private void requireUniform() {
        if (!widths.uniform()) throw new IllegalStateException("KV widths differ by layer: read widths()");
    }

    public int groupSize() {
        return groupSize;
    }

    public Grid grid() {
        return grid;
    }

    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", "kv-cache fake quantization");
        if (widths.uniform()) {
            m.put("key_bits", widths.key(0) == FLOAT ? "float" : widths.key(0));
            m.put("value_bits", widths.value(0) == FLOAT ? "float" : widths.value(0));
        } else {
            m.put("key_bits", "per layer");
            m.put("value_bits", "per layer");
            m.put("layers", widths.describeLayers());
        }
        m.put("group_size", groupSize);
        m.put("head_dim", headDim);
        m.put("num_kv_heads", numKvHeads);
        m.put("granularity", "per token, per kv head, groups of " + groupSize + " along head_dim");
        m.put("grid", grid == Grid.QLLM_EVAL
                ? "asymmetric min-max, qllm-eval (range floor 1e-5, zero clamped to 0.." + "2^b-1)"
                : "asymmetric min-max, zero unclamped");
        m.put("constant_groups", "kept exact");
        m.put("tensors", "keys after RoPE (and k-norm), values; every attention layer");
        m.put("reference", "thu-nics/qllm-eval qllm_eval/quantization/quant_funcs.py pseudo_quantize_tensor");
        return m;
    }

}
