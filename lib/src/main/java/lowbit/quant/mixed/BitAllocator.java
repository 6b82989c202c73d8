package lowbit.quant.mixed;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import lowbit.quant.BitsMap;

/**
 * Mixed-precision allocation: one bit width per linear minimizing the summed predicted loss under a storage
 * budget of {@code target x parameters} bits, overhead included (a multiple-choice knapsack).
 *
 * <p>{@link #allocate} is exact. It is a dynamic programme over layers whose states are the Pareto-optimal
 * (storage, loss) pairs of the layers decided so far (Nemhauser-Ullmann style), pruned by two bounds that
 * never discard an optimal solution: a state whose storage plus the cheapest completion exceeds the budget
 * is infeasible, and a state whose loss plus the LP-relaxation lower bound of the remaining layers
 * (the convex-hull greedy of Sinha and Zoltners, exact for the relaxation) exceeds the loss of a known
 * feasible allocation (the greedy one) cannot improve on it. Budgets and storage stay exact integers:
 * nothing is discretized or rounded.
 *
 * <p>Complexity: O(K sum_i P_i) time and O(sum_i P_i) memory for n layers of K options, where P_i is the
 * number of surviving states after layer i. The states have distinct storage totals, all multiples of
 * g = gcd of the option storages and at most the budget B, so P_i <= B/g + 1: never worse than the textbook
 * DP over a budget in units of g, and in practice far smaller because of the bounds: on the default model's
 * 210 linears x 4 widths (w{2,3,4,8}g128 and w{3,4,6,8}g128, spread-out, near-equal and equal sensitivities)
 * at most 100 states survive any layer, about 14 000 in all, and it runs in tens of milliseconds (see
 * BitAllocatorTest).
 * The worst case is still pseudo-polynomial, so {@link #allocate(Collection, List, double, int)} takes a cap on
 * states per layer and fails clearly past it instead of exhausting memory.
 */
public final class BitAllocator {
    private BitAllocator() {}

    /** Default cap on Pareto states kept after any one layer (about 5 bytes each are kept per layer). */
    public static final int DEFAULT_MAX_STATES = 2_000_000;

    /**
     * @param bits          chosen width per layer, in the order the layers were given
     * @param bitsPerWeight storageBits / total parameters
     * @param predictedLoss sum of the chosen options' predicted losses
     * @param storageBits   sum of the chosen options' storage
     */
    public record Allocation(Map<String, Integer> bits, double bitsPerWeight, double predictedLoss, long storageBits)
            implements BitsMap.Assignment {
        public Allocation {
            bits = Collections.unmodifiableMap(new LinkedHashMap<>(bits));
        }
    }

    /** Exact optimum over the layers that appear in {@code options}. */
    public static Allocation allocate(List<LayerOption> options, double targetBitsPerWeight) {
        Problem p = Problem.of(null, options, targetBitsPerWeight);
        return p.allocation(p.exact(DEFAULT_MAX_STATES));
    }

    /** Exact optimum; every layer in {@code layers} must have options and every option a listed layer. */
    public static Allocation allocate(Collection<String> layers, List<LayerOption> options, double targetBitsPerWeight) {
        return allocate(layers, options, targetBitsPerWeight, DEFAULT_MAX_STATES);
    }

    /** As {@link #allocate(Collection, List, double)}, failing with IllegalStateException past {@code maxStates}. */
    public static Allocation allocate(Collection<String> layers, List<LayerOption> options, double targetBitsPerWeight,
                                      int maxStates) {
        if (maxStates < 1) throw new IllegalArgumentException("maxStates must be >= 1, got " + maxStates);
        Problem p = Problem.of(layers, options, targetBitsPerWeight);
        return p.allocation(p.exact(maxStates));
    }

    /**
     * The classic greedy, for comparison: every layer at its cheapest option, then repeatedly take the
     * upgrade (to any costlier option of one layer with lower loss) with the largest loss decrease per extra
     * bit among those that still fit, until none fits. Not optimal in general.
     */
    public static Allocation allocateGreedy(List<LayerOption> options, double targetBitsPerWeight) {
        Problem p = Problem.of(null, options, targetBitsPerWeight);
        return p.allocation(p.greedy());
    }

    public static Allocation allocateGreedy(Collection<String> layers, List<LayerOption> options, double targetBitsPerWeight) {
        Problem p = Problem.of(layers, options, targetBitsPerWeight);
        return p.allocation(p.greedy());
    }

    /** Every layer at {@code bits} (the baseline mixed precision is compared with); no budget applies. */
    public static Allocation uniform(List<LayerOption> options, int bits) {
        Map<String, LayerOption> chosen = new LinkedHashMap<>();
        for (LayerOption o : options) chosen.putIfAbsent(o.layer(), null);
        for (LayerOption o : options)
            if (o.bits() == bits && chosen.put(o.layer(), o) != null)
                throw new IllegalArgumentException("duplicate option for layer " + o.layer() + " at " + bits + " bits");
        long storage = 0, params = 0;
        double loss = 0;
        Map<String, Integer> out = new LinkedHashMap<>();
        for (var e : chosen.entrySet()) {
            if (e.getValue() == null) throw new IllegalArgumentException("layer " + e.getKey() + " has no " + bits + "-bit option");
            storage += e.getValue().storageBits();
            params += e.getValue().parameters();
            loss += e.getValue().predictedLoss();
            out.put(e.getKey(), bits);
        }
        if (out.isEmpty()) throw new IllegalArgumentException("no options given");
        return new Allocation(out, (double) storage / params, loss, storage);
    }

    /** The validated instance: layers in order, each layer's options sorted by storage then loss. */
    private record Problem(List<String> names, LayerOption[][] options, long parameters, long budget) {

        static Problem of(Collection<String> layers, List<LayerOption> options, double target) {
            if (options == null || options.isEmpty()) throw new IllegalArgumentException("no options given");
            if (!Double.isFinite(target) || target <= 0)
                throw new IllegalArgumentException("target bits per weight must be a positive number, got " + target);
            Map<String, List<LayerOption>> byLayer = new LinkedHashMap<>();
            if (layers != null) {
                for (String l : layers)
                    if (byLayer.put(l, new ArrayList<>()) != null) throw new IllegalArgumentException("layer " + l + " is listed twice");
                if (byLayer.isEmpty()) throw new IllegalArgumentException("no layers given");
            }
            for (LayerOption o : options) {
                List<LayerOption> list = layers == null ? byLayer.computeIfAbsent(o.layer(), k -> new ArrayList<>()) : byLayer.get(o.layer());
                if (list == null) throw new IllegalArgumentException("option " + o + " is for a layer not in the list of layers");
                for (LayerOption q : list) {
                    if (q.bits() == o.bits())
                        throw new IllegalArgumentException("duplicate option for layer " + o.layer() + " at " + o.bits() + " bits");
                    if (q.parameters() != o.parameters())
                        throw new IllegalArgumentException("layer " + o.layer() + " has options with " + q.parameters() + " and "
                                + o.parameters() + " parameters");
                }
                list.add(o);
            }
            LayerOption[][] opts = new LayerOption[byLayer.size()][];
            long params = 0, min = 0, max = 0;
            int i = 0;
            for (var e : byLayer.entrySet()) {
                if (e.getValue().isEmpty()) throw new IllegalArgumentException("layer " + e.getKey() + " has no options");
                LayerOption[] a = e.getValue().toArray(LayerOption[]::new);
                Arrays.sort(a, Comparator.comparingLong((LayerOption o) -> o.storageBits()).thenComparingDouble(LayerOption::predictedLoss));
                opts[i++] = a;
                params = Math.addExact(params, a[0].parameters());
                min = Math.addExact(min, a[0].storageBits());
                max = Math.addExact(max, Arrays.stream(a).mapToLong(o -> o.storageBits()).max().orElseThrow());
            }
            // The decimal the caller wrote (3.3, not 3.2999...) times the parameters, rounded down: the budget
            // is never more than the target allows.
            long budget = BigDecimal.valueOf(target).multiply(BigDecimal.valueOf(params)).setScale(0, RoundingMode.FLOOR)
                    .min(BigDecimal.valueOf(Long.MAX_VALUE)).longValueExact();
            if (budget < min || budget > max) {
                // Rounding a boundary the way it is printed must not lead the caller to an infeasible value.
                String lo = BigDecimal.valueOf(min).divide(BigDecimal.valueOf(params), 6, RoundingMode.CEILING).toPlainString();
                String hi = BigDecimal.valueOf(max).divide(BigDecimal.valueOf(params), 6, RoundingMode.FLOOR).toPlainString();
                throw new IllegalArgumentException(String.format(Locale.ROOT,
                        "target %s bits/weight is %s the %s allocation; achievable range for these %d layers (%d parameters) is %s..%s bits/weight",
                        BigDecimal.valueOf(target).toPlainString(), budget < min ? "below" : "above",
                        budget < min ? "cheapest" : "most expensive", opts.length, params, lo, hi));
            }
            return new Problem(List.copyOf(byLayer.keySet()), opts, params, budget);
        }

        int n() {
            return options.length;
        }

        Allocation allocation(int[] choice) {
            Map<String, Integer> bits = new LinkedHashMap<>();
            long storage = 0;
            double loss = 0;
            for (int i = 0; i < n(); i++) {
                LayerOption o = options[i][choice[i]];
                bits.put(names.get(i), o.bits());
                storage += o.storageBits();
                loss += o.predictedLoss();
            }
            if (storage > budget) throw new AssertionError("allocation over budget: " + storage + " > " + budget);
            return new Allocation(bits, (double) storage / parameters, loss, storage);
        }

        double loss(int[] choice) {
            double s = 0;
            for (int i = 0; i < n(); i++) s += options[i][choice[i]].predictedLoss();
            return s;
        }

        int[] greedy() {
            int[] choice = new int[n()]; // index 0 is each layer's cheapest option
            long left = budget;
            for (LayerOption[] a : options) left -= a[0].storageBits();
            while (true) {
                int bestLayer = -1, bestOption = -1;
                double bestRate = 0;
                for (int i = 0; i < n(); i++) {
                    LayerOption cur = options[i][choice[i]];
                    for (int k = choice[i] + 1; k < options[i].length; k++) {
                        LayerOption up = options[i][k];
                        long extra = up.storageBits() - cur.storageBits();
                        double gain = cur.predictedLoss() - up.predictedLoss();
                        if (gain <= 0 || extra > left) continue;
                        // An upgrade that costs nothing extra and helps is taken first.
                        double rate = extra == 0 ? Double.POSITIVE_INFINITY : gain / extra;
                        if (rate > bestRate) {
                            bestRate = rate;
                            bestLayer = i;
                            bestOption = k;
                        }
                    }
                }
                if (bestLayer < 0) return choice;
                left -= options[bestLayer][bestOption].storageBits() - options[bestLayer][choice[bestLayer]].storageBits();
                choice[bestLayer] = bestOption;
            }
        }

        int[] exact(int maxStates) {
            int n = n();
            int[] greedy = greedy();
            double upper = loss(greedy);
            double scale = 0;
            for (LayerOption[] a : options) for (LayerOption o : a) scale = Math.max(scale, Math.abs(o.predictedLoss()));
            // Slack for rounding in sums of n losses computed in different orders; only widens what is kept.
            double tol = 1e-9 * (scale * n + Math.abs(upper)) + Double.MIN_NORMAL;
            Relaxation[] rest = new Relaxation[n + 1];
            for (int i = n; i >= 0; i--) rest[i] = new Relaxation(options, i);

            long[] cost = {0};
            double[] loss = {0};
            int[][] parent = new int[n][];
            byte[][] option = new byte[n][];
            for (int i = 0; i < n; i++) {
                LayerOption[] a = options[i];
                int K = a.length, P = cost.length;
                int[] at = new int[K];
                long[] nc = new long[(int) Math.min((long) P * K, Math.min(maxStates, 1 << 16))];
                double[] nl = new double[nc.length];
                int[] np = new int[nc.length];
                byte[] no = new byte[nc.length];
                int m = 0;
                double best = Double.POSITIVE_INFINITY;
                Relaxation r = rest[i + 1];
                // K-way merge of the K shifted copies of the (cost-sorted) states, keeping the Pareto front.
                while (true) {
                    int pick = -1;
                    long pc = 0;
                    double pl = 0;
                    for (int k = 0; k < K; k++) {
                        if (at[k] >= P) continue;
                        long c = cost[at[k]] + a[k].storageBits();
                        double l = loss[at[k]] + a[k].predictedLoss();
                        if (pick < 0 || c < pc || (c == pc && l < pl)) {
                            pick = k;
                            pc = c;
                            pl = l;
                        }
                    }
                    if (pick < 0) break;
                    int from = at[pick]++;
                    if (pl >= best) continue; // dominated by a cheaper (or equal-cost) state already kept
                    double bound = r.lowerBound(budget - pc);
                    if (bound == Double.POSITIVE_INFINITY) continue; // nothing after this state fits
                    best = pl;
                    if (pl + bound > upper + tol) continue;
                    if (m == maxStates)
                        throw new IllegalStateException("exact allocation needs more than " + maxStates + " states after layer "
                                + names.get(i) + " (" + (i + 1) + " of " + n + "); use allocateGreedy or fewer distinct options");
                    if (m == nc.length) {
                        int grow = (int) Math.min(maxStates, Math.max(16L, 2L * m));
                        nc = Arrays.copyOf(nc, grow);
                        nl = Arrays.copyOf(nl, grow);
                        np = Arrays.copyOf(np, grow);
                        no = Arrays.copyOf(no, grow);
                    }
                    nc[m] = pc;
                    nl[m] = pl;
                    np[m] = from;
                    no[m] = (byte) pick;
                    m++;
                }
                if (m == 0) return greedy; // only possible if rounding pruned the greedy path itself
                cost = Arrays.copyOf(nc, m);
                loss = Arrays.copyOf(nl, m);
                parent[i] = Arrays.copyOf(np, m);
                option[i] = Arrays.copyOf(no, m);
            }
            // The front is sorted by cost with strictly falling loss: the last state is the best.
            int s = cost.length - 1;
            int[] choice = new int[n];
            for (int i = n - 1; i >= 0; i--) {
                choice[i] = option[i][s];
                s = parent[i][s];
            }
            return loss(choice) <= upper ? choice : greedy;
        }
    }

    /**
     * The LP relaxation of the layers from {@code first} on, as a function of the budget left for them:
     * each layer at its cheapest option, then the segments of every layer's lower convex hull in order of
     * steepest loss decrease per bit, the last one taken fractionally. A lower bound on any integral choice.
     */
    private static final class Relaxation {
        private final long minCost;
        private final double baseLoss;
        private final long[] cumCost;   // cumulative extra storage after taking segments 0..j
        private final double[] cumLoss; // cumulative loss change (<= 0) after taking segments 0..j

        Relaxation(LayerOption[][] options, int first) {
            long c = 0;
            double l = 0;
            List<double[]> seg = new ArrayList<>(); // {extra bits, loss change}; bits stay far below 2^53
            for (int i = first; i < options.length; i++) {
                LayerOption[] a = options[i]; // sorted by cost, then loss: a[0] is the cheapest with least loss
                c += a[0].storageBits();
                l += a[0].predictedLoss();
                // Lower convex hull from a[0] over the options that lower the loss (monotone chain).
                List<LayerOption> hull = new ArrayList<>();
                hull.add(a[0]);
                for (int k = 1; k < a.length; k++) {
                    LayerOption o = a[k];
                    LayerOption last = hull.getLast();
                    if (o.predictedLoss() >= last.predictedLoss()) continue; // costs more, helps no more
                    if (o.storageBits() == last.storageBits()) continue; // same cost, higher loss (sorted)
                    while (hull.size() >= 2) {
                        LayerOption p = hull.get(hull.size() - 2), q = hull.getLast();
                        // Drop q if it lies on or above the segment p-o.
                        double cross = (q.storageBits() - p.storageBits()) * (o.predictedLoss() - p.predictedLoss())
                                - (q.predictedLoss() - p.predictedLoss()) * (double) (o.storageBits() - p.storageBits());
                        if (cross <= 0) hull.removeLast();
                        else break;
                    }
                    hull.add(o);
                }
                for (int k = 1; k < hull.size(); k++) {
                    seg.add(new double[] {hull.get(k).storageBits() - hull.get(k - 1).storageBits(),
                            hull.get(k).predictedLoss() - hull.get(k - 1).predictedLoss()});
                }
            }
            seg.sort(Comparator.comparingDouble(s -> s[1] / s[0])); // most negative slope first
            minCost = c;
            baseLoss = l;
            cumCost = new long[seg.size()];
            cumLoss = new double[seg.size()];
            long cc = 0;
            double cl = 0;
            for (int j = 0; j < seg.size(); j++) {
                cc += (long) seg.get(j)[0];
                cl += seg.get(j)[1];
                cumCost[j] = cc;
                cumLoss[j] = cl;
            }
        }

        /** Least relaxed loss with {@code budget} bits left, +infinity when even the cheapest choice does not fit. */
        double lowerBound(long budget) {
            if (budget < minCost) return Double.POSITIVE_INFINITY;
            long extra = budget - minCost;
            int j = Arrays.binarySearch(cumCost, extra);
            if (j >= 0) return baseLoss + cumLoss[j];
            int next = -j - 1; // segments before next fit entirely
            if (next == cumCost.length) return cumCost.length == 0 ? baseLoss : baseLoss + cumLoss[next - 1];
            long prevC = next == 0 ? 0 : cumCost[next - 1];
            double prevL = next == 0 ? 0 : cumLoss[next - 1];
            double frac = (double) (extra - prevC) / (cumCost[next] - prevC);
            return baseLoss + prevL + frac * (cumLoss[next] - prevL);
        }
    }
}
