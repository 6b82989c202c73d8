package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class GramTest {

    private static float[] gaussian(int size, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[size];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        return x;
    }

    @Test
    void handComputed() {
        // x = [[1,2],[3,4],[5,6]]: X^T X = [[35,44],[44,56]]
        double[] h = {1, 0.5, 0.5, 2};
        try (Parallel p = new Parallel(1)) {
            Gram.accumulate(h, new float[] {1, 2, 3, 4, 5, 6}, 3, 2, 0.5, p);
        }
        assertArrayEquals(new double[] {18.5, 22.5, 22.5, 30}, h, 0.0);
    }

    @ParameterizedTest
    @CsvSource({"1,1", "3,5", "17,47", "64,48", "130,97", "300,200"})
    void matchesTheDoubleDefinitionWithinFloatRounding(int rows, int n) {
        float[] x = gaussian(rows * n, rows * 31L + n);
        double[] h = new double[n * n], ref = new double[n * n];
        SplittableRandom rnd = new SplittableRandom(n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) h[i * n + j] = h[j * n + i] = ref[i * n + j] = ref[j * n + i] = rnd.nextDouble();
        double weight = 0.75;
        try (Parallel p = new Parallel(2)) {
            Gram.accumulate(h, x, rows, n, weight, p);
            Gram.accumulate(h, x, rows, n, weight, p);
        }
        NaiveLinalg.gram(ref, x, rows, n, weight);
        NaiveLinalg.gram(ref, x, rows, n, weight);
        // float products summed in float: relative error ~ rows * 2^-24 of sum |x_i x_j|
        double tol = 2 * weight * 1e-6 * rows * 3;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                assertEquals(ref[i * n + j], h[i * n + j], tol, "h[" + i + "][" + j + "]");
                assertEquals(h[j * n + i], h[i * n + j], 0.0, "symmetry at " + i + "," + j);
            }
    }

    @Test
    void bitwiseTheSameOnOneAndTwoThreads() {
        int rows = 257, n = 301;
        float[] x = gaussian(rows * n, 42);
        double[] one = new double[n * n], two = new double[n * n];
        try (Parallel p1 = new Parallel(1); Parallel p2 = new Parallel(2)) {
            Gram.accumulate(one, x, rows, n, 0.3, p1);
            Gram.accumulate(two, x, rows, n, 0.3, p2);
        }
        assertArrayEquals(one, two);
    }

    @Test
    void sumIsTakenInFloat() {
        // 2^24 + 1 is not a float: adding 1 to 2^24 row by row in float leaves 2^24, a double sum would not
        int rows = 3, n = 1;
        float big = 4096; // 4096^2 = 2^24
        double[] h = new double[1];
        try (Parallel p = new Parallel(1)) {
            Gram.accumulate(h, new float[] {big, 1, 0}, rows, n, 1, p);
        }
        assertEquals(16777216.0, h[0], 0.0);
    }

    @Test
    void wrongSizesAreRejected() {
        try (Parallel p = new Parallel(1)) {
            assertThrows(IllegalArgumentException.class, () -> Gram.accumulate(new double[4], new float[5], 3, 2, 1, p));
            assertThrows(IllegalArgumentException.class, () -> Gram.accumulate(new double[5], new float[6], 3, 2, 1, p));
        }
    }
}
