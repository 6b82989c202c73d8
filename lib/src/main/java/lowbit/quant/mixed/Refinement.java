package lowbit.quant.mixed;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * The knapsack's answer checked by measuring, not trusted: predicted losses are per linear alone and they interact.
 * On selection windows (never those the sensitivities came from, nor the held-out ones results are reported on) the
 * allocation and uniform allocation at the same budget are measured; then pairwise swaps, one group a width up and
 * another a width down within the budget, are tried in order of their predicted cost (the upgrades that helped least
 * first) and kept when the measured KL divergence falls. The answer is the best allocation measured, uniform included:
 * it is never worse than uniform on the selection windows.
 */
public final class Refinement {
    private Refinement() {}

    /** One measured swap. */
    public record Step(String up, int upBits, String down, int downBits, double predictedDelta, double kld, boolean kept) {}

    /**
     * @param chosen "refined", "knapsack" or "uniform": which allocation won on the selection windows
     * @param best   the best allocation measured other than uniform (the refined or the knapsack's), with its KL divergence
     *               {@code bestKld}: what a method that runs the answer itself tries before uniform is kept
     */
    public record Result(Map<String, Integer> bits, double kld, double knapsackKld, double uniformKld, String chosen, List<Step> steps,
                         int measurements, Map<String, Integer> best, double bestKld, double seconds) {}

    /**
     * Refines {@code start} on {@code selection}'s windows with at most {@code measurements} swaps measured. The probe's
     * model must be the float model; its weights are restored before returning.
     */
    public static Result refine(Candidates c, KldProbe selection, Map<String, Integer> start, Map<String, Integer> uniform,
                                double[][] losses, Allocations.Granularity granularity, double target, int measurements, Progress progress) {
        long t0 = System.nanoTime();
        Transformer model = selection.model();
        Map<String, float[]> floats = new LinkedHashMap<>();
        for (String l : c.linears()) floats.put(l, model.linear(l).weight());
        try {
            c.applyTo(model, start);
            double knapsack = selection.recache(0).meanKld();
            double uni = selection.with(changes(c, model, start, uniform)).meanKld();
            Map<String, Integer> bits = new LinkedHashMap<>(start);
            double best = knapsack;
            List<Step> steps = new ArrayList<>();
            long budget = Allocations.budgetBits(c, target);
            Set<String> tried = new HashSet<>();
            Allocations.Groups groups = Allocations.Groups.of(c, losses, granularity);
            try (Progress.Task task = progress.start("refine", measurements, "swap")) {
                for (int m = 0; m < measurements; m++) {
                    Swap s = nextSwap(c, bits, groups, granularity, budget, tried);
                    if (s == null) break;
                    tried.add(s.key());
                    Map<String, Integer> next = new LinkedHashMap<>(bits);
                    for (String l : members(c, granularity, s.up)) next.put(l, s.upBits);
                    for (String l : members(c, granularity, s.down)) next.put(l, s.downBits);
                    Map<Linear, float[]> delta = changes(c, model, bits, next);
                    double kld = selection.with(delta).meanKld();
                    boolean keep = kld < best;
                    steps.add(new Step(s.up, s.upBits, s.down, s.downBits, s.predicted, kld, keep));
                    if (keep) {
                        best = kld;
                        int first = delta.keySet().stream().mapToInt(Linear::layer).min().orElseThrow();
                        for (var e : delta.entrySet()) e.getKey().setWeight(e.getValue());
                        selection.recache(first);
                        bits = next;
                        tried.clear();
                    }
                    task.message(String.format(java.util.Locale.ROOT, "kld %.4f (uniform %.4f)", best, uni));
                    task.step(1);
                }
            }
            String chosen = best < knapsack ? "refined" : "knapsack";
            Map<String, Integer> mixed = bits;
            double mixedKld = best;
            if (uni <= best) {
                bits = new LinkedHashMap<>(uniform);
                best = uni;
                chosen = "uniform";
            }
            return new Result(bits, best, knapsack, uni, chosen, steps, steps.size(), mixed, mixedKld, (System.nanoTime() - t0) / 1e9);
        } finally {
            for (var e : floats.entrySet()) model.linear(e.getKey()).setWeight(e.getValue());
            selection.recache(0);
        }
    }

    private record Swap(String up, int upBits, String down, int downBits, double predicted) {
        String key() {
            return up + ">" + upBits + "|" + down + ">" + downBits;
        }
    }

    /**
     * The untried swap with the least predicted increase (a group one width up, another one width down, within the
     * budget), or null when none is left.
     */
    private static Swap nextSwap(Candidates c, Map<String, Integer> bits, Allocations.Groups groups, Allocations.Granularity g, long budget,
                                 Set<String> tried) {
        List<Integer> widths = c.widths();
        List<String> linears = c.linears();
        Map<String, double[]> loss = groups.loss();
        Map<String, long[]> storage = groups.storage();
        Map<String, Integer> at = new LinkedHashMap<>();
        for (String l : linears) at.putIfAbsent(g.group(l), widths.indexOf(bits.get(l)));
        long used = Allocations.storage(c, bits);
        Swap best = null;
        for (String up : at.keySet()) {
            int ku = at.get(up);
            if (ku + 1 >= widths.size()) continue;
            double gain = loss.get(up)[ku + 1] - loss.get(up)[ku];
            long extra = storage.get(up)[ku + 1] - storage.get(up)[ku];
            for (String down : at.keySet()) {
                int kd = at.get(down);
                if (down.equals(up) || kd == 0) continue;
                long saved = storage.get(down)[kd] - storage.get(down)[kd - 1];
                if (used + extra - saved > budget) continue;
                double predicted = gain + loss.get(down)[kd - 1] - loss.get(down)[kd];
                Swap s = new Swap(up, widths.get(ku + 1), down, widths.get(kd - 1), predicted);
                if (tried.contains(s.key())) continue;
                if (best == null || predicted < best.predicted) best = s;
            }
        }
        return best;
    }

    private static List<String> members(Candidates c, Allocations.Granularity g, String group) {
        return c.linears().stream().filter(l -> g.group(l).equals(group)).toList();
    }

    /** The weights that differ between two allocations, as {@code to} has them. */
    static Map<Linear, float[]> changes(Candidates c, Transformer model, Map<String, Integer> from, Map<String, Integer> to) {
        Map<Linear, float[]> m = new LinkedHashMap<>();
        for (String l : c.linears())
            if (!from.get(l).equals(to.get(l))) m.put(model.linear(l), c.get(l, to.get(l)).dequantize());
        return m;
    }
}
