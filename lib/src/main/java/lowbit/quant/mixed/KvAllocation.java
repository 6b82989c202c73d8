package lowbit.quant.mixed;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lowbit.model.ForwardHook;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.activation.KvCacheQuantizer;
import lowbit.quant.activation.KvWidths;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * KV-cache bits per layer: the keys and the values of every attention layer (the items) each get a width, chosen as
 * the weights' are and checked the same way.
 *
 * <p>Measured: each item's KL divergence to the float model ({@link KldProbe}) with only that item quantized at the
 * probe width (a {@link KvCacheQuantizer} on that one layer, measured from that layer on), per window, so that the
 * split-half Spearman over the items says whether the ranking is stable. Carried to the other widths by the ratio of
 * the item's mean squared quantization error at each width to that at the probe width, computed in the same pass on
 * the keys or values that layer produced (the cache's input, before quantization). Allocated by the exact knapsack
 * ({@link BitAllocator}) over the items, with storage per token of codes plus the fp16 scale and the integer zero
 * point of every group that the quantizer's grid (qllm-eval's, zero clamped to the code range) needs, against a budget
 * in average bits per cached element. Checked on selection windows (a second probe) against uniform KV at the same
 * budget (the widest width that fits): uniform is returned when the allocation is not better there.
 *
 * <p>On top of a weight allocation: the probes measure their model as it is now, against the float model they were
 * made from. Quantize the weights, {@code recache(0)} both probes, and the KV allocation is measured, and checked, on
 * the weight-quantized model; each item's sensitivity is its KL divergence above that of the weights alone. The
 * model must carry no KV hook of its own while this runs.
 */
public final class KvAllocation {
    private KvAllocation() {}

    /** Keys or values of one layer. */
    public enum Tensor {
        KEYS, VALUES;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** One allocated item. */
    public record Item(int layer, Tensor tensor) {
        /** The knapsack's name for it, e.g. "kv.3.keys". */
        public String name() {
            return "kv." + layer + "." + tensor.label();
        }
    }

    /** Each item's measured sensitivity at the probe width and its quantization error at every candidate width. */
    public static final class Measured {
        private final ModelConfig config;
        private final List<Item> items;
        private final List<Integer> widths;
        private final int probeWidth, groupSize;
        private final double[] kld;          // per item, above the model's own KL divergence
        private final double[][] kldWindows; // [item][window], above the model's own KL divergence
        private final double[][] mse;        // [item][width index]
        private final long positions;
        private final double seconds;

        private Measured(ModelConfig config, List<Item> items, List<Integer> widths, int probeWidth, int groupSize, double[] kld,
                         double[][] kldWindows, double[][] mse, long positions, double seconds) {
            this.config = config;
            this.items = items;
            this.widths = widths;
            this.probeWidth = probeWidth;
            this.groupSize = groupSize;
            this.kld = kld;
            this.kldWindows = kldWindows;
            this.mse = mse;
            this.positions = positions;
            this.seconds = seconds;
        }

        public List<Item> items() {
            return items;
        }

        public List<Integer> widths() {
            return widths;
        }

        public int probeWidth() {
            return probeWidth;
        }

        /** Head dimensions per group (the whole head when 0 was asked for). */
        public int groupSize() {
            return groupSize;
        }

        /** Tokens scored per measurement of one item. */
        public long positions() {
            return positions;
        }

        public double seconds() {
            return seconds;
        }

        /** Item i's measured KL divergence at the probe width, above the unquantized cache's. */
        public double kld(int i) {
            return kld[i];
        }

        /** Item i's mean squared quantization error at widths().get(j). */
        public double mse(int i, int j) {
            return mse[i][j];
        }

        /** Spearman over the items of the KL divergences on even windows against odd ones (NaN with one window). */
        public double splitHalfCorrelation() {
            if (kldWindows[0].length < 2) return Double.NaN;
            double[] a = new double[items.size()], b = new double[items.size()];
            for (int i = 0; i < a.length; i++) {
                a[i] = half(kldWindows[i], 0);
                b[i] = half(kldWindows[i], 1);
            }
            return Sensitivities.spearman(a, b);
        }

        /** Item i's mean over the windows of one parity (0: even, 1: odd). */
        public double halfKld(int i, int parity) {
            return kldWindows[i].length < 2 ? Double.NaN : half(kldWindows[i], parity);
        }

        private static double half(double[] v, int parity) {
            double s = 0;
            int n = 0;
            for (int w = parity; w < v.length; w += 2) {
                s += v[w];
                n++;
            }
            return s / n;
        }

        /**
         * Predicted loss of every item at every width: the measured KL divergence at the probe width (floored at 1e-9 so
         * that fewer bits always cost something) times mse(width) / mse(probe width).
         */
        public double[][] losses() {
            int p = widths.indexOf(probeWidth);
            double[][] out = new double[items.size()][widths.size()];
            for (int i = 0; i < out.length; i++) {
                double k0 = Math.max(kld[i], 1e-9), m0 = mse[i][p];
                for (int j = 0; j < widths.size(); j++) out[i][j] = j == p ? k0 : m0 > 0 ? k0 * mse[i][j] / m0 : k0;
            }
            return out;
        }

        /** Storage per token of one item at {@code bits}: codes, and per group an fp16 scale and a bits-wide zero point. */
        public long storageBits(int bits) {
            return LayerOption.storageBits(config.numKvHeads(), config.headDim(), QuantConfig.group(bits, groupSize));
        }

        /** Cached elements per token of one item. */
        public long elements() {
            return (long) config.numKvHeads() * config.headDim();
        }

        /** Average stored bits per cached element of an allocation. */
        public double bitsPerElement(KvWidths w) {
            long storage = 0;
            for (Item it : items) storage += storageBits(it.tensor() == Tensor.KEYS ? w.key(it.layer()) : w.value(it.layer()));
            return (double) storage / (elements() * items.size());
        }

        /**
         * The exact knapsack at {@code target} bits per cached element, checked on {@code selection}'s windows against
         * uniform KV at the widest width within the budget; uniform is returned when the allocation is not better there.
         */
        public Result allocate(KldProbe selection, double target, Progress progress) {
            return choose(selection, target, losses(), progress);
        }

        /** {@link #allocate} with the knapsack run on {@code losses} [item][width] instead of the measured ones. */
        Result choose(KldProbe selection, double target, double[][] losses, Progress progress) {
            long t0 = System.nanoTime();
            List<LayerOption> options = new ArrayList<>();
            List<String> names = new ArrayList<>();
            for (int i = 0; i < items.size(); i++) {
                names.add(items.get(i).name());
                for (int j = 0; j < widths.size(); j++)
                    options.add(new LayerOption(items.get(i).name(), widths.get(j), elements(), storageBits(widths.get(j)), losses[i][j]));
            }
            BitAllocator.Allocation a;
            a = knapsack(names, options, target);
            int[] k = new int[config.numLayers()], v = new int[config.numLayers()];
            for (int i = 0; i < items.size(); i++) {
                int bits = a.bits().get(items.get(i).name());
                if (items.get(i).tensor() == Tensor.KEYS) k[items.get(i).layer()] = bits;
                else v[items.get(i).layer()] = bits;
            }
            KvWidths knapsack = KvWidths.perLayer(k, v);
            int uniformWidth = widths.getFirst();
            for (int b : widths) if (storageBits(b) * items.size() <= budget(target) && b > uniformWidth) uniformWidth = b;
            int[] u = new int[config.numLayers()];
            Arrays.fill(u, uniformWidth);
            KvWidths uniform = KvWidths.perLayer(u, u);
            double mixedKld, uniformKld;
            try (Progress.Task task = progress.start("kv selection check", 2, "allocation")) {
                mixedKld = measureAt(selection, knapsack, groupSize).meanKld();
                task.step(1);
                uniformKld = knapsack.equals(uniform) ? mixedKld : measureAt(selection, uniform, groupSize).meanKld();
                task.step(1);
            }
            boolean mixed = mixedKld < uniformKld;
            KvWidths chosen = mixed ? knapsack : uniform;
            return new Result(chosen, groupSize, target, bitsPerElement(chosen), uniformWidth, knapsack, mixed ? mixedKld : uniformKld,
                    mixedKld, uniformKld, mixed ? "knapsack" : "uniform", splitHalfCorrelation(), positions, probeWidth, widths,
                    table(chosen, losses), seconds + (System.nanoTime() - t0) / 1e9);
        }

        /** The budget in bits per token over all items, rounded down as the knapsack rounds it. */
        private long budget(double target) {
            return java.math.BigDecimal.valueOf(target).multiply(java.math.BigDecimal.valueOf(elements() * items.size()))
                    .setScale(0, java.math.RoundingMode.FLOOR).longValueExact();
        }

        /** One row per item: where, the measured KL divergence and its halves, the error at every width, the predicted loss and the width chosen. */
        public Table table(KvWidths chosen, double[][] losses) {
            Table t = Table.create("kv cache sensitivity per layer", IntColumn.create("layer"), StringColumn.create("tensor"),
                    DoubleColumn.create("kld"), DoubleColumn.create("kld_even"), DoubleColumn.create("kld_odd"));
            for (int b : widths) t.addColumns(DoubleColumn.create("mse_w" + b), DoubleColumn.create("predicted_w" + b));
            t.addColumns(IntColumn.create("bits"));
            for (int i = 0; i < items.size(); i++) {
                Item it = items.get(i);
                t.intColumn("layer").append(it.layer());
                t.stringColumn("tensor").append(it.tensor().label());
                t.doubleColumn("kld").append(kld[i]);
                t.doubleColumn("kld_even").append(halfKld(i, 0));
                t.doubleColumn("kld_odd").append(halfKld(i, 1));
                for (int j = 0; j < widths.size(); j++) {
                    t.doubleColumn("mse_w" + widths.get(j)).append(mse[i][j]);
                    t.doubleColumn("predicted_w" + widths.get(j)).append(losses[i][j]);
                }
                t.intColumn("bits").append(it.tensor() == Tensor.KEYS ? chosen.key(it.layer()) : chosen.value(it.layer()));
            }
            return t;
        }
    }

    /** The knapsack with its budget errors in the KV cache's words. */
    private static BitAllocator.Allocation knapsack(List<String> names, List<LayerOption> options, double target) {
        try {
            return BitAllocator.allocate(names, options, target);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("KV budget: " + e.getMessage().replace("bits/weight", "bits/element")
                    .replace(" layers (", " keys and values (").replace(" parameters)", " elements per token)"), e);
        }
    }

    /**
     * Refuses a budget of {@code target} bits per cached element outside what {@code widths} can give on {@code config}
     * (group overhead included), with the same message the allocation would give after its measurements.
     */
    public static void checkBudget(ModelConfig config, List<Integer> widths, int groupSize, double target) {
        int g = groupSize == 0 ? config.headDim() : groupSize;
        List<String> names = new ArrayList<>();
        List<LayerOption> options = new ArrayList<>();
        long elements = (long) config.numKvHeads() * config.headDim();
        for (int l = 0; l < config.numLayers(); l++)
            for (Tensor t : Tensor.values()) {
                String name = new Item(l, t).name();
                names.add(name);
                for (int b : widths)
                    options.add(new LayerOption(name, b, elements, LayerOption.storageBits(config.numKvHeads(), config.headDim(), QuantConfig.group(b, g)), 0));
            }
        knapsack(names, options, target);
    }

    /**
     * One KV allocation and how it was checked.
     *
     * @param widths               the answer, one (key, value) pair per layer
     * @param bitsPerElement       its storage per cached element, group overhead included
     * @param uniformWidth         the widest uniform width within the budget (what the answer was checked against)
     * @param knapsack             the knapsack's answer before the check
     * @param selectionKld         the answer's mean KL divergence on the selection windows
     * @param chosen               "knapsack" or "uniform"
     * @param splitHalfSpearman    stability of the measured ranking at half the sensitivity tokens
     * @param positions            tokens scored per sensitivity measurement
     */
    public record Result(KvWidths widths, int groupSize, double target, double bitsPerElement, int uniformWidth, KvWidths knapsack,
                         double selectionKld, double knapsackSelectionKld, double uniformSelectionKld, String chosen,
                         double splitHalfSpearman, long positions, int probeWidth, List<Integer> candidates, Table table,
                         double seconds) {
        /** The "kv" object of a bits map: {@code BitsMap.write(file, weights, base, result.bitsMapKv(), provenance)}. */
        public BitsMap.Kv bitsMapKv() {
            return new BitsMap.Kv(groupSize, widths);
        }

        /** What a bits map or a result row records about it. */
        public Map<String, Object> provenance() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("target_bits_per_element", target);
            m.put("bits_per_element", bitsPerElement);
            m.put("candidates", candidates);
            m.put("probe_width", probeWidth);
            m.put("group_size", groupSize);
            m.put("grid", "qllm-eval asymmetric min-max per token and kv head; fp16 scale and integer zero per group");
            m.put("sensitivity", "KL divergence with one layer's keys or values quantized, carried to other widths by the ratio of its MSE");
            m.put("split_half_spearman", splitHalfSpearman);
            m.put("sensitivity_tokens", positions);
            m.put("chosen", chosen);
            m.put("uniform_bits", uniformWidth);
            m.put("selection_kld", selectionKld);
            m.put("knapsack_selection_kld", knapsackSelectionKld);
            m.put("uniform_selection_kld", uniformSelectionKld);
            m.put("knapsack", knapsack.describeLayers());
            return m;
        }
    }

    /** {@link #measure} then {@link Measured#allocate}: the KV allocation at {@code target} bits per cached element. */
    public static Result allocate(KldProbe sensitivity, KldProbe selection, List<Integer> widths, int probeWidth, int groupSize,
                                  double target, Progress progress) {
        return measure(sensitivity, widths, probeWidth, groupSize, progress).allocate(selection, target, progress);
    }

    /**
     * Measures every item on {@code probe}'s windows at {@code probeWidth}, and its error at each of {@code widths} (2..8),
     * with groups of {@code groupSize} head dimensions (0: the whole head).
     */
    public static Measured measure(KldProbe probe, List<Integer> widths, int probeWidth, int groupSize, Progress progress) {
        long t0 = System.nanoTime();
        Transformer model = probe.model();
        ModelConfig cfg = model.config();
        if (widths.isEmpty()) throw new IllegalArgumentException("KV allocation needs candidate widths");
        List<Integer> sorted = widths.stream().sorted().distinct().toList();
        for (int b : sorted)
            if (b < 2 || b > 8) throw new IllegalArgumentException("KV candidate widths must be 2..8, got " + b);
        if (!sorted.contains(probeWidth)) throw new IllegalArgumentException("KV probe width " + probeWidth + " is not a candidate " + sorted);
        int g = groupSize == 0 ? cfg.headDim() : groupSize;
        if (g < 1 || cfg.headDim() % g != 0)
            throw new IllegalArgumentException("KV group size must divide headDim " + cfg.headDim() + " (0: the whole head), got " + groupSize);
        List<Item> items = new ArrayList<>();
        for (int l = 0; l < cfg.numLayers(); l++)
            for (Tensor t : Tensor.values()) items.add(new Item(l, t));
        KldProbe.Measurement base = probe.current();
        int n = items.size();
        double[] kld = new double[n];
        double[][] perWindow = new double[n][], mse = new double[n][sorted.size()];
        int elements = cfg.numKvHeads() * cfg.headDim();
        try (Progress.Task task = progress.start("kv sensitivity (kld)", n, "item")) {
            for (int i = 0; i < n; i++) {
                Item it = items.get(i);
                task.message(it.name());
                double[] err = new double[sorted.size()];
                long[] count = {0};
                ForwardHook error = new ForwardHook() {
                    @Override
                    public void keyValue(int layer, float[] keys, float[] values, int rows) {
                        if (layer != it.layer()) return;
                        float[] x = it.tensor() == Tensor.KEYS ? keys : values;
                        int len = rows * elements;
                        for (int j = 0; j < sorted.size(); j++) {
                            float[] q = Arrays.copyOf(x, len);
                            KvCacheQuantizer.quantizeGroups(q, len, g, sorted.get(j), KvCacheQuantizer.Grid.QLLM_EVAL);
                            double s = 0;
                            for (int e = 0; e < len; e++) {
                                double d = (double) q[e] - x[e];
                                s += d * d;
                            }
                            err[j] += s;
                        }
                        count[0] += len;
                    }
                };
                KldProbe.Measurement m;
                // the error hook first: it sees what the layer produced, before the quantizer rewrites it
                try (AutoCloseable a = model.addHook(error); AutoCloseable b = model.addHook(only(cfg, it, probeWidth, g))) {
                    m = probe.from(it.layer());
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
                double[] delta = new double[m.kld().length];
                for (int w = 0; w < delta.length; w++) delta[w] = m.kld()[w] - base.kld()[w];
                perWindow[i] = delta;
                kld[i] = new KldProbe.Measurement(delta, m.nll()).meanKld();
                for (int j = 0; j < sorted.size(); j++) mse[i][j] = err[j] / count[0];
                task.step(1);
            }
        }
        return new Measured(cfg, List.copyOf(items), sorted, probeWidth, g, kld, perWindow, mse, probe.positions(), (System.nanoTime() - t0) / 1e9);
    }

    /** {@code probe}'s model with its KV cache at {@code widths}, measured and the hook removed. */
    public static KldProbe.Measurement measureAt(KldProbe probe, KvWidths widths, int groupSize) {
        Transformer model = probe.model();
        ModelConfig cfg = model.config();
        int g = groupSize == 0 ? cfg.headDim() : groupSize;
        int first = 0;
        while (first < cfg.numLayers() - 1 && widths.key(first) == KvCacheQuantizer.FLOAT && widths.value(first) == KvCacheQuantizer.FLOAT) first++;
        try (AutoCloseable h = model.addHook(new KvCacheQuantizer(cfg, widths, g, KvCacheQuantizer.Grid.QLLM_EVAL))) {
            return probe.from(first);
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }

    /** A quantizer of the one item at {@code bits}, every other tensor in float. */
    private static KvCacheQuantizer only(ModelConfig cfg, Item it, int bits, int groupSize) {
        int[] k = new int[cfg.numLayers()], v = new int[cfg.numLayers()];
        Arrays.fill(k, KvCacheQuantizer.FLOAT);
        Arrays.fill(v, KvCacheQuantizer.FLOAT);
        if (it.tensor() == Tensor.KEYS) k[it.layer()] = bits;
        else v[it.layer()] = bits;
        return new KvCacheQuantizer(cfg, KvWidths.perLayer(k, v), groupSize, KvCacheQuantizer.Grid.QLLM_EVAL);
    }
}
