package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class MatmulTest {
    private static float[] gaussian(int n, SplittableRandom rnd) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rnd.nextGaussian();
        return a;
    }

    /** Against the definition in double; sizes cover padded panels, several row passes (out > 768) and one row. */
    @ParameterizedTest
    @CsvSource({"1,1,1", "5,7,3", "37,1000,70", "130,64,65", "12,1537,16"})
    void addsTheTransposedProduct(int T, int out, int in) {
        SplittableRandom rnd = new SplittableRandom(T * 31L + out * 7L + in);
        float[] dy = gaussian(T * out, rnd), x = gaussian(T * in, rnd), dw = gaussian(out * in, rnd), before = dw.clone();
        try (Parallel par = new Parallel(2)) {
            Matmul.addTransposedProduct(dy, x, T, out, in, dw, par);
        }
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double ref = before[o * in + i];
                for (int t = 0; t < T; t++) ref += (double) dy[t * out + o] * x[t * in + i];
                assertEquals(ref, dw[o * in + i], 1e-4 * Math.sqrt(T) + 1e-5, "dW[" + o + "][" + i + "]");
            }
    }

    /** Reused buffers of other shapes, and the thread count, change nothing. */
    @Test
    void resultIsBitwiseTheSameOnAnyThreadCountAndAfterOtherShapes() {
        SplittableRandom rnd = new SplittableRandom(3);
        int T = 50, out = 900, in = 40;
        float[] dy = gaussian(T * out, rnd), x = gaussian(T * in, rnd);
        float[] one = new float[out * in], many = new float[out * in];
        try (Parallel p1 = new Parallel(1); Parallel p3 = new Parallel(3)) {
            Matmul.addTransposedProduct(dy, x, T, out, in, one, p1);
            Matmul.addTransposedProduct(gaussian(70 * 30, rnd), gaussian(70 * 90, rnd), 70, 30, 90, new float[30 * 90], p3);
            Matmul.addTransposedProduct(dy, x, T, out, in, many, p3);
        }
        assertArrayEquals(one, many);
    }

    @Test
    void refusesShortBuffers() {
        try (Parallel par = new Parallel(1)) {
            var e = assertThrows(IllegalArgumentException.class,
                    () -> Matmul.addTransposedProduct(new float[6], new float[5], 2, 3, 3, new float[9], par));
            assertEquals("dW += dY^T X of 2 rows, 3 outputs and 3 inputs with buffers of 6, 5 and 9", e.getMessage());
        }
    }
}
