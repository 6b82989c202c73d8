package lowbit.quant.mixed;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.model.Linear;
import lowbit.progress.Progress;
import lowbit.quant.QuantizedTensor;
import lowbit.stats.Bootstrap;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Mixed against uniform and the baselines at equal bits, on held-out windows (WikiText-2 test text, which neither the
 * sensitivity nor the selection windows come from): every allocation assembled from the same candidates and measured
 * by the same probe, so differences are the allocation's alone. Intervals are percentile bootstraps over runs
 * (calibration seeds) and windows ({@link Bootstrap}); differences from uniform are paired.
 */
public final class Comparison {
    private Comparison() {}

    /** The allocations compared at every budget, in the order reported ({@link #allocationNames} for one method). */
    public static final List<String> ALLOCATIONS = List.of("uniform", "mixed", "mixed (assembled)", "q4_k_m rule", "first-last higher",
            "random 1", "random 2", "random 3", "random 4", "random 5");

    /** The mixed allocation assembled from the candidates, beside the method's own run of it (GPTQ, AWQ). */
    public static final String ASSEMBLED = "mixed (assembled)";

    /** The allocations compared for {@code method}: every one, less {@link #ASSEMBLED} where it is "mixed" itself (RTN). */
    public static List<String> allocationNames(String method) {
        return Candidates.realizes(method) ? ALLOCATIONS : ALLOCATIONS.stream().filter(a -> !a.equals(ASSEMBLED)).toList();
    }

    /** The weights {@link #evaluate} uses instead of the candidates: the method's own runs of "mixed" and "uniform". */
    public static Map<String, Map<String, QuantizedTensor>> ownWeights(MixedPrecision.Result mixed) {
        if (mixed.realized() == null) return Map.of();
        return Map.of("mixed", mixed.realized().weights(), "uniform", mixed.realized().uniformWeights());
    }

    /** One allocation measured on the held-out windows in one run. */
    public record Entry(String method, double target, String allocation, long seed, double bitsPerWeight, String widths, double[] kld,
                        double[] nll) {}

    /** The first {@code n} consecutive windows of {@code seqlen} tokens of {@code ids}. */
    public static int[][] windows(int[] ids, int seqlen, int n) {
        if ((long) seqlen * n > ids.length)
            throw new IllegalArgumentException(n + " held-out windows of " + seqlen + " tokens need " + (long) seqlen * n + " tokens; the text has "
                    + ids.length);
        int[][] w = new int[n][];
        for (int i = 0; i < n; i++) w[i] = java.util.Arrays.copyOfRange(ids, i * seqlen, (i + 1) * seqlen);
        return w;
    }

    /**
     * Every allocation of {@link #ALLOCATIONS} at {@code target}: the session's (refined, checked) allocation as "mixed",
     * the rest from {@link Allocations}; the random ones are seeded by the run's seed.
     */
    public static Map<String, Map<String, Integer>> allocations(MixedPrecision.Result mixed, Candidates c, double target, int layers, long seed) {
        Map<String, Map<String, Integer>> m = new LinkedHashMap<>();
        m.put("uniform", Allocations.uniform(c, Allocations.uniformWidth(c, target)));
        m.put("mixed", mixed.bits());
        // the method's own run of the answer is "mixed"; assembled from the candidates as the baselines are, it is this one
        if (c.realizes()) m.put(ASSEMBLED, mixed.bits());
        m.put("q4_k_m rule", Allocations.q4km(c, target, layers));
        m.put("first-last higher", Allocations.firstLast(c, target, layers));
        for (int i = 1; i <= 5; i++) m.put("random " + i, Allocations.random(c, target, seed * 1000 + i));
        return m;
    }

    /**
     * Measures every allocation with {@code heldOut} (a probe on held-out windows whose model is the float model), from the
     * candidates, except where {@code weights} gives an allocation's own weights (the method's run of it).
     */
    public static List<Entry> evaluate(KldProbe heldOut, Candidates c, double target, long seed, Map<String, Map<String, Integer>> allocations,
                                       Map<String, Map<String, QuantizedTensor>> weightsOf, Progress progress) {
        List<Entry> out = new ArrayList<>();
        try (Progress.Task task = progress.start("held-out", allocations.size(), "allocation")) {
            for (var e : allocations.entrySet()) {
                task.message(e.getKey());
                Map<String, QuantizedTensor> own = weightsOf.get(e.getKey());
                Map<Linear, float[]> weights = new LinkedHashMap<>();
                for (String l : c.linears())
                    weights.put(heldOut.model().linear(l), (own != null ? own.get(l) : c.get(l, e.getValue().get(l))).dequantize());
                KldProbe.Measurement m = heldOut.with(weights);
                out.add(new Entry(c.method(), target, e.getKey(), seed, c.bitsPerWeight(e.getValue()), Allocations.widths(e.getValue()),
                        m.kld(), m.nll()));
                task.step(1);
            }
        }
        return out;
    }

    /**
     * Per (method, budget, allocation): runs, bits per weight, mean KL divergence and perplexity with 95% intervals, and
     * the paired difference in KL divergence from uniform with its interval; "beats uniform" when that interval is
     * entirely below 0.
     */
    public static Table summary(List<Entry> entries) {
        Table t = Table.create("mixed precision against uniform and the baselines (held-out)", StringColumn.create("method"),
                DoubleColumn.create("target_bits"), StringColumn.create("allocation"), IntColumn.create("runs"),
                DoubleColumn.create("bits_per_weight"), StringColumn.create("widths"), DoubleColumn.create("kld"), DoubleColumn.create("kld_lo"),
                DoubleColumn.create("kld_hi"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_lo"), DoubleColumn.create("ppl_hi"),
                DoubleColumn.create("kld_minus_uniform"), DoubleColumn.create("diff_lo"), DoubleColumn.create("diff_hi"),
                StringColumn.create("verdict"));
        Map<String, List<Entry>> byCell = new LinkedHashMap<>();
        for (Entry e : entries) byCell.computeIfAbsent(e.method() + "|" + e.target() + "|" + e.allocation(), k -> new ArrayList<>()).add(e);
        for (List<Entry> cell : byCell.values()) {
            Entry first = cell.get(0);
            List<Entry> uniform = byCell.get(first.method() + "|" + first.target() + "|uniform");
            double[][] kld = cell.stream().map(Entry::kld).toArray(double[][]::new);
            double[][] nll = cell.stream().map(Entry::nll).toArray(double[][]::new);
            Bootstrap.Interval k = Bootstrap.mean(kld, Bootstrap.DEFAULT_RESAMPLES, 1);
            Bootstrap.Interval p = Bootstrap.mean(nll, Bootstrap.DEFAULT_RESAMPLES, 1).map(Math::exp);
            t.stringColumn("method").append(first.method());
            t.doubleColumn("target_bits").append(first.target());
            t.stringColumn("allocation").append(first.allocation());
            t.intColumn("runs").append(cell.size());
            t.doubleColumn("bits_per_weight").append(cell.stream().mapToDouble(Entry::bitsPerWeight).average().orElseThrow());
            t.stringColumn("widths").append(cell.size() == 1 ? first.widths() : cell.stream().map(Entry::widths).distinct().count() == 1 ? first.widths() : "varies by run");
            t.doubleColumn("kld").append(k.mean());
            t.doubleColumn("kld_lo").append(k.lo());
            t.doubleColumn("kld_hi").append(k.hi());
            t.doubleColumn("ppl").append(p.mean());
            t.doubleColumn("ppl_lo").append(p.lo());
            t.doubleColumn("ppl_hi").append(p.hi());
            if (uniform == null || uniform.size() != cell.size() || first.allocation().equals("uniform")) {
                t.doubleColumn("kld_minus_uniform").appendMissing();
                t.doubleColumn("diff_lo").appendMissing();
                t.doubleColumn("diff_hi").appendMissing();
                t.stringColumn("verdict").append(first.allocation().equals("uniform") ? "" : "no paired uniform");
            } else {
                Bootstrap.Interval d = Bootstrap.difference(kld, uniform.stream().map(Entry::kld).toArray(double[][]::new), Bootstrap.DEFAULT_RESAMPLES, 1);
                t.doubleColumn("kld_minus_uniform").append(d.mean());
                t.doubleColumn("diff_lo").append(d.lo());
                t.doubleColumn("diff_hi").append(d.hi());
                t.stringColumn("verdict").append(d.hi() < 0 ? "beats uniform" : d.lo() > 0 ? "worse than uniform" : "not distinguishable");
            }
        }
        return t;
    }
}
