package lowbit.stats;

import java.util.Arrays;

/**
 * Statistics of a stream of [rows][cols] activation batches: {@link Moments} of every element, per-channel
 * (column) mean, M2 and max |x|, and each row's (token's) max |x|. Per-channel moments are taken exactly per
 * batch and merged with Chan's pairwise update, so channels with a large mean keep their small spread.
 */
final class TensorAccumulator {
    final int cols;
    final Moments all = new Moments();
    private long rows;
    private final double[] chMean, chM2;
    private final float[] chMaxAbs;
    private float[] tokenMax = new float[1024];
    private int tokens;

    TensorAccumulator(int cols) {
        this.cols = cols;
        chMean = new double[cols];
        chM2 = new double[cols];
        chMaxAbs = new float[cols];
    }

    void add(float[] x, int n) {
        if (x.length < (long) n * cols)
            throw new IllegalArgumentException("batch of " + x.length + " values, expected " + n + "x" + cols);
        if (n == 0) return;
        all.addAll(x, 0, n * cols);
        double[] mu = new double[cols], m2 = new double[cols];
        for (int r = 0; r < n; r++) {
            int o = r * cols;
            float tmax = 0;
            for (int c = 0; c < cols; c++) {
                float v = x[o + c], a = Math.abs(v);
                mu[c] += v;
                if (a > chMaxAbs[c]) chMaxAbs[c] = a;
                if (a > tmax) tmax = a;
            }
            if (tokens == tokenMax.length) tokenMax = Arrays.copyOf(tokenMax, tokens * 2);
            tokenMax[tokens++] = tmax;
        }
        for (int c = 0; c < cols; c++) mu[c] /= n;
        for (int r = 0; r < n; r++) {
            int o = r * cols;
            for (int c = 0; c < cols; c++) {
                double d = x[o + c] - mu[c];
                m2[c] += d * d;
            }
        }
        double na = rows, nb = n, nt = na + nb;
        for (int c = 0; c < cols; c++) {
            double d = mu[c] - chMean[c];
            chMean[c] += d * nb / nt;
            chM2[c] += m2[c] + d * d * na * nb / nt;
        }
        rows += n;
    }

    /** Second pass over the same batches, after the last {@link #add}. */
    void countOutliers(float[] x, int n) {
        all.countOutliers(x, 0, n * cols);
    }

    long rows() {
        return rows;
    }

    /** Population std of each channel over all rows. */
    double[] channelStd() {
        double[] s = new double[cols];
        for (int c = 0; c < cols; c++) s[c] = Math.sqrt(chM2[c] / rows);
        return s;
    }

    float[] channelMaxAbs() {
        return chMaxAbs.clone();
    }

    float[] tokenMaxAbs() {
        return Arrays.copyOf(tokenMax, tokens);
    }
}
