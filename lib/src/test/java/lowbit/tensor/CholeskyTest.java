package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class CholeskyTest {

    /** B B^T / n + I/2 for a random B: symmetric, positive definite, condition number in the hundreds. */
    static double[] randomSpd(int n, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] b = new double[n * n];
        for (int i = 0; i < b.length; i++) b[i] = rnd.nextGaussian();
        double[] a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = 0; k < n; k++) s += b[i * n + k] * b[j * n + k];
                a[i * n + j] = a[j * n + i] = s / n + (i == j ? 0.5 : 0);
            }
        return a;
    }

    private static double maxAbs(double[] a) {
        double m = 0;
        for (double v : a) m = Math.max(m, Math.abs(v));
        return m;
    }

    @Test
    void handComputedThreeByThree() {
        // A = L L^T with L = [[2,0,0],[6,1,0],[-8,5,3]]
        double[] a = {4, 12, -16, 12, 37, -43, -16, -43, 98};
        assertTrue(Cholesky.factorLower(a, 3));
        assertArrayEquals(new double[] {2, 0, 0, 6, 1, 0, -8, 5, 3}, a, 1e-14);

        double[] u = {4, 12, -16, 12, 37, -43, -16, -43, 98};
        assertTrue(Cholesky.factorUpper(u, 3));
        assertArrayEquals(new double[] {2, 6, -8, 0, 1, 5, 0, 0, 3}, u, 1e-14);

        double[] inv = Cholesky.inverseFromLower(a, 3);
        // L^-1 = [[1/2,0,0],[-3,1,0],[19/3,-5/3,1/3]] by forward substitution; A^-1 = L^-T L^-1
        double[] expected = {
            0.25 + 9 + 361.0 / 9, -122.0 / 9, 19.0 / 9,
            -122.0 / 9, 34.0 / 9, -5.0 / 9,
            19.0 / 9, -5.0 / 9, 1.0 / 9};
        assertArrayEquals(expected, inv, 1e-12);
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 64, 200, 333})
    void factorsReproduceTheMatrixAndMatchTheTextbook(int n) {
        double[] a = randomSpd(n, 1000 + n);
        double scale = maxAbs(a);

        double[] l = a.clone();
        assertTrue(Cholesky.factorLower(l, n));
        double[] ref = NaiveLinalg.choleskyLower(a, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                if (j > i) assertEquals(0.0, l[i * n + j], "upper triangle of L at " + i + "," + j);
                assertEquals(ref[i * n + j], l[i * n + j], 1e-9, "L[" + i + "][" + j + "]");
                double s = 0;
                for (int k = 0; k <= Math.min(i, j); k++) s += l[i * n + k] * l[j * n + k];
                assertEquals(a[i * n + j], s, 1e-10 * scale, "(L L^T)[" + i + "][" + j + "]");
            }

        double[] u = a.clone();
        assertTrue(Cholesky.factorUpper(u, n));
        double[] refU = NaiveLinalg.choleskyUpper(a, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                if (j < i) assertEquals(0.0, u[i * n + j], "lower triangle of U at " + i + "," + j);
                assertEquals(refU[i * n + j], u[i * n + j], 1e-9, "U[" + i + "][" + j + "]");
                double s = 0;
                for (int k = 0; k <= Math.min(i, j); k++) s += u[k * n + i] * u[k * n + j];
                assertEquals(a[i * n + j], s, 1e-10 * scale, "(U^T U)[" + i + "][" + j + "]");
            }
    }

    @ParameterizedTest
    @ValueSource(ints = {1, 7, 64, 200, 333})
    void inverseTimesMatrixIsIdentityAndMatchesTheTextbook(int n) {
        double[] a = randomSpd(n, 2000 + n);
        double[] l = a.clone();
        assertTrue(Cholesky.factorLower(l, n));
        double[] inv = Cholesky.inverseFromLower(l, n);
        double[] ref = NaiveLinalg.inverseFromLower(NaiveLinalg.choleskyLower(a, n), n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                assertEquals(inv[j * n + i], inv[i * n + j], 0.0, "symmetry at " + i + "," + j);
                assertEquals(ref[i * n + j], inv[i * n + j], 1e-9, "inverse[" + i + "][" + j + "]");
                double s = 0;
                for (int k = 0; k < n; k++) s += inv[i * n + k] * a[k * n + j];
                assertEquals(i == j ? 1.0 : 0.0, s, 1e-10, "(A^-1 A)[" + i + "][" + j + "]");
            }
    }

    @Test
    void theGptqChainOnAHessianOfRank() {
        // GPTQ: H damped, L = chol(H), H^-1 = cholesky_inverse(L), U = chol(H^-1, upper); H^-1 = U^T U
        int n = 150;
        double[] h = randomSpd(n, 77);
        double[] l = h.clone();
        assertTrue(Cholesky.factorLower(l, n));
        double[] hinv = Cholesky.inverseFromLower(l, n);
        double[] u = hinv.clone();
        assertTrue(Cholesky.factorUpper(u, n));
        double scale = maxAbs(hinv);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = 0; k <= Math.min(i, j); k++) s += u[k * n + i] * u[k * n + j];
                assertEquals(hinv[i * n + j], s, 1e-10 * scale);
            }
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3})
    void resultsAreBitwiseTheSameOnAnyThreadCount(int threads) {
        int n = 301;
        double[] a = randomSpd(n, 5);
        double[] l1 = a.clone(), ln = a.clone(), u1 = a.clone(), un = a.clone();
        try (Parallel p1 = new Parallel(1); Parallel pn = new Parallel(threads)) {
            assertTrue(Cholesky.factorLower(l1, n, p1));
            assertTrue(Cholesky.factorLower(ln, n, pn));
            assertArrayEquals(l1, ln);
            assertArrayEquals(Cholesky.inverseFromLower(l1, n, p1), Cholesky.inverseFromLower(ln, n, pn));
            assertTrue(Cholesky.factorUpper(u1, n, p1));
            assertTrue(Cholesky.factorUpper(un, n, pn));
            assertArrayEquals(u1, un);
        }
    }

    @Test
    void onlyTheLowerTriangleIsRead() {
        int n = 90;
        double[] a = randomSpd(n, 9), junk = a.clone();
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) junk[i * n + j] = Double.NaN;
        assertTrue(Cholesky.factorLower(a, n));
        assertTrue(Cholesky.factorLower(junk, n));
        assertArrayEquals(a, junk);
        assertArrayEquals(Cholesky.inverseFromLower(a, n), Cholesky.inverseFromLower(junk, n));
    }

    @Test
    void negativePivotIsReported() {
        // [[1,2],[2,1]] has eigenvalues 3 and -1: the second pivot is 1 - 4 = -3
        assertFalse(Cholesky.factorLower(new double[] {1, 2, 2, 1}, 2));
        assertFalse(Cholesky.factorUpper(new double[] {1, 2, 2, 1}, 2));
        assertFalse(Cholesky.factorLower(new double[] {0}, 1));
        assertFalse(Cholesky.factorLower(new double[] {-1}, 1));
    }

    @ParameterizedTest
    @ValueSource(ints = {5, 150, 299})
    void indefiniteDeepInsideABlockedMatrixIsReported(int at) {
        int n = 300;
        double[] a = randomSpd(n, 11);
        // a row equal to another with a smaller diagonal makes the Schur complement negative at row `at`
        int other = at / 2;
        for (int j = 0; j < n; j++) {
            a[at * n + j] = a[other * n + j];
            a[j * n + at] = a[j * n + other];
        }
        a[at * n + at] = a[other * n + other] - 1e-3;
        a[at * n + other] = a[other * n + at] = a[other * n + other];
        assertFalse(Cholesky.factorLower(a.clone(), n));
        try (Parallel p = new Parallel(2)) {
            assertFalse(Cholesky.factorLower(a.clone(), n, p));
        }
    }

    @Test
    void nanIsReported() {
        int n = 200;
        double[] a = randomSpd(n, 3);
        a[n * n - 1] = Double.NaN;
        assertFalse(Cholesky.factorLower(a.clone(), n));
        double[] b = randomSpd(n, 3);
        b[150 * n + 3] = Double.NaN; // off the diagonal, in a later block: reaches pivot 150
        assertFalse(Cholesky.factorLower(b, n));
        assertFalse(Cholesky.factorLower(new double[] {Double.NaN}, 1));
        assertFalse(Cholesky.factorLower(new double[] {Double.POSITIVE_INFINITY}, 1));
    }

    @Test
    void wrongSizesAreRejected() {
        assertThrows(IllegalArgumentException.class, () -> Cholesky.factorLower(new double[5], 2));
        assertThrows(IllegalArgumentException.class, () -> Cholesky.inverseFromLower(new double[] {1, 0, 0, 0}, 2));
    }
}
