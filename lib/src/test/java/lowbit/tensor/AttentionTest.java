package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Causal attention against the textbook formula in double (softmax(q k^T / sqrt(d)) v, query i over keys 0..i),
 * and attention at a position offset (queries after keys computed earlier) against the rows of one full pass.
 */
class AttentionTest {
    @ParameterizedTest
    @CsvSource({
            "4, 2, 16, 37, 5",    // GQA; T and the offset inside one tile
            "9, 3, 64, 70, 20",   // SmolLM2's heads; keys across a tile boundary
            "3, 1, 20, 131, 1",   // head dimension not a multiple of the tile; one query
            "2, 2, 8, 9, 9",      // offset 0: the plain causal pass
    })
    void offsetRowsAreTheFullPassRowsAndTheFormula(int heads, int kvHeads, int d, int n, int t) {
        SplittableRandom rnd = new SplittableRandom(heads * 1000L + n);
        float[] q = gaussian(rnd, n * heads * d), k = gaussian(rnd, n * kvHeads * d), v = gaussian(rnd, n * kvHeads * d);
        int offset = n - t, qDim = heads * d;
        try (Parallel par = new Parallel(2)) {
            Attention attention = new Attention(heads, kvHeads, d);
            float[] full = attention.causal(q, k, v, n, par).clone();
            float[] tail = attention.causal(Arrays.copyOfRange(q, offset * qDim, n * qDim), k, v, t, offset, par).clone();
            // the same rows bit for bit, whatever rows they were computed beside
            for (int i = 0; i < t * qDim; i++)
                assertEquals(full[offset * qDim + i], tail[i], 0.0, "query " + (offset + i / qDim) + " element " + i % qDim);
            double[] reference = naive(q, k, v, n, heads, kvHeads, d);
            for (int i = 0; i < n * qDim; i++) assertEquals(reference[i], full[i], 1e-5, "element " + i);
        }
    }

    @Test
    void aNegativeOffsetIsRefused() {
        try (Parallel par = new Parallel(1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new Attention(2, 1, 4).causal(new float[8], new float[4], new float[4], 1, -1, par));
            assertEquals("attention offset must be >= 0, got -1", e.getMessage());
        }
    }

    private static double[] naive(float[] q, float[] k, float[] v, int n, int heads, int kvHeads, int d) {
        double[] out = new double[n * heads * d];
        int group = heads / kvHeads;
        for (int h = 0; h < heads; h++) {
            int g = h / group;
            for (int i = 0; i < n; i++) {
                double[] s = new double[i + 1];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    double dot = 0;
                    for (int c = 0; c < d; c++) dot += (double) q[(i * heads + h) * d + c] * k[(j * kvHeads + g) * d + c];
                    s[j] = dot / Math.sqrt(d);
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) sum += s[j] = Math.exp(s[j] - max);
                for (int j = 0; j <= i; j++)
                    for (int c = 0; c < d; c++) out[(i * heads + h) * d + c] += s[j] / sum * v[(j * kvHeads + g) * d + c];
            }
        }
        return out;
    }

    private static float[] gaussian(SplittableRandom rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) rnd.nextGaussian();
        return x;
    }
}
