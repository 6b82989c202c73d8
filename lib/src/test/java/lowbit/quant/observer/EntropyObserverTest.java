package lowbit.quant.observer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * EntropyObserver against TensorRT's entropy calibration (NVIDIA pytorch-quantization's HistogramCalibrator and
 * _compute_amax_entropy, transcribed in the generator because the package does not install here). Regenerate the
 * fixture with {@code /work/refvenv/bin/python lib/src/test/resources/observers/make_entropy_fixtures.py}.
 */
class EntropyObserverTest {
    private static JsonNode fixtures;

    @BeforeAll
    static void load() throws Exception {
        try (InputStream in = EntropyObserverTest.class.getResourceAsStream("/observers/entropy.json")) {
            fixtures = JsonMapper.builder().build().readTree(in);
        }
    }

    private static List<float[]> batches(String data) {
        List<float[]> out = new ArrayList<>();
        for (JsonNode b : fixtures.get("datasets").get(data)) {
            float[] x = new float[b.size()];
            for (int i = 0; i < x.length; i++) x[i] = (float) b.get(i).asDouble();
            out.add(x);
        }
        return out;
    }

    @Test
    void amaxEqualsTensorRtsEntropyCalibration() {
        int n = 0;
        for (JsonNode c : fixtures.get("cases")) {
            String what = c.get("data").asText() + " " + c.get("bits").asInt() + " bits" + (c.get("unsigned").asBoolean() ? " unsigned" : "");
            EntropyObserver o = new EntropyObserver(c.get("bits").asInt(), c.get("unsigned").asBoolean());
            for (float[] b : batches(c.get("data").asText())) o.observe(b);
            assertEquals(c.get("bins").asInt(), o.bins(), what + ": bins after the range grew");
            float amax = (float) c.get("amax").asDouble();
            assertEquals(amax, o.range().max(), 0f, what + " amax");
            assertEquals(-o.range().max(), o.range().min(), what + " symmetric");
            if (c.has("divergences")) {
                double[] kl = o.divergences();
                JsonNode ref = c.get("divergences");
                assertEquals(ref.size(), kl.length, what + " candidates");
                for (int i = 0; i < kl.length; i++) {
                    if (ref.get(i).isNull()) assertEquals(Double.POSITIVE_INFINITY, kl[i], what + " candidate " + i);
                    else assertEquals(ref.get(i).asDouble(), kl[i], 1e-12 * Math.abs(ref.get(i).asDouble()) + 1e-300, what + " candidate " + i);
                }
            }
            n++;
        }
        assertEquals(24, n, "cases in the fixture");
    }

    @Test
    void grownHistogramsAndOutliersAreInTheFixture() {
        boolean grown = false, clipped = false;
        for (JsonNode c : fixtures.get("cases")) {
            grown |= c.get("bins").asInt() > EntropyObserver.DEFAULT_BINS;
            MinMaxObserver mm = new MinMaxObserver();
            for (float[] b : batches(c.get("data").asText())) mm.observe(b);
            float absmax = Math.max(-mm.range().min(), mm.range().max());
            clipped |= c.get("amax").asDouble() < 0.5 * absmax;
        }
        assertTrue(grown, "some case grows the histogram beyond 2048 bins");
        assertTrue(clipped, "some case clips outliers to less than half the absmax");
    }

    @Test
    void zerosBeforeAnyRangeDoNotChangeAmax() {
        float[] x = batches("student_t").get(0);
        EntropyObserver plain = new EntropyObserver(8, false), afterZeros = new EntropyObserver(8, false);
        plain.observe(x);
        afterZeros.observe(new float[100]);
        afterZeros.observe(x);
        assertEquals(plain.range(), afterZeros.range());
        EntropyObserver onlyZeros = new EntropyObserver(8, false);
        onlyZeros.observe(new float[10]);
        assertEquals(new Observer.Range(0f, 0f), onlyZeros.range());
        assertEquals(Float.POSITIVE_INFINITY, new EntropyObserver(8, false).range().min(), "nothing observed");
    }

    @Test
    void numpysPairwiseSum() {
        // 0.1 summed 1000 times: pairwise gives 100.00000000000001 where a running sum gives 99.9999999999986
        double[] a = new double[1000];
        java.util.Arrays.fill(a, 0.1);
        double running = 0;
        for (double v : a) running += v;
        assertEquals(99.9999999999986, running, 1e-13);
        assertEquals(100.00000000000001, EntropyObserver.pairwiseSum(a, a.length), 0.0);
    }

    @Test
    void badInputNamesTheProblem() {
        var e = assertThrows(IllegalArgumentException.class, () -> new EntropyObserver(9, false));
        assertTrue(e.getMessage().contains("bits must be 2..8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new EntropyObserver(8, false).observe(new float[] {1f, Float.POSITIVE_INFINITY}));
        assertTrue(e.getMessage().contains("element 1"), e.getMessage());
    }
}
