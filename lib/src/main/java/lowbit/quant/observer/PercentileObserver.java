package lowbit.quant.observer;

import java.util.Arrays;

/**
 * Clips to a percentile of everything observed; torch.ao has no such observer, so the definition is ours:
 * <ul>
 *   <li>{@link Tails#ABS}: c = P-th percentile of |x|, range [-c, c] (for symmetric grids), P in (0, 100];</li>
 *   <li>{@link Tails#BOTH}: range [(100-P)-th percentile of x, P-th percentile of x] (for affine grids), P in [50, 100].</li>
 * </ul>
 * The percentile is numpy.percentile's default "linear" method over all observed values in double: with the values
 * sorted as a[0..n-1], the virtual index (n-1)*P/100 is interpolated between its neighbours, from the upper one when
 * the fraction is at least 1/2, as numpy's _lerp does. P = 100 is the plain min/max (or absmax).
 *
 * <p>Memory: the P-th percentile of n values needs only the m(n) = n - floor((n-1)P/100) largest of them, about
 * (1 - P/100) n + 1 (and for {@link Tails#BOTH} one more, and as many smallest), and m grows with n. Kept values are the largest seen so far; a value that is not
 * among the largest m(N) of the first n is never among the largest m(N) of all N >= n, so an observer that knows the
 * largest count it will see ({@link #forCount}) keeps m(N) values (2 m(N) while it selects) and is exact for any
 * n <= N. Without a count ({@link #PercentileObserver(double, Tails)}) it cannot know which values a later, larger n
 * will need, so it keeps them all: meant for small sets, not for calibration streams.
 */
public final class PercentileObserver implements Observer {
    public enum Tails { ABS, BOTH }

    private final double p;
    private final Tails tails;
    private final long maxCount;
    private final Largest high;
    private final Largest low;
    private long n;

    /** Keeps every observed value. */
    public PercentileObserver(double percentile, Tails tails) {
        this(percentile, tails, Long.MAX_VALUE);
    }

    /**
     * Keeps only the values the percentile of at most {@code maxCount} values can need (about (1 - P/100) maxCount of
     * them, per tail), and refuses more than {@code maxCount} values.
     */
    public static PercentileObserver forCount(double percentile, Tails tails, long maxCount) {
        if (maxCount < 1) throw new IllegalArgumentException("percentile observer needs a positive value count, got " + maxCount);
        return new PercentileObserver(percentile, tails, maxCount);
    }

    private PercentileObserver(double percentile, Tails tails, long maxCount) {
        if (tails == Tails.ABS ? !(percentile > 0 && percentile <= 100) : !(percentile >= 50 && percentile <= 100))
            throw new IllegalArgumentException("observer percentile must be in " + (tails == Tails.ABS ? "(0, 100]" : "[50, 100]")
                    + ", got " + percentile);
        this.p = percentile;
        this.tails = tails;
        this.maxCount = maxCount;
        // the low tail reads ascending indices lo' and lo' + 1, one more than the high tail's n - lo when (n-1)P/100 is whole
        long keep = maxCount == Long.MAX_VALUE ? Long.MAX_VALUE : needed(maxCount, p) + (tails == Tails.BOTH ? 1 : 0);
        this.high = new Largest(keep);
        this.low = tails == Tails.BOTH ? new Largest(keep) : null;
    }

    /**
     * How many of the largest of n values numpy's linear percentile at q reads: with v = (n-1)q/100, the values at
     * ascending indices floor(v) and floor(v) + 1, i.e. the n - floor(v) largest. Never decreases as n grows.
     */
    static long needed(long n, double q) {
        long lo = (long) Math.floor(q / 100 * (n - 1));
        return Math.max(1, n - lo);
    }

    public double percentile() {
        return p;
    }

    /** How many values the observer holds now (both tails together). */
    public long retained() {
        return high.size() + (low == null ? 0 : low.size());
    }

    @Override
    public void observe(float[] x) {
        if (Observer.minMax(x) == null) return;
        if (n + x.length > maxCount)
            throw new IllegalStateException("percentile observer was sized for " + maxCount + " values and got " + (n + x.length));
        n += x.length;
        for (float v : x) {
            if (tails == Tails.ABS) {
                high.offer(Math.abs(v));
            } else {
                high.offer(v);
                low.offer(-v);
            }
        }
    }

    @Override
    public Range range() {
        if (n == 0) return Range.EMPTY;
        float[] top = high.descending();
        if (tails == Tails.ABS) {
            float c = (float) percentile(top, n, p);
            return new Range(-c, c);
        }
        float[] bottom = low.descending();
        // the (100-P)-th percentile of x is minus the P-th percentile of -x only up to _lerp's branch on the fraction,
        // so the low tail is read in ascending order from -bottom
        return new Range((float) percentileAscending(bottom, n, 100 - p), (float) percentile(top, n, p));
    }

    /** numpy.percentile(a, q) for the n values whose largest are {@code desc} (descending). */
    private static double percentile(float[] desc, long n, double q) {
        double virtual = q / 100 * (n - 1);
        long lo = (long) Math.floor(virtual);
        if (lo >= n - 1) return desc[0];
        return lerp(at(desc, n - 1 - lo), at(desc, n - 2 - lo), virtual - lo);
    }

    /** numpy.percentile(a, q) for the n values whose smallest are -{@code negDesc} (negDesc: the largest of -a, descending). */
    private static double percentileAscending(float[] negDesc, long n, double q) {
        double virtual = q / 100 * (n - 1);
        long lo = (long) Math.floor(virtual);
        if (lo >= n - 1) return -(double) at(negDesc, n - 1);
        return lerp(-(double) at(negDesc, lo), -(double) at(negDesc, lo + 1), virtual - lo);
    }

    private static float at(float[] values, long i) {
        if (i >= values.length) throw new IllegalStateException("percentile observer kept " + values.length + " values and needs the " + (i + 1) + "th");
        return values[(int) i];
    }

    /** numpy's _lerp. */
    private static double lerp(double a, double b, double t) {
        double diff = b - a;
        return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
    }

    /** numpy.percentile(a, q) with method="linear" on sorted a. */
    static double percentile(double[] sorted, double q) {
        double virtual = q / 100 * (sorted.length - 1);
        int lo = (int) Math.floor(virtual);
        if (lo >= sorted.length - 1) return sorted[sorted.length - 1];
        return lerp(sorted[lo], sorted[lo + 1], virtual - lo);
    }

    /**
     * The largest {@code keep} values offered so far. Values go into a buffer of 2 keep; when it is full the largest
     * keep are selected and the smallest of them becomes the bar a new value must pass, so memory stays at 2 keep floats
     * and the work per value is amortized O(log keep).
     */
    private static final class Largest {
        private final long keep;
        private float[] buf;
        private int size;
        private boolean full;
        private float bar = Float.NEGATIVE_INFINITY;

        Largest(long keep) {
            if (keep != Long.MAX_VALUE && 2 * keep > Integer.MAX_VALUE - 8)
                throw new IllegalArgumentException("percentile observer would keep " + keep + " values per tail; use a higher percentile or fewer values");
            this.keep = keep;
            this.buf = new float[keep == Long.MAX_VALUE ? 1024 : (int) Math.max(2, Math.min(1024, 2 * keep))];
        }

        int size() {
            return size;
        }

        void offer(float v) {
            if (full && v <= bar) return;
            if (size == buf.length) {
                if (keep != Long.MAX_VALUE && size >= 2 * keep) {
                    compact();
                    if (v <= bar) return;
                } else {
                    long grown = keep == Long.MAX_VALUE ? 2L * buf.length : Math.min(2L * buf.length, 2 * keep);
                    if (grown > Integer.MAX_VALUE - 8) throw new IllegalStateException("percentile observer holds too many values (" + size + ")");
                    buf = Arrays.copyOf(buf, (int) grown);
                }
            }
            buf[size++] = v;
        }

        private void compact() {
            Arrays.sort(buf, 0, size);
            int k = (int) keep;
            System.arraycopy(buf, size - k, buf, 0, k);
            size = k;
            full = true;
            bar = buf[0];
        }

        float[] descending() {
            float[] d = Arrays.copyOf(buf, size);
            Arrays.sort(d);
            int from = keep == Long.MAX_VALUE ? 0 : (int) Math.max(0, d.length - keep);
            float[] out = new float[d.length - from];
            for (int i = 0; i < out.length; i++) out[i] = d[d.length - 1 - i];
            return out;
        }
    }
}
