package lowbit.stats;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class BootstrapTest {
    @Test
    void oneRunOfIdenticalWindowsHasNoSpread() {
        Bootstrap.Interval i = Bootstrap.mean(new double[][] {{2, 2, 2, 2}}, 500, 1);
        assertEquals(new Bootstrap.Interval(2, 2, 2), i);
    }

    @Test
    void meanIntervalCoversTheNormalApproximation() {
        // 4 runs x 50 windows of a fixed, spread-out sequence: the percentile interval of the mean should be close to
        // mean +- 1.96 x sd / sqrt(n) of the pooled values (the two-level resampling adds the run level's variance,
        // which is 0 here: every run is the same values)
        double[][] v = new double[4][50];
        for (double[] row : v)
            for (int j = 0; j < 50; j++) row[j] = j % 10;
        Bootstrap.Interval i = Bootstrap.mean(v, 4000, 7);
        assertEquals(4.5, i.mean(), 1e-12);
        double half = 1.96 * Math.sqrt(8.25 / 200);
        assertEquals(4.5 - half, i.lo(), 0.05);
        assertEquals(4.5 + half, i.hi(), 0.05);
    }

    @Test
    void pairedDifferencesCancelWhatBothArmsShare() {
        // b = a + 1 exactly: the paired difference is -1 with no spread, however noisy a is
        double[][] a = {{5, 1, 9, 3}, {7, 2, 8, 4}}, b = new double[2][4];
        for (int r = 0; r < 2; r++)
            for (int j = 0; j < 4; j++) b[r][j] = a[r][j] + 1;
        Bootstrap.Interval d = Bootstrap.difference(a, b, 500, 3);
        assertEquals(-1, d.mean(), 1e-12);
        assertEquals(-1, d.lo(), 1e-12);
        assertEquals(-1, d.hi(), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> Bootstrap.difference(a, new double[][] {{1}}, 10, 1));
    }

    @Test
    void percentilesInterpolateLinearly() {
        assertEquals(2.5, Percentiles.of(new double[] {1, 2, 3, 4}, 0.5), 0);
        assertEquals(1.3, Percentiles.of(new double[] {1, 2}, 0.3), 1e-12);
    }
}
