package lowbit.quant.observer;

import java.util.Arrays;

/**
 * Clips to a percentile of everything observed; torch.ao has no such observer, so the definition is ours:
 * <ul>
 *   <li>{@link Tails#ABS}: c = P-th percentile of |x|, range [-c, c] (for symmetric grids);</li>
 *   <li>{@link Tails#BOTH}: range [(100-P)-th percentile of x, P-th percentile of x] (for affine grids).</li>
 * </ul>
 * The percentile is numpy.percentile's default "linear" method over all observed values in double: with the values
 * sorted as a[0..n-1], the virtual index (n-1)*P/100 is interpolated between its neighbours, from the upper one when
 * the fraction is at least 1/2, as numpy's _lerp does. P = 100 is the plain min/max (or absmax).
 *
 * <p>An exact percentile needs every value, so the observer keeps them all (4 bytes each): meant for calibration
 * sets, not for unbounded training streams.
 */
public final class PercentileObserver implements Observer {
    public enum Tails { ABS, BOTH }

    private final double p;
    private final Tails tails;
    private float[] values = new float[1024];
    private int n;

    public PercentileObserver(double percentile, Tails tails) {
        if (!(percentile >= 50 && percentile <= 100))
            throw new IllegalArgumentException("observer percentile must be in [50, 100], got " + percentile);
        this.p = percentile;
        this.tails = tails;
    }

    public double percentile() {
        return p;
    }

    @Override
    public void observe(float[] x) {
        if (Observer.minMax(x) == null) return;
        if (n + x.length > values.length) values = Arrays.copyOf(values, Math.max(n + x.length, 2 * values.length));
        System.arraycopy(x, 0, values, n, x.length);
        n += x.length;
    }

    @Override
    public Range range() {
        if (n == 0) return Range.EMPTY;
        double[] a = new double[n];
        for (int i = 0; i < n; i++) a[i] = tails == Tails.ABS ? Math.abs(values[i]) : values[i];
        Arrays.sort(a);
        if (tails == Tails.ABS) {
            float c = (float) percentile(a, p);
            return new Range(-c, c);
        }
        return new Range((float) percentile(a, 100 - p), (float) percentile(a, p));
    }

    /** numpy.percentile(a, q) with method="linear" on sorted a. */
    static double percentile(double[] sorted, double q) {
        double virtual = q / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(virtual);
        if (lo >= sorted.length - 1) return sorted[sorted.length - 1];
        double t = virtual - lo;
        double a = sorted[lo], b = sorted[lo + 1], diff = b - a;
        return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
    }
}
