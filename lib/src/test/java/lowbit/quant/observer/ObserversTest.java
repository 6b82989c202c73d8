package lowbit.quant.observer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Scales and zero points against torch.ao.quantization's observers (and numpy.percentile for ours) on the same
 * float32 batches. Fixtures: observers/observers.json; regenerate with
 * {@code /work/refvenv/bin/python lib/src/test/resources/observers/make_fixtures.py}.
 */
class ObserversTest {
    private static JsonNode fixtures;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = ObserversTest.class.getResourceAsStream("/observers/observers.json")) {
            fixtures = JsonMapper.builder().build().readTree(in);
        }
    }

    private static List<float[]> batches(String data) {
        List<float[]> out = new ArrayList<>();
        for (JsonNode b : fixtures.get("datasets").get(data)) {
            float[] x = new float[b.size()];
            for (int i = 0; i < x.length; i++) x[i] = b.get(i).floatValue();
            out.add(x);
        }
        return out;
    }

    private static QScheme scheme(String name) {
        return switch (name) {
            case "quint8_affine" -> QScheme.of(8, true, false);
            case "qint8_symmetric" -> QScheme.of(8, false, true);
            case "quint8_symmetric" -> QScheme.of(8, true, true);
            case "quint4_affine" -> QScheme.of(4, true, false);
            case "qint4_symmetric" -> QScheme.of(4, false, true);
            default -> throw new IllegalStateException("fixture scheme " + name);
        };
    }

    private static Observer run(Supplier<Observer> make, String data) {
        Observer o = make.get();
        for (float[] b : batches(data)) o.observe(b);
        return o;
    }

    private static void checkCases(String observer, Supplier<Observer> make, double relTol) {
        int n = 0;
        for (JsonNode c : fixtures.get("cases")) {
            if (!c.get("observer").asText().equals(observer)) continue;
            String what = observer + " " + c.get("data").asText() + " " + c.get("scheme").asText();
            QScheme s = scheme(c.get("scheme").asText());
            assertEquals(c.get("quant_min").asInt(), s.quantMin(), what);
            assertEquals(c.get("quant_max").asInt(), s.quantMax(), what);
            Observer o = run(make, c.get("data").asText());
            Observer.Range observed = o instanceof HistogramObserver h ? h.observedRange() : o.range();
            // min/max state is a float32 running value in torch too: bit-exact
            assertEquals((float) c.get("min_val").asDouble(), observed.min(), what + " min");
            assertEquals((float) c.get("max_val").asDouble(), observed.max(), what + " max");
            if (c.has("histogram")) {
                // the running histogram after torch's incremental range extension (upsample, re-bin, add)
                float[] h = ((HistogramObserver) o).histogram();
                JsonNode expected = c.get("histogram");
                assertEquals(expected.size(), h.length, what + " bins");
                for (int i = 0; i < h.length; i++)
                    assertClose(expected.get(i).asDouble(), h[i], relTol, what + " histogram bin " + i);
            }
            if (c.has("search_min")) {
                assertClose(c.get("search_min").asDouble(), o.range().min(), relTol, what + " search min");
                assertClose(c.get("search_max").asDouble(), o.range().max(), relTol, what + " search max");
            }
            QParams q = o.qparams(s);
            assertClose(c.get("scale").asDouble(), q.scale(), relTol, what + " scale");
            assertEquals(c.get("zero_point").asInt(), q.zeroPoint(), what + " zero point");
            n++;
        }
        assertEquals(30, n, observer + " cases in the fixture");
    }

    private static void assertClose(double expected, double actual, double relTol, String what) {
        assertTrue(Math.abs(actual - expected) <= relTol * Math.abs(expected),
                what + ": expected " + expected + " got " + actual);
    }

    @Test
    void minMaxEqualsTorchBitForBit() {
        checkCases("minmax", MinMaxObserver::new, 0.0);
    }

    @Test
    void movingAverageEqualsTorchBitForBit() {
        checkCases("ema", MovingAverageMinMaxObserver::new, 0.0);
    }

    /**
     * 1e-5 relative (on the scale, the searched range and every histogram bin): the chosen bins must be torch's (one
     * bin of 2048 moves the range by ~5e-4 of it), and what is left is float32 rounding; torch sums the L2 errors and
     * the histogram total in float32 in a vectorized order we do not reproduce, which could only matter for a near-tie
     * between two candidate ranges. On these fixtures (torch 2.15) the agreement is in fact bit for bit.
     */
    @Test
    void histogramEqualsTorch() {
        checkCases("histogram", HistogramObserver::new, 1e-5);
    }

    /** Dense histograms, where torch's search trims 100 to 500 bins from each side before the L2 error rises. */
    @Test
    void histogramSearchEqualsTorchOnDenseHistograms() {
        for (JsonNode c : fixtures.get("searches")) {
            String what = "search on " + c.get("name").asText();
            float[] h = new float[c.get("histogram").size()];
            for (int i = 0; i < h.length; i++) h[i] = c.get("histogram").get(i).floatValue();
            HistogramObserver o = HistogramObserver.withState(h, (float) c.get("min_val").asDouble(), (float) c.get("max_val").asDouble());
            Observer.Range r = o.range();
            assertClose(c.get("search_min").asDouble(), r.min(), 1e-5, what + " min");
            assertClose(c.get("search_max").asDouble(), r.max(), 1e-5, what + " max");
            assertTrue(r.max() - r.min() < 0.95 * (c.get("max_val").asDouble() - c.get("min_val").asDouble()), what + " trims the range");
            QParams q = o.qparams(QScheme.of(8, true, false));
            assertClose(c.get("scale").asDouble(), q.scale(), 1e-5, what + " scale");
            assertEquals(c.get("zero_point").asInt(), q.zeroPoint(), what + " zero point");
        }
        assertEquals(3, fixtures.get("searches").size());
    }

    @Test
    void percentileEqualsNumpy() {
        for (JsonNode c : fixtures.get("percentiles")) {
            double p = c.get("p").asDouble();
            String what = "percentile " + p + " of " + c.get("data").asText();
            Observer abs = run(() -> new PercentileObserver(p, PercentileObserver.Tails.ABS), c.get("data").asText());
            Observer both = run(() -> new PercentileObserver(p, PercentileObserver.Tails.BOTH), c.get("data").asText());
            // numpy works in double on the same float32 values; we round the result to float once
            assertEquals((float) c.get("abs").asDouble(), abs.range().max(), what + " |x|");
            assertEquals(-(float) c.get("abs").asDouble(), abs.range().min(), what + " -|x|");
            assertEquals((float) c.get("low").asDouble(), both.range().min(), what + " low tail");
            assertEquals((float) c.get("high").asDouble(), both.range().max(), what + " high tail");

            // the same numbers from observers that keep only the largest values the percentile of this many can need
            long total = 0;
            for (float[] b : batches(c.get("data").asText())) total += b.length;
            long count = total;
            PercentileObserver absBounded = (PercentileObserver) run(() -> PercentileObserver.forCount(p, PercentileObserver.Tails.ABS, count),
                    c.get("data").asText());
            PercentileObserver bothBounded = (PercentileObserver) run(() -> PercentileObserver.forCount(p, PercentileObserver.Tails.BOTH, count),
                    c.get("data").asText());
            assertEquals(abs.range(), absBounded.range(), what + " |x|, bounded");
            assertEquals(both.range(), bothBounded.range(), what + " tails, bounded");
            long needed = PercentileObserver.needed(total, p);
            assertTrue(absBounded.retained() <= Math.max(2 * needed, 1024), what + ": kept " + absBounded.retained() + " of " + total);
        }
    }

    @Test
    void boundedPercentileKeepsWhatALaterLargerCountNeeds() {
        // median of 8 values: numpy's virtual index 3.5 between the 4th and 5th smallest, so the 5 largest are needed.
        // After the first batch only the largest 3 of 4 would be needed for a median of 4; the count of 8 keeps 5, so
        // the 7 survives the batch of zeros.
        PercentileObserver bounded = PercentileObserver.forCount(50, PercentileObserver.Tails.ABS, 8);
        PercentileObserver all = new PercentileObserver(50, PercentileObserver.Tails.ABS);
        for (PercentileObserver o : List.of(bounded, all)) {
            o.observe(new float[] {10, 9, 8, 7});
            o.observe(new float[] {0, 0, 0, 0});
        }
        assertEquals(3.5f, all.range().max(), "(0 + 7) / 2");
        assertEquals(all.range(), bounded.range());
        assertEquals(5, PercentileObserver.needed(8, 50));
        var e = assertThrows(IllegalStateException.class, () -> bounded.observe(new float[] {1}));
        assertTrue(e.getMessage().contains("sized for 8 values"), e.getMessage());

        // a stream of a million values at P = 99.99 keeps a few hundred, not a million
        java.util.SplittableRandom rnd = new java.util.SplittableRandom(3);
        PercentileObserver big = PercentileObserver.forCount(99.99, PercentileObserver.Tails.ABS, 1_000_000);
        float[] sorted = new float[1_000_000];
        for (int w = 0; w < 10; w++) {
            float[] x = new float[100_000];
            for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (1 + w));
            big.observe(x);
            for (int i = 0; i < x.length; i++) sorted[w * 100_000 + i] = Math.abs(x[i]);
        }
        java.util.Arrays.sort(sorted);
        double[] d = new double[sorted.length];
        for (int i = 0; i < d.length; i++) d[i] = sorted[i];
        assertEquals((float) PercentileObserver.percentile(d, 99.99), big.range().max());
        assertTrue(big.retained() <= 2 * PercentileObserver.needed(1_000_000, 99.99), "kept " + big.retained());
    }

    @Test
    void observerSpecsParseAndPrint() {
        assertEquals(ObserverSpec.MINMAX, ObserverSpec.parse("minmax"));
        assertEquals(ObserverSpec.EMA, ObserverSpec.parse("EMA"));
        assertEquals(ObserverSpec.KL, ObserverSpec.parse("kl"));
        assertEquals(ObserverSpec.percentile(99.99), ObserverSpec.parse("percentile:99.99"));
        assertEquals("percentile:99.99", ObserverSpec.parse("percentile:99.990").text());
        assertEquals("percentile:100", ObserverSpec.parse("percentile:100").text());
        for (String t : List.of("minmax", "ema", "kl", "percentile:99.999", "percentile:50"))
            assertEquals(t, ObserverSpec.parse(t).text());
        assertTrue(ObserverSpec.KL.create(8, 10) instanceof EntropyObserver);
        assertTrue(ObserverSpec.EMA.create(8, 10) instanceof MovingAverageMinMaxObserver);
        var e = assertThrows(IllegalArgumentException.class, () -> ObserverSpec.parse("histogramm"));
        assertTrue(e.getMessage().contains("unknown --observer 'histogramm'") && e.getMessage().contains("percentile:P"), e.getMessage());
        for (String bad : List.of("percentile:0", "percentile:100.5", "percentile:-3", "percentile:NaN")) {
            e = assertThrows(IllegalArgumentException.class, () -> ObserverSpec.parse(bad), bad);
            assertTrue(e.getMessage().contains("P in (0, 100]"), e.getMessage());
        }
        e = assertThrows(IllegalArgumentException.class, () -> ObserverSpec.parse("percentile:high"));
        assertTrue(e.getMessage().contains("needs a number P in (0, 100], got 'high'"), e.getMessage());
    }

    @Test
    void handComputedAffineAndSymmetricCases() {
        // [-1, 3] on 0..255: scale = 4/255, zero point = 0 - round(-1 / (4/255)) = round(63.75) = 64
        MinMaxObserver o = new MinMaxObserver();
        o.observe(new float[] {-1f, 0.5f, 3f});
        assertEquals(new QParams(4f / 255f, 64), o.qparams(QScheme.of(8, true, false)));
        // symmetric signed 4-bit: absmax 3 over (7 - -8) / 2 = 7.5
        assertEquals(new QParams(3f / 7.5f, 0), o.qparams(QScheme.of(4, false, true)));
        // all-positive data still puts 0 in the range, so the zero point is quant_min
        MinMaxObserver pos = new MinMaxObserver();
        pos.observe(new float[] {2f, 5.1f});
        assertEquals(0, pos.qparams(QScheme.of(8, true, false)).zeroPoint());
        assertEquals(5.1f / 255f, pos.qparams(QScheme.of(8, true, false)).scale());
        // all zeros: the scale is floored at float32 eps
        MinMaxObserver zero = new MinMaxObserver();
        zero.observe(new float[] {0f, 0f});
        assertEquals(new QParams(QScheme.EPS, 0), zero.qparams(QScheme.of(8, true, false)));
        // nothing observed: torch's default
        assertEquals(new QParams(1f, 0), new HistogramObserver().qparams(QScheme.of(8, true, false)));
        // EMA: max 0 -> 0 + 0.01 * (10 - 0) after a second batch; 0.01 is 0.0099999998 in float32, so 0.099999994f
        // (torch's MovingAverageMinMaxObserver gives the same max_val, 0.09999999403953552)
        MovingAverageMinMaxObserver ema = new MovingAverageMinMaxObserver();
        ema.observe(new float[] {-1f, 0f});
        ema.observe(new float[] {-1f, 10f});
        assertEquals(new Observer.Range(-1f, 0.099999994f), ema.range());
    }

    @Test
    void badInputNamesTheProblem() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QScheme.of(9, true, false)).getMessage().contains("bits must be 2..8"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new PercentileObserver(101, PercentileObserver.Tails.ABS)).getMessage().contains("percentile"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new MovingAverageMinMaxObserver(0f)).getMessage().contains("averaging constant"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new MinMaxObserver().observe(new float[] {1f, Float.NaN})).getMessage().contains("NaN at element 1"));
    }
}
