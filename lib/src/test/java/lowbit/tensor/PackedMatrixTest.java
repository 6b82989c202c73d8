package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class PackedMatrixTest {

    @ParameterizedTest
    @CsvSource({"1,1,1", "3,5,7", "4,64,64", "7,33,100", "70,576,200", "130,48,176"})
    void multiplyMatchesTheDefinition(int n, int in, int out) {
        SplittableRandom rnd = new SplittableRandom(n * 31L + in * 7L + out);
        float[] x = new float[n * in], w = new float[out * in], b = new float[out];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < b.length; i++) b[i] = (float) rnd.nextGaussian();
        float[] y = new float[n * out];
        try (Parallel par = new Parallel(2)) {
            PackedMatrix.pack(w, out, in).multiply(x, n, y, b, par);
        }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < out; j++) {
                double ref = b[j];
                for (int k = 0; k < in; k++) ref += (double) x[i * in + k] * w[j * in + k];
                assertEquals(ref, y[i * out + j], 1e-4 * Math.sqrt(in) + 1e-5, "y[" + i + "][" + j + "]");
            }
    }

    @ParameterizedTest
    @CsvSource({"5,9", "64,128"})
    void unpackGivesBackTheMatrix(int out, int in) {
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) w[i] = i * 0.5f - 3;
        assertArrayEquals(w, PackedMatrix.pack(w, out, in).unpack());
    }

    @ParameterizedTest
    @CsvSource({"1", "3", "8"})
    void resultIsBitwiseTheSameOnAnyThreadCount(int threads) {
        int n = 150, in = 96, out = 300;
        SplittableRandom rnd = new SplittableRandom(7);
        float[] x = new float[n * in], w = new float[out * in];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        PackedMatrix m = PackedMatrix.pack(w, out, in);
        float[] one = new float[n * out], many = new float[n * out];
        try (Parallel p1 = new Parallel(1); Parallel pn = new Parallel(threads)) {
            m.multiply(x, n, one, null, p1);
            m.multiply(x, n, many, null, pn);
        }
        assertArrayEquals(one, many);
    }

    /** Repacking into a matrix of the same shape, and packing the transpose from strips, give the matrix back exactly. */
    @ParameterizedTest
    @CsvSource({"5,9", "70,130", "64,128"})
    void repackingAndTransposedPackingGiveTheMatrix(int out, int in) {
        float[] w = new float[out * in], w2 = new float[out * in], t = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = i * 0.5f - 3;
            w2[i] = -i * 0.25f + 1;
        }
        for (int i = 0; i < out; i++)
            for (int k = 0; k < in; k++) t[k * out + i] = w2[i * in + k];
        try (Parallel par = new Parallel(2)) {
            PackedMatrix m = PackedMatrix.pack(w, out, in, null, par);
            assertArrayEquals(w, m.unpack());
            PackedMatrix again = PackedMatrix.pack(w2, out, in, m, par);
            assertEquals(m, again);
            assertArrayEquals(w2, again.unpack());
            PackedMatrix tr = PackedMatrix.packTransposed(w, out, in, null, par);
            assertEquals(in, tr.rows());
            PackedMatrix tr2 = PackedMatrix.packTransposed(w2, out, in, tr, par);
            assertEquals(tr, tr2);
            assertArrayEquals(t, tr2.unpack());
            // a matrix of another shape is not reused
            assertEquals(out, PackedMatrix.pack(w, out, in, tr, par).rows());
        }
    }
}
