package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
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

    /**
     * bf16 storage on weights that are already bf16 values gives the float32 product bit for bit: the same kernels in the
     * same order, only the panel's source differs. Shapes cover odd output counts (a padded last panel), in a partial
     * and in full panels, and x of 1, 4, 6, 7, 13, 70 and 300 rows (the 1x4, 4x4 and 6x4 tiles and their mixes, and more
     * than one 64-row task).
     */
    @ParameterizedTest
    @CsvSource({"1,64,67", "4,96,128", "6,33,5", "7,576,200", "13,100,131", "70,48,176", "300,40,70", "1,1,1"})
    void bf16StorageOfBf16ValuesIsBitwiseTheFloat32Product(int n, int in, int out) {
        SplittableRandom rnd = new SplittableRandom(n * 131L + in * 17L + out);
        float[] x = new float[n * in], w = new float[out * in], b = new float[out];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = WeightFormat.BF16.round((float) (0.05 * rnd.nextGaussian()));
        for (int i = 0; i < b.length; i++) b[i] = (float) rnd.nextGaussian();
        PackedMatrix fp32 = PackedMatrix.pack(w, out, in), bf16 = PackedMatrix.pack(w, out, in, WeightFormat.BF16);
        assertEquals(WeightFormat.BF16, bf16.format());
        assertArrayEquals(w, bf16.unpack());
        float[] y32 = new float[n * out], y16 = new float[n * out];
        try (Parallel par = new Parallel(2)) {
            fp32.multiply(x, n, y32, b, par);
            bf16.multiply(x, n, y16, b, par);
        }
        for (int i = 0; i < y32.length; i++)
            assertEquals(Float.floatToRawIntBits(y32[i]), Float.floatToRawIntBits(y16[i]), "y[" + i / out + "][" + i % out + "]");
    }

    /** Packing in bf16 rounds each value to nearest even and holds half the bytes of float32. */
    @Test
    void bf16PackingRoundsToNearestEvenInHalfTheMemory() {
        int out = 70, in = 130;
        SplittableRandom rnd = new SplittableRandom(3);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
        // 1 + 2^-8 is a tie between bf16's 1 and 1 + 2^-7: to even; 1 + 3 * 2^-8 rounds up to 1 + 2^-6
        w[5] = 1f + 0x1p-8f;
        w[6] = 1f + 3 * 0x1p-8f;
        PackedMatrix m = PackedMatrix.pack(w, out, in, WeightFormat.BF16);
        float[] back = m.unpack();
        assertEquals(1f, back[5]);
        assertEquals(1f + 0x1p-6f, back[6]);
        for (int i = 0; i < w.length; i++) {
            assertEquals(WeightFormat.BF16.round(w[i]), back[i]);
            assertTrue(Math.abs(back[i] - w[i]) <= Math.abs(w[i]) * 0x1p-8f, "element " + i);
        }
        assertEquals(PackedMatrix.pack(w, out, in).bytes() / 2, m.bytes());
    }

    @Test
    void bf16RefusesAValueThatWouldRoundToInfinity() {
        // halfway between bf16's largest finite value (0x7f7f) and infinity: rounds to even, which is infinity
        float[] w = {1f, 2f, Float.intBitsToFloat(0x7f7f8000), 4f};
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> PackedMatrix.pack(w, 2, 2, WeightFormat.BF16));
        assertEquals("weight element [1][0] = " + w[2] + " is past bf16's largest finite value (3.39e38)", e.getMessage());
    }
}
