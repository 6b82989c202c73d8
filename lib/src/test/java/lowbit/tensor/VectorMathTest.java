package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class VectorMathTest {
    @Test
    void expIsWithinTwoUlpOfTheCorrectlyRoundedValueAndVectorEqualsScalar() {
        int n = 10_007; // not a multiple of any lane count: exercises the tail
        float[] xs = new float[n], out = new float[n];
        for (int i = 0; i < n; i++) xs[i] = -87f + i * (167f / n); // up to 80: the float sum stays finite
        float sum = VectorMath.exp(xs, 0, out, 0, n, 1f, 0f);
        double ref = 0;
        for (int i = 0; i < n; i++) {
            float want = (float) Math.exp(xs[i]);
            assertEquals(want, out[i], 2 * Math.ulp(want), "exp(" + xs[i] + ")");
            assertEquals(out[i], VectorMath.exp(xs[i]), "scalar and vector agree at " + xs[i]);
            ref += out[i];
        }
        assertEquals(ref, sum, ref * 1e-6);
        assertEquals(1f, VectorMath.exp(0f));
    }

    @Test
    void signAndShiftAreAppliedBeforeExp() {
        float[] xs = {1f, 2f, 3f};
        float[] out = new float[3];
        VectorMath.exp(xs, 0, out, 0, 3, -1f, 0.5f);
        for (int i = 0; i < 3; i++) assertEquals(Math.exp(-xs[i] - 0.5), out[i], 1e-6);
    }

    @Test
    void siluMulMatchesTheDefinition() {
        int n = 37;
        float[] g = new float[n], u = new float[n], want = new float[n];
        for (int i = 0; i < n; i++) {
            g[i] = (i - 18) * 0.7f;
            u[i] = 1.5f - i * 0.05f;
            want[i] = (float) (g[i] / (1 + Math.exp(-g[i])) * u[i]);
        }
        VectorMath.siluMul(g, u, 0, n, new float[n]);
        for (int i = 0; i < n; i++) assertEquals(want[i], g[i], 1e-5 * Math.max(1, Math.abs(want[i])));
    }

    @Test
    void firstNonFiniteFindsNaNAndInfinitiesInVectorsAndTail() {
        int n = 101; // not a multiple of any lane count: the last values are in the scalar tail
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (i - 50) * 6.0e36f; // up to 3e38, near Float.MAX_VALUE but finite
        assertEquals(-1, VectorMath.firstNonFinite(a));
        assertEquals(-1, VectorMath.firstNonFinite(new float[0]));
        for (int at : new int[] {0, 17, 63, n - 1})
            for (float bad : new float[] {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY}) {
                float[] b = a.clone();
                b[at] = bad;
                if (at != n - 1) b[n - 1] = Float.NaN; // a later one does not hide the first
                assertEquals(at, VectorMath.firstNonFinite(b), bad + " at " + at);
            }
    }
}
