package lowbit.stats;

/**
 * Streaming moments of a stream of values, in double: count, mean, the central sums M2, M3, M4, max |x| and
 * sum |x| (METHODS.md section 3). Single values use Terriberry's one-pass update; chunks of floats
 * ({@link #addAll}) are summarised exactly in two passes over the chunk and merged with Pébay's pairwise
 * formulas, which is both faster and more accurate than a per-element update. {@link #merge} combines
 * partial accumulators (per window, per thread) into the result one pass over everything would give.
 *
 * <p>The outlier ratio is the share of |x| &gt; {@value #OUTLIER_STDS} std, with std the FINAL population
 * std of all the data, so it needs a second look at the data: accumulate everything first, then pass the
 * same data to {@link #countOutliers}. Once outlier counting has begun the accumulator is frozen (adds and
 * merges throw), because a later add would move the threshold the earlier counts were taken against.
 * The threshold is on |x| itself, not on |x - mean|, as the definition reads.
 */
public final class Moments {
    /** The outlier threshold in population standard deviations. */
    public static final double OUTLIER_STDS = 6;

    private long n;
    private double mean, m2, m3, m4;
    private double maxAbs, sumAbs;
    private long outliers;
    private boolean counting;

    public Moments() {}

    /** Moments of x. */
    public static Moments of(float[] x) {
        Moments m = new Moments();
        m.addAll(x, 0, x.length);
        return m;
    }

    /** Adds one value (Terriberry's update of Welford's algorithm to the third and fourth moments). */
    public void add(double x) {
        checkOpen();
        long n1 = n++;
        double delta = x - mean;
        double dn = delta / n, dn2 = dn * dn;
        double term1 = delta * dn * n1;
        mean += dn;
        m4 += term1 * dn2 * ((double) n * n - 3.0 * n + 3) + 6 * dn2 * m2 - 4 * dn * m3;
        m3 += term1 * dn * (n - 2) - 3 * dn * m2;
        m2 += term1;
        double a = Math.abs(x);
        if (a > maxAbs || Double.isNaN(a)) maxAbs = a;
        sumAbs += a;
    }

    public void addAll(float[] x) {
        addAll(x, 0, x.length);
    }

    /** Adds x[off, off+len): the chunk's exact central sums (mean first, then deviations), merged in. */
    public void addAll(float[] x, int off, int len) {
        checkOpen();
        if (len == 0) return;
        double sum = 0, sumA = 0, maxA = 0;
        for (int i = off; i < off + len; i++) {
            double v = x[i], a = Math.abs(v);
            sum += v;
            sumA += a;
            if (a > maxA || Double.isNaN(a)) maxA = a;
        }
        double mu = sum / len;
        double s2 = 0, s3 = 0, s4 = 0;
        for (int i = off; i < off + len; i++) {
            double d = x[i] - mu, d2 = d * d;
            s2 += d2;
            s3 += d2 * d;
            s4 += d2 * d2;
        }
        combine(len, mu, s2, s3, s4, maxA, sumA);
    }

    /** Folds other into this (Pébay 2008, eq. 3.1 and the M3/M4 pairwise formulas); returns this. */
    public Moments merge(Moments other) {
        checkOpen();
        if (other.counting) throw new IllegalStateException("cannot merge an accumulator that has begun counting outliers");
        combine(other.n, other.mean, other.m2, other.m3, other.m4, other.maxAbs, other.sumAbs);
        return this;
    }

    private void combine(long nb, double meanB, double m2B, double m3B, double m4B, double maxB, double sumAbsB) {
        if (nb == 0) return;
        if (maxB > maxAbs || Double.isNaN(maxB)) maxAbs = maxB;
        sumAbs += sumAbsB;
        if (n == 0) {
            n = nb;
            mean = meanB;
            m2 = m2B;
            m3 = m3B;
            m4 = m4B;
            return;
        }
        double na = n, b = nb, nt = na + b;
        double d = meanB - mean, d2 = d * d;
        double m2A = m2, m3A = m3;
        mean += d * b / nt;
        m4 += m4B + d2 * d2 * na * b * (na * na - na * b + b * b) / (nt * nt * nt)
                + 6 * d2 * (na * na * m2B + b * b * m2A) / (nt * nt) + 4 * d * (na * m3B - b * m3A) / nt;
        m3 += m3B + d2 * d * na * b * (na - b) / (nt * nt) + 3 * d * (na * m2B - b * m2A) / nt;
        m2 += m2B + d2 * na * b / nt;
        n += nb;
    }

    /**
     * Second pass: counts the x in x[off, off+len) with |x| &gt; {@value #OUTLIER_STDS} std of everything added
     * so far, and freezes this accumulator. Pass every value once, after the last add.
     */
    public long countOutliers(float[] x, int off, int len) {
        counting = true;
        double t = outlierThreshold();
        long c = 0;
        for (int i = off; i < off + len; i++) if (Math.abs(x[i]) > t) c++;
        outliers += c;
        return c;
    }

    public long countOutliers(float[] x) {
        return countOutliers(x, 0, x.length);
    }

    private void checkOpen() {
        if (counting) throw new IllegalStateException("outlier counting has begun: the std is final, no more values can be added");
    }

    public long count() {
        return n;
    }

    public double mean() {
        return n == 0 ? Double.NaN : mean;
    }

    /** Population variance m2 = M2 / n. */
    public double variance() {
        return n == 0 ? Double.NaN : m2 / n;
    }

    /** Population standard deviation sqrt(M2 / n). */
    public double std() {
        return Math.sqrt(variance());
    }

    /** Pearson kurtosis m4 / m2^2 (normal = 3; NaN for constant data). */
    public double pearsonKurtosis() {
        return n == 0 || m2 == 0 ? Double.NaN : n * m4 / (m2 * m2);
    }

    /**
     * Excess kurtosis = Pearson - 3, the population (biased) estimator g2. Not the same number as
     * commons-math3's Kurtosis, which is the bias-corrected sample estimator G2.
     */
    public double excessKurtosis() {
        return pearsonKurtosis() - 3;
    }

    /** Population skewness m3 / m2^1.5. */
    public double skewness() {
        return n == 0 || m2 == 0 ? Double.NaN : Math.sqrt(n) * m3 / Math.pow(m2, 1.5);
    }

    public double maxAbs() {
        return n == 0 ? Double.NaN : maxAbs;
    }

    public double meanAbs() {
        return n == 0 ? Double.NaN : sumAbs / n;
    }

    /** max|x| / mean|x| (NaN when every value is 0). */
    public double maxOverMeanAbs() {
        double m = meanAbs();
        return m == 0 ? Double.NaN : maxAbs() / m;
    }

    /** {@value #OUTLIER_STDS} x the population std. */
    public double outlierThreshold() {
        return OUTLIER_STDS * std();
    }

    /** Values counted by {@link #countOutliers}. */
    public long outliers() {
        return outliers;
    }

    /** outliers / count; NaN before {@link #countOutliers} was called. */
    public double outlierRatio() {
        return counting && n > 0 ? (double) outliers / n : Double.NaN;
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "Moments[n=%d mean=%g std=%g kurtosis=%g maxAbs=%g]", n, mean(), std(),
                pearsonKurtosis(), maxAbs());
    }
}
