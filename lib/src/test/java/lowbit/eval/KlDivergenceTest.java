package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The statistics against numpy (environment/fixtures/kld_reference.py, llama.cpp's formulas) and hand-computed cases. */
class KlDivergenceTest {

    @Test
    void statisticsMatchTheNumpyReference() throws Exception {
        ByteBuffer b;
        try (InputStream in = KlDivergenceTest.class.getResourceAsStream("/kld/logprobs.bin")) {
            b = ByteBuffer.wrap(in.readAllBytes()).order(ByteOrder.LITTLE_ENDIAN);
        }
        int n = b.getInt(), vocab = b.getInt();
        int[] targets = new int[n];
        for (int i = 0; i < n; i++) targets[i] = b.getInt();
        float[][] lf = new float[n][vocab], lq = new float[n][vocab];
        for (int i = 0; i < n; i++) {
            b.asFloatBuffer().get(lf[i]);
            b.position(b.position() + 4 * vocab);
        }
        for (int i = 0; i < n; i++) {
            b.asFloatBuffer().get(lq[i]);
            b.position(b.position() + 4 * vocab);
        }
        double[] kld = new double[n], nq = new double[n], nf = new double[n];
        boolean[] same = new boolean[n];
        float[] scratch = new float[vocab];
        for (int i = 0; i < n; i++) {
            KlDivergence.Position p = KlDivergence.compare(lf[i], lq[i], vocab, scratch);
            kld[i] = p.kld();
            same[i] = p.sameTop();
            nq[i] = -lq[i][targets[i]];
            nf[i] = -lf[i][targets[i]];
        }
        Map<String, Object> got = KlDivergence.of(kld, nq, nf, same).fields();
        JsonNode want = new ObjectMapper().readTree(KlDivergenceTest.class.getResourceAsStream("/kld/expected.json"));
        assertEquals(want.size(), got.size(), got.keySet().toString());
        want.fields().forEachRemaining(e -> {
            double w = e.getValue().asDouble(), g = ((Number) got.get(e.getKey())).doubleValue();
            // p_float = exp(log p) is float32 here (VectorMath), float64 in numpy: 1e-6 relative
            assertEquals(w, g, 1e-6 * Math.abs(w) + 1e-12, e.getKey());
        });
    }

    @Test
    void handComputedTwoTokenCase() {
        // P_float = (0.75, 0.25), P_quant = (0.5, 0.5): KL = 0.75 ln 1.5 + 0.25 ln 0.5
        float[] lf = {(float) Math.log(0.75), (float) Math.log(0.25)};
        float[] lq = {(float) Math.log(0.5), (float) Math.log(0.5)};
        KlDivergence.Position p = KlDivergence.compare(lf, lq, 2, new float[2]);
        assertEquals(0.75 * Math.log(1.5) + 0.25 * Math.log(0.5), p.kld(), 1e-6);
        assertTrue(p.sameTop(), "a tie resolves to the first index, as the float model's argmax 0");
        KlDivergence.Position swapped = KlDivergence.compare(lf, new float[] {lf[1], lf[0]}, 2, new float[2]);
        assertFalse(swapped.sameTop());
        assertEquals(0.75 * Math.log(3) + 0.25 * Math.log(1.0 / 3), swapped.kld(), 1e-6);
    }

    @Test
    void identicalDistributionsHaveZeroDivergenceAndFullAgreement() {
        float[] l = {(float) Math.log(0.2), (float) Math.log(0.7), (float) Math.log(0.1)};
        KlDivergence.Position p = KlDivergence.compare(l, l.clone(), 3, new float[3]);
        assertEquals(0, p.kld(), 0);
        assertTrue(p.sameTop());
        int n = 20;
        double[] k = new double[n], nll = new double[n];
        boolean[] same = new boolean[n];
        java.util.Arrays.fill(same, true);
        for (int i = 0; i < n; i++) nll[i] = 1 + i * 0.1;
        KlDivergence.Stats s = KlDivergence.of(k, nll, nll.clone(), same);
        assertEquals(0, s.mean(), 0);
        assertEquals(1, s.sameTop(), 0);
        assertEquals(0, s.rmsDp(), 0);
        assertEquals(0, s.lnPplRatio(), 0);
        assertEquals(1, s.pplRatio(), 0);
        assertEquals(0, s.lnPplRatioStderr(), 1e-9, "perfectly correlated NLLs: the difference has no uncertainty");
    }

    @Test
    void percentilesInterpolateAsLlamaCpp() {
        double[] v = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
        assertEquals(5, lowbit.stats.Percentiles.of(v, 0.5), 0);
        assertEquals(9, lowbit.stats.Percentiles.of(v, 0.9), 1e-12);
        assertEquals(9.9, lowbit.stats.Percentiles.of(v, 0.99), 1e-12);
        double[] even = {1, 2, 3, 10};
        assertEquals(2.5, lowbit.stats.Percentiles.of(even, 0.5), 0, "the median of an even count is the mean of the middle two");
    }
}
