package lowbit.stats;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.apache.commons.math3.stat.descriptive.moment.Kurtosis;
import org.apache.commons.math3.stat.descriptive.moment.Mean;
import org.apache.commons.math3.stat.descriptive.moment.Skewness;
import org.apache.commons.math3.stat.descriptive.moment.Variance;
import org.junit.jupiter.api.Test;

class MomentsTest {
    private static final float[] HAND = {1, 2, 3, 4, 10};

    @Test
    void handComputedCase() {
        // mean = 20/5 = 4; deviations -3 -2 -1 0 6
        // squares 9 4 1 0 36 = 50 -> m2 = 10, std = sqrt(10)
        // cubes -27 -8 -1 0 216 = 180 -> m3 = 36, skewness = 36 / 10^1.5
        // fourth powers 81 16 1 0 1296 = 1394 -> m4 = 278.8, Pearson kurtosis = 278.8 / 10^2 = 2.788
        // |x|: max 10, mean 4, max/mean 2.5; 6 std = 18.97: no outliers
        for (Moments m : new Moments[] {Moments.of(HAND), oneByOne(HAND)}) {
            assertEquals(5, m.count());
            assertEquals(4.0, m.mean(), 1e-15);
            assertEquals(10.0, m.variance(), 1e-13);
            assertEquals(Math.sqrt(10), m.std(), 1e-13);
            assertEquals(2.788, m.pearsonKurtosis(), 1e-13);
            assertEquals(2.788 - 3, m.excessKurtosis(), 1e-13);
            assertEquals(36 / Math.pow(10, 1.5), m.skewness(), 1e-13);
            assertEquals(10, m.maxAbs());
            assertEquals(4, m.meanAbs(), 1e-15);
            assertEquals(2.5, m.maxOverMeanAbs(), 1e-15);
            assertEquals(0, m.countOutliers(HAND));
            assertEquals(0, m.outlierRatio());
        }
    }

    /** commons-math3 returns the bias-corrected EXCESS sample kurtosis G2 = ((n+1) g2 + 6)(n-1)/((n-2)(n-3)). */
    @Test
    void handCaseAgainstCommonsMathSampleKurtosis() {
        double[] d = toDouble(HAND);
        // G2 = ((6)(-0.212) + 6) * 4 / (3 * 2) = 3.152
        assertEquals(3.152, new Kurtosis().evaluate(d), 1e-12);
        assertEquals(3.152, sampleExcess(Moments.of(HAND).pearsonKurtosis(), 5), 1e-12);
    }

    @Test
    void randomDataAgainstCommonsMath() {
        SplittableRandom rnd = new SplittableRandom(11);
        float[] x = new float[20_001];
        for (int i = 0; i < x.length; i++) x[i] = (float) (3 + Math.exp(rnd.nextGaussian()) * (rnd.nextBoolean() ? 1 : -0.5));
        double[] d = toDouble(x);
        Moments m = Moments.of(x);
        int n = x.length;
        assertEquals(new Mean().evaluate(d), m.mean(), 1e-12 * Math.abs(m.mean()));
        assertEquals(new Variance(false).evaluate(d), m.variance(), 1e-11 * m.variance());
        double g1 = new Skewness().evaluate(d);   // sample G1 = g1 sqrt(n(n-1)) / (n-2)
        assertEquals(g1, m.skewness() * Math.sqrt((double) n * (n - 1)) / (n - 2), 1e-10 * Math.abs(g1));
        double k = new Kurtosis().evaluate(d);
        assertEquals(k, sampleExcess(m.pearsonKurtosis(), n), 1e-10 * Math.abs(k));
        assertEquals(Arrays.stream(d).map(Math::abs).max().orElseThrow(), m.maxAbs());
        assertEquals(Arrays.stream(d).map(Math::abs).average().orElseThrow(), m.meanAbs(), 1e-12 * m.meanAbs());
    }

    @Test
    void mergeEqualsOnePass() {
        SplittableRandom rnd = new SplittableRandom(3);
        float[] x = new float[10_000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (rnd.nextGaussian() * (i < 3000 ? 1 : 5) + (i < 7000 ? 100 : -2));
        Moments whole = Moments.of(x);
        Moments a = new Moments(), b = new Moments(), c = new Moments(), empty = new Moments();
        a.addAll(x, 0, 3000);
        b.addAll(x, 3000, 4000);
        for (int i = 7000; i < x.length; i++) c.add(x[i]);
        Moments merged = new Moments().merge(empty).merge(a).merge(b).merge(c).merge(empty);
        Moments perElement = oneByOne(x);
        for (Moments m : new Moments[] {merged, perElement}) {
            assertEquals(whole.count(), m.count());
            assertEquals(whole.mean(), m.mean(), 1e-12 * Math.abs(whole.mean()));
            assertEquals(whole.variance(), m.variance(), 1e-10 * whole.variance());
            assertEquals(whole.skewness(), m.skewness(), 1e-9 * Math.abs(whole.skewness()));
            assertEquals(whole.pearsonKurtosis(), m.pearsonKurtosis(), 1e-10 * whole.pearsonKurtosis());
            assertEquals(whole.maxAbs(), m.maxAbs());
            assertEquals(whole.meanAbs(), m.meanAbs(), 1e-12 * whole.meanAbs());
        }
        // independent two-pass reference for the kurtosis of data with a large mean
        double mu = 0;
        for (float v : x) mu += v;
        mu /= x.length;
        double s2 = 0, s4 = 0;
        for (float v : x) {
            double dv = v - mu;
            s2 += dv * dv;
            s4 += dv * dv * dv * dv;
        }
        assertEquals(x.length * s4 / (s2 * s2), whole.pearsonKurtosis(), 1e-10);
    }

    @Test
    void normalKurtosisIsThree() {
        SplittableRandom rnd = new SplittableRandom(7);
        float[] x = new float[1_000_000];
        for (int i = 0; i < x.length; i++) x[i] = (float) (2 * rnd.nextGaussian() + 1);
        Moments m = Moments.of(x);
        // standard error of the kurtosis of a normal sample: sqrt(24/n) = 0.005
        assertEquals(3, m.pearsonKurtosis(), 0.025);
        assertEquals(2, m.std(), 0.01);
        // P(|N(1,2)| > 12) ~ 2e-8: no outliers expected in 1e6
        m.countOutliers(x);
        assertEquals(0, m.outliers());
    }

    @Test
    void plantedOutliers() {
        float[] x = new float[10_000];
        for (int i = 0; i < x.length; i++) x[i] = i % 2 == 0 ? 1 : -1;
        for (int i = 0; i < 10; i++) x[i * 997] = i % 2 == 0 ? 50 : -50;
        // mean 0; variance = (9990 * 1 + 10 * 2500) / 10000 = 3.499; 6 std = 11.22 < 50
        Moments m = Moments.of(x);
        assertEquals(0, m.mean(), 1e-15);
        assertEquals(Math.sqrt(3.499), m.std(), 1e-12);
        assertEquals(10, m.countOutliers(x));
        assertEquals(0.001, m.outlierRatio(), 1e-15);
        assertThrows(IllegalStateException.class, () -> m.add(1));
        assertThrows(IllegalStateException.class, () -> new Moments().merge(m));
    }

    @Test
    void degenerateInputs() {
        Moments empty = new Moments();
        assertTrue(Double.isNaN(empty.mean()));
        assertTrue(Double.isNaN(empty.pearsonKurtosis()));
        Moments constant = Moments.of(new float[] {2, 2, 2});
        assertEquals(0, constant.std());
        assertTrue(Double.isNaN(constant.pearsonKurtosis()));
        assertTrue(Double.isNaN(Moments.of(new float[] {0, 0}).maxOverMeanAbs()));
        assertTrue(Double.isNaN(constant.outlierRatio()), "no ratio before the outlier pass");
    }

    private static Moments oneByOne(float[] x) {
        Moments m = new Moments();
        for (float v : x) m.add(v);
        return m;
    }

    private static double sampleExcess(double pearson, int n) {
        double g2 = pearson - 3;
        return ((n + 1) * g2 + 6) * (n - 1) / ((double) (n - 2) * (n - 3));
    }

    private static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) d[i] = x[i];
        return d;
    }
}
