package lowbit.quant.mixed;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Predicate;
import lowbit.quant.QuantConfig;

/**
 * Allocations of candidate widths to the block linears under a storage budget of {@code budget x parameters} bits
 * (rounded down), overhead included: the knapsack's over predicted losses at a granularity, and the baselines it is
 * compared with (uniform, llama.cpp's Q4_K_M rule, first and last blocks higher, random).
 */
public final class Allocations {
    private Allocations() {}

    /** Which linears share one width. */
    public enum Granularity {
        /** every linear its own width */
        LINEAR,
        /** one width per transformer block */
        BLOCK,
        /** one width per kind (q/k/v/o/gate/up/down), across blocks */
        KIND;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Granularity parse(String s) {
            for (Granularity g : values()) if (g.label().equals(s)) return g;
            throw new IllegalArgumentException("--granularity must be one of linear, block, kind, got '" + s + "'");
        }

        /** The group a linear belongs to. */
        public String group(String linear) {
            return switch (this) {
                case LINEAR -> linear;
                case BLOCK -> "model.layers." + layer(linear);
                case KIND -> linear.substring(linear.lastIndexOf('.') + 1);
            };
        }
    }

    /** The block index in a module name model.layers.L.x.y. */
    public static int layer(String linear) {
        String rest = linear.substring(linear.indexOf("layers.") + "layers.".length());
        return Integer.parseInt(rest.substring(0, rest.indexOf('.')));
    }

    /** The short module name (q_proj, down_proj, ...). */
    public static String kind(String linear) {
        return linear.substring(linear.lastIndexOf('.') + 1);
    }

    /** Storage budget in bits for {@code target} bits per weight: the decimal as written times the parameters, rounded down. */
    public static long budgetBits(Candidates c, double target) {
        long params = 0;
        for (String l : c.linears()) params += c.parameters(l);
        return BigDecimal.valueOf(target).multiply(BigDecimal.valueOf(params)).setScale(0, RoundingMode.FLOOR).longValueExact();
    }

    public static long storage(Candidates c, Map<String, Integer> bits) {
        long s = 0;
        for (String l : c.linears()) s += c.storageBits(l, bits.get(l));
        return s;
    }

    /** Every linear at {@code bits}. */
    public static Map<String, Integer> uniform(Candidates c, int bits) {
        Map<String, Integer> m = new LinkedHashMap<>();
        for (String l : c.linears()) m.put(l, bits);
        return m;
    }

    /**
     * The widest uniform allocation within the budget. Refuses a target outside [cheapest, widest] uniform allocation
     * with the achievable range, so that every allocation here has uniform as a candidate.
     */
    public static int uniformWidth(Candidates c, double target) {
        long[] uniform = new long[c.widths().size()];
        long params = 0;
        for (String l : c.linears()) {
            params += c.parameters(l);
            for (int j = 0; j < uniform.length; j++) uniform[j] += c.storageBits(l, c.widths().get(j));
        }
        return uniformWidth(c.widths(), uniform, params, target);
    }

    /**
     * {@link #uniformWidth(Candidates, double)} before any candidate exists, from the shapes of {@code model}'s block
     * linears on {@code grid} ({@code groupIndex}: GPTQ act-order's 32-bit group index per column is stored): a budget
     * outside the range is refused before minutes of measuring.
     */
    public static int uniformWidth(lowbit.model.Transformer model, QuantConfig grid, List<Integer> widths, boolean groupIndex, double target) {
        long[] uniform = new long[widths.size()];
        long params = 0;
        for (int l = 0; l < model.config().numLayers(); l++)
            for (var lin : model.blockLinears(l)) {
                params += (long) lin.outFeatures() * lin.inFeatures();
                for (int j = 0; j < uniform.length; j++)
                    uniform[j] += LayerOption.storageBits(lin.outFeatures(), lin.inFeatures(), grid.withBits(widths.get(j)), groupIndex);
            }
        return uniformWidth(widths, uniform, params, target);
    }

    /** Bits per weight of uniform {@code bits} from the shapes alone, as {@link #uniformWidth(lowbit.model.Transformer, QuantConfig, List, boolean, double)} counts. */
    public static double uniformBitsPerWeight(lowbit.model.Transformer model, QuantConfig grid, int bits, boolean groupIndex) {
        long storage = 0, params = 0;
        for (int l = 0; l < model.config().numLayers(); l++)
            for (var lin : model.blockLinears(l)) {
                params += (long) lin.outFeatures() * lin.inFeatures();
                storage += LayerOption.storageBits(lin.outFeatures(), lin.inFeatures(), grid.withBits(bits), groupIndex);
            }
        return (double) storage / params;
    }

    private static int uniformWidth(List<Integer> widths, long[] uniform, long params, double target) {
        long budget = BigDecimal.valueOf(target).multiply(BigDecimal.valueOf(params)).setScale(0, RoundingMode.FLOOR).longValueExact();
        double lo = (double) uniform[0] / params, hi = (double) uniform[uniform.length - 1] / params;
        boolean below = uniform[0] > budget;
        if (below || target > hi + 1e-9)
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "--budget %s bits/weight is %s: candidates %s give %.4f (all %d-bit) .. %.4f (all %d-bit) bits/weight on this model",
                    BigDecimal.valueOf(target).toPlainString(), below ? "below the smallest candidate's" : "above the largest candidate's",
                    widths, lo, widths.get(0), hi, widths.getLast()));
        int best = widths.get(0);
        for (int j = 0; j < widths.size(); j++) if (uniform[j] <= budget) best = widths.get(j);
        return best;
    }

    /**
     * The knapsack's allocation: groups of {@code granularity} each get one width, minimizing the sum of {@code losses}
     * ([linear][width index], in the candidates' linear and width order) within the budget; exact
     * ({@link BitAllocator}).
     */
    public static Map<String, Integer> knapsack(Candidates c, double[][] losses, Granularity granularity, double target) {
        List<String> linears = c.linears();
        List<Integer> widths = c.widths();
        Groups groups = Groups.of(c, losses, granularity);
        Map<String, long[]> storage = groups.storage();
        Map<String, double[]> loss = groups.loss();
        Map<String, Long> params = new LinkedHashMap<>();
        for (String l : linears) params.merge(granularity.group(l), c.parameters(l), Long::sum);
        List<LayerOption> options = new ArrayList<>();
        for (String g : storage.keySet())
            for (int j = 0; j < widths.size(); j++)
                options.add(new LayerOption(g, widths.get(j), params.get(g), storage.get(g)[j], loss.get(g)[j]));
        BitAllocator.Allocation a = BitAllocator.allocate(storage.keySet(), options, target);
        Map<String, Integer> out = new LinkedHashMap<>();
        for (String l : linears) out.put(l, a.bits().get(granularity.group(l)));
        return out;
    }

    /** Per group of a granularity, in first-member order: summed predicted loss and storage at each candidate width. */
    record Groups(Map<String, double[]> loss, Map<String, long[]> storage) {
        static Groups of(Candidates c, double[][] losses, Granularity g) {
            List<String> linears = c.linears();
            List<Integer> widths = c.widths();
            Map<String, double[]> loss = new LinkedHashMap<>();
            Map<String, long[]> storage = new LinkedHashMap<>();
            for (int i = 0; i < linears.size(); i++) {
                String grp = g.group(linears.get(i));
                double[] l = loss.computeIfAbsent(grp, k -> new double[widths.size()]);
                long[] s = storage.computeIfAbsent(grp, k -> new long[widths.size()]);
                for (int j = 0; j < widths.size(); j++) {
                    l[j] += losses[i][j];
                    s[j] += c.storageBits(linears.get(i), widths.get(j));
                }
            }
            return new Groups(loss, storage);
        }
    }

    /** Sum of {@code losses} over an allocation. */
    public static double predicted(Candidates c, double[][] losses, Map<String, Integer> bits) {
        double s = 0;
        List<String> linears = c.linears();
        for (int i = 0; i < linears.size(); i++) s += losses[i][c.widths().indexOf(bits.get(linears.get(i)))];
        return s;
    }

    /**
     * llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every third layer between
     * (i >= n/8 and (i - n/8) % 3 == 2), in integer arithmetic as llama.cpp writes it.
     */
    public static boolean q4kmLayer(int i, int n) {
        return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
    }

    /**
     * Q4_K_M's rule on our grids at the budget: v_proj and down_proj (attn_v, ffn_down) of the rule's layers two widths up
     * (the nearest candidate at or above the uniform width + 2, Q4_K to Q6_K), the rest at the uniform width, and, to stay
     * within the budget, the other linears of the middle layers one width down (see {@link #withUpgrades}).
     */
    public static Map<String, Integer> q4km(Candidates c, double target, int layers) {
        return withUpgrades(c, target, l -> (kind(l).equals("v_proj") || kind(l).equals("down_proj") || kind(l).equals("fc2"))
                && q4kmLayer(layer(l), layers), layers);
    }

    /** The first and last blocks two widths up, paid for as {@link #withUpgrades} does. */
    public static Map<String, Integer> firstLast(Candidates c, double target, int layers) {
        return withUpgrades(c, target, l -> layer(l) == 0 || layer(l) == layers - 1, layers);
    }

    /**
     * A rule's allocation at the budget: the chosen linears at the nearest candidate >= uniform + 2 (else the widest), the
     * rest at the uniform width; while over budget, the other linears step one width down, from the middle of the model
     * outwards (the rules' premise is that the ends matter most), and last the chosen ones' upgrades are given up from
     * the middle outwards; then any linear stepped down that fits again is stepped back up, in reverse order.
     */
    static Map<String, Integer> withUpgrades(Candidates c, double target, Predicate<String> chosen, int layers) {
        int base = uniformWidth(c, target);
        List<Integer> widths = c.widths();
        int hi = widths.getLast();
        for (int b : widths) if (b >= base + 2) {
            hi = b;
            break;
        }
        long budget = budgetBits(c, target);
        Map<String, Integer> bits = uniform(c, base);
        if (hi <= base) return bits;
        List<String> up = c.linears().stream().filter(chosen).toList();
        for (String l : up) bits.put(l, hi);
        double middle = (layers - 1) / 2.0;
        Comparator<String> fromMiddle = Comparator.comparingDouble((String l) -> Math.abs(layer(l) - middle)).thenComparing(c.linears()::indexOf);
        List<String> others = new ArrayList<>(c.linears().stream().filter(chosen.negate()).toList());
        others.sort(fromMiddle);
        int lower = widths.indexOf(base) > 0 ? widths.get(widths.indexOf(base) - 1) : base;
        List<String> stepped = new ArrayList<>();
        long s = storage(c, bits);
        for (String l : others) {
            if (s <= budget || lower == base) break;
            s += c.storageBits(l, lower) - c.storageBits(l, base);
            bits.put(l, lower);
            stepped.add(l);
        }
        List<String> given = new ArrayList<>(up);
        given.sort(fromMiddle);
        for (String l : given) {
            if (s <= budget) break;
            s += c.storageBits(l, base) - c.storageBits(l, hi);
            bits.put(l, base);
        }
        Collections.reverse(stepped);
        for (String l : stepped) {
            long extra = c.storageBits(l, base) - c.storageBits(l, lower);
            if (s + extra <= budget) {
                s += extra;
                bits.put(l, base);
            }
        }
        return bits;
    }

    /**
     * A random allocation at the budget: every linear at a width drawn uniformly from the candidates, then random linears
     * stepped one width down until within the budget, then random linears stepped one width up while one fits.
     */
    public static Map<String, Integer> random(Candidates c, double target, long seed) {
        uniformWidth(c, target);  // refuses a budget outside the candidates' range
        SplittableRandom rng = new SplittableRandom(seed);
        List<Integer> widths = c.widths();
        List<String> linears = c.linears();
        long budget = budgetBits(c, target);
        Map<String, Integer> bits = new LinkedHashMap<>();
        for (String l : linears) bits.put(l, widths.get(rng.nextInt(widths.size())));
        long s = storage(c, bits);
        while (s > budget) {
            String l = linears.get(rng.nextInt(linears.size()));
            int k = widths.indexOf(bits.get(l));
            if (k == 0) continue;
            s += c.storageBits(l, widths.get(k - 1)) - c.storageBits(l, widths.get(k));
            bits.put(l, widths.get(k - 1));
        }
        while (true) {
            List<String> fits = new ArrayList<>();
            for (String l : linears) {
                int k = widths.indexOf(bits.get(l));
                if (k + 1 < widths.size() && s + c.storageBits(l, widths.get(k + 1)) - c.storageBits(l, widths.get(k)) <= budget) fits.add(l);
            }
            if (fits.isEmpty()) return bits;
            String l = fits.get(rng.nextInt(fits.size()));
            int k = widths.indexOf(bits.get(l));
            s += c.storageBits(l, widths.get(k + 1)) - c.storageBits(l, widths.get(k));
            bits.put(l, widths.get(k + 1));
        }
    }

    /** "2:10 3:150 4:40 8:10": how many linears got each width. */
    public static String widths(Map<String, Integer> bits) {
        Map<Integer, Integer> count = new java.util.TreeMap<>();
        for (int b : bits.values()) count.merge(b, 1, Integer::sum);
        StringBuilder s = new StringBuilder();
        count.forEach((b, n) -> s.append(s.isEmpty() ? "" : " ").append(b).append(':').append(n));
        return s.toString();
    }
}
