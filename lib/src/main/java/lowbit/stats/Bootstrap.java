package lowbit.stats;

import java.util.Arrays;
import java.util.SplittableRandom;

/**
 * Percentile bootstrap intervals for a mean over two levels of resampling: runs (calibration seeds) and, within each,
 * windows. A resample draws as many runs as there are, with replacement, and for each drawn run as many of its
 * windows, with replacement; the statistic is the mean over everything drawn. Paired differences use the same draws
 * for both arms, which is what makes two allocations measured on the same windows comparable.
 */
public final class Bootstrap {
    private Bootstrap() {}

    public static final int DEFAULT_RESAMPLES = 2000;

    /** mean, and the 2.5% and 97.5% percentiles of the resampled means. */
    public record Interval(double mean, double lo, double hi) {
        public boolean overlaps(Interval o) {
            return lo <= o.hi && o.lo <= hi;
        }

        public Interval map(java.util.function.DoubleUnaryOperator f) {
            return new Interval(f.applyAsDouble(mean), f.applyAsDouble(lo), f.applyAsDouble(hi));
        }
    }

    /** The interval of the mean of {@code values[run][window]}. */
    public static Interval mean(double[][] values, int resamples, long seed) {
        return difference(values, null, resamples, seed);
    }

    /** The interval of mean(a) - mean(b), a and b measured on the same runs and windows (b null: of mean(a)). */
    public static Interval difference(double[][] a, double[][] b, int resamples, long seed) {
        check(a, b);
        double[] stats = new double[resamples];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int r = 0; r < resamples; r++) {
            double s = 0;
            long n = 0;
            for (int i = 0; i < a.length; i++) {
                int run = rng.nextInt(a.length);
                int w = a[run].length;
                for (int j = 0; j < w; j++) {
                    int k = rng.nextInt(w);
                    s += a[run][k] - (b == null ? 0 : b[run][k]);
                    n++;
                }
            }
            stats[r] = s / n;
        }
        Arrays.sort(stats);
        return new Interval(overallMean(a) - (b == null ? 0 : overallMean(b)), Percentiles.of(stats, 0.025), Percentiles.of(stats, 0.975));
    }

    private static double overallMean(double[][] v) {
        double s = 0;
        long n = 0;
        for (double[] row : v)
            for (double x : row) {
                s += x;
                n++;
            }
        return s / n;
    }

    private static void check(double[][] a, double[][] b) {
        if (a.length == 0) throw new IllegalArgumentException("no runs to resample");
        for (double[] row : a) if (row.length == 0) throw new IllegalArgumentException("a run has no windows");
        if (b == null) return;
        if (b.length != a.length) throw new IllegalArgumentException("paired runs differ in number: " + a.length + " and " + b.length);
        for (int i = 0; i < a.length; i++)
            if (a[i].length != b[i].length) throw new IllegalArgumentException("run " + i + " has " + a[i].length + " and " + b[i].length + " windows");
    }
}
