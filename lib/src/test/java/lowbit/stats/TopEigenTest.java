package lowbit.stats;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.apache.commons.math3.linear.Array2DRowRealMatrix;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.junit.jupiter.api.Test;

class TopEigenTest {
    @Test
    void gramMatrixMatchesCommonsMath() {
        int n = 120, rows = 300, k = 10;
        double[] h = gram(randomMatrix(rows, n, 1, true), rows, n);
        double[] got = TopEigen.largest(h, n, k).values();
        double[] want = commonsTop(h, n, k);
        for (int i = 0; i < k; i++) assertEquals(want[i], got[i], 1e-9 * want[0], "eigenvalue " + (i + 1));
    }

    @Test
    void rankDeficientMatrixGivesZerosBeyondItsRank() {
        int n = 50, rank = 5, k = 8;
        double[] h = gram(randomMatrix(rank, n, 2, false), rank, n);
        TopEigen.Result r = TopEigen.largest(h, n, k);
        double[] want = commonsTop(h, n, k);
        for (int i = 0; i < k; i++) assertEquals(want[i], r.values()[i], 1e-9 * want[0], "eigenvalue " + (i + 1));
        for (int i = rank; i < k; i++) assertEquals(0, r.values()[i], 1e-9 * want[0]);
    }

    @Test
    void indefiniteMatrixTopIsAlgebraicallyLargest() {
        int n = 40;
        SplittableRandom rnd = new SplittableRandom(4);
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) h[i * n + j] = h[j * n + i] = rnd.nextGaussian();
        h[0] = -100;   // the largest |eigenvalue| is negative and must not come first
        double[] got = TopEigen.largest(h, n, 3).values();
        double[] want = commonsTop(h, n, 3);
        for (int i = 0; i < 3; i++) assertEquals(want[i], got[i], 1e-9 * 100);
    }

    @Test
    void diagonalMatrixIsExact() {
        double[] h = new double[16];
        h[0] = 1; h[5] = 4; h[10] = 3; h[15] = 2;
        assertArrayEquals(new double[] {4, 3, 2, 1}, TopEigen.largest(h, 4, 4).values(), 1e-12);
        assertArrayEquals(new double[2], TopEigen.largest(new double[9], 3, 2).values());
    }

    @Test
    void badInputIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> TopEigen.largest(new double[8], 3, 1));
        assertThrows(IllegalArgumentException.class, () -> TopEigen.largest(new double[9], 3, 4));
        double[] nan = new double[9];
        nan[4] = Double.NaN;
        assertThrows(IllegalArgumentException.class, () -> TopEigen.largest(nan, 3, 1));
    }

    static double[] commonsTop(double[] h, int n, int k) {
        double[][] a = new double[n][n];
        for (int i = 0; i < n; i++) a[i] = Arrays.copyOfRange(h, i * n, i * n + n);
        double[] ev = new EigenDecomposition(new Array2DRowRealMatrix(a, false)).getRealEigenvalues().clone();
        Arrays.sort(ev);
        double[] top = new double[k];
        for (int i = 0; i < k; i++) top[i] = ev[ev.length - 1 - i];
        return top;
    }

    /** Columns with different scales, like activations with outlier channels. */
    private static double[] randomMatrix(int rows, int n, long seed, boolean outliers) {
        SplittableRandom rnd = new SplittableRandom(seed);
        double[] x = new double[rows * n];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < n; c++) x[r * n + c] = rnd.nextGaussian() * (outliers && c % 17 == 0 ? 10 : 1);
        return x;
    }

    private static double[] gram(double[] x, int rows, int n) {
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int r = 0; r < rows; r++) s += x[r * n + i] * x[r * n + j];
                h[i * n + j] = s;
            }
        return h;
    }
}
