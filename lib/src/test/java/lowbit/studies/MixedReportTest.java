package lowbit.studies;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import lowbit.plots.Figure;
import lowbit.quant.mixed.Comparison;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

/** The mixed-vs-uniform chart and findings, from a summary of hand-made held-out measurements. */
class MixedReportTest {
    static final double[][] UNIFORM = {{0.10, 0.12, 0.11, 0.13}, {0.11, 0.12, 0.10, 0.11}};

    /** Two seeds of four windows; every allocation is uniform's windows shifted by {@code offset(allocation)}. */
    private static List<Comparison.Entry> entries(String method, double target, Map<String, Double> offsets) {
        List<Comparison.Entry> out = new ArrayList<>();
        // the allocations every method has (GPTQ's and AWQ's assembled answer left out of the hand-made runs)
        for (String a : Comparison.allocationNames("rtn"))
            for (int seed = 0; seed < 2; seed++) {
                double[] kld = UNIFORM[seed].clone(), nll = new double[4];
                for (int w = 0; w < 4; w++) {
                    kld[w] += offsets.get(a);
                    nll[w] = 3 + kld[w];
                }
                out.add(new Comparison.Entry(method, target, a, seed, target - 0.01, "3:10 4:20", kld, nll));
            }
        return out;
    }

    private static Map<String, Double> offsets(double mixed, double random3) {
        return Map.of("uniform", 0.0, "mixed", mixed, "q4_k_m rule", 0.005, "first-last higher", 0.01, "random 1", 0.03, "random 2", 0.04,
                "random 3", random3, "random 4", 0.06, "random 5", 0.07);
    }

    static Table summary() {
        List<Comparison.Entry> all = new ArrayList<>(entries("rtn", 3.5, offsets(-0.02, 0.05)));
        all.addAll(entries("gptq", 4.17, offsets(-0.01, -0.015)));
        return Comparison.summary(all);
    }

    @Test
    void chartShowsEveryAllocationWithItsIntervalPerMethodAndBudget() {
        Table s = summary();
        Figure f = StudyReport.mixedChart(s);
        assertEquals(2, f.data().size(), "one trace per (method, target bits)");
        assertEquals(List.of("rtn at 3.500 bits/weight", "gptq at 4.170 bits/weight"), f.data().stream().map(t -> t.get("name")).toList());
        for (int k = 0; k < 2; k++) {
            Map<String, Object> trace = f.data().get(k);
            assertEquals(Comparison.allocationNames("rtn"), trace.get("x"), "x: the allocations in the reported order");
            List<?> y = (List<?>) trace.get("y");
            Map<?, ?> err = (Map<?, ?>) trace.get("error_y");
            List<?> plus = (List<?>) err.get("array"), minus = (List<?>) err.get("arrayminus");
            for (int i = 0; i < 9; i++) {
                int row = 9 * k + i;
                assertEquals(s.doubleColumn("kld").get(row), ((Number) y.get(i)).doubleValue(), 0);
                assertEquals(s.doubleColumn("kld_hi").get(row) - s.doubleColumn("kld").get(row), ((Number) plus.get(i)).doubleValue(), 1e-15);
                assertEquals(s.doubleColumn("kld").get(row) - s.doubleColumn("kld_lo").get(row), ((Number) minus.get(i)).doubleValue(), 1e-15);
            }
        }
        // uniform's held-out mean over both seeds' eight windows, by hand: (0.46 + 0.44) / 8
        assertEquals(0.1125, ((Number) ((List<?>) f.data().get(0).get("y")).get(0)).doubleValue(), 1e-12);
        assertEquals(0.1125 - 0.02, ((Number) ((List<?>) f.data().get(0).get("y")).get(1)).doubleValue(), 1e-12);
        assertTrue(f.title().contains("95% interval over 2 runs"), f.title());
    }

    @Test
    void findingsGiveMixedAgainstUniformWithIntervalsAndTheRandomAllocations() {
        Table s = summary();
        List<String> f = StudyReport.mixedFindings(s);
        assertEquals(3, f.size(), f.toString());
        // rtn: mixed is uniform - 0.02 on every window, so the paired difference is exactly -0.02 on every resample
        int m = 1, u = 0;
        String expected = String.format(java.util.Locale.ROOT, "rtn at 3.500 bits/weight (2 runs, held-out): mixed KL divergence 0.0925 [%.4f, %.4f], "
                        + "perplexity %.3f [%.3f, %.3f] (3.490 bits/weight, widths 3:10 4:20); uniform KL divergence 0.1125 [%.4f, %.4f], "
                        + "perplexity %.3f [%.3f, %.3f]; mixed - uniform -0.0200 [-0.0200, -0.0200]: beats uniform. It beat every random "
                        + "allocation (lower mean KL divergence than all 5; intervals apart from %d).",
                s.doubleColumn("kld_lo").get(m), s.doubleColumn("kld_hi").get(m), Math.exp(3.0925), s.doubleColumn("ppl_lo").get(m),
                s.doubleColumn("ppl_hi").get(m), s.doubleColumn("kld_lo").get(u), s.doubleColumn("kld_hi").get(u), Math.exp(3.1125),
                s.doubleColumn("ppl_lo").get(u), s.doubleColumn("ppl_hi").get(u), separated(s, 0));
        assertEquals(expected, f.get(0));
        assertTrue(f.get(1).startsWith("gptq at 4.170 bits/weight (2 runs, held-out): mixed KL divergence 0.1025 "), f.get(1));
        assertTrue(f.get(1).endsWith("mixed - uniform -0.0100 [-0.0100, -0.0100]: beats uniform. It did not beat every random allocation: "
                + "lower mean KL divergence than 4 of 5."), f.get(1));
        assertEquals("Mixed precision beats uniform, with a paired 95% interval below zero, in 2 of 2 (method, budget) cells.", f.get(2));
    }

    @Test
    void aMixedAllocationNoBetterThanUniformIsSaidSo() {
        Table s = Comparison.summary(entries("rtn", 3.5, offsets(0.0, 0.05)));
        List<String> f = StudyReport.mixedFindings(s);
        assertTrue(f.get(0).contains("mixed - uniform +0.0000 [+0.0000, +0.0000]: not distinguishable."), f.get(0));
        assertEquals("Mixed precision beats uniform, with a paired 95% interval below zero, in 0 of 1 (method, budget) cells.", f.get(1));
    }

    /** How many random allocations of the {@code k}-th cell have an interval entirely above mixed's. */
    private static int separated(Table s, int k) {
        int n = 0;
        for (int i = 4; i < 9; i++) if (s.doubleColumn("kld_hi").get(9 * k + 1) < s.doubleColumn("kld_lo").get(9 * k + i)) n++;
        return n;
    }
}
