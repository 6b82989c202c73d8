package lowbit.stats;

/** Percentiles of sorted values, one definition for every report (KL divergence's tails, bootstrap intervals). */
public final class Percentiles {
    private Percentiles() {}

    /** Linear interpolation at fraction x (n - 1) of ascending {@code sorted} (numpy's default, llama.cpp's). */
    public static double of(double[] sorted, double fraction) {
        double p = fraction * (sorted.length - 1);
        int i = (int) p;
        double w = p - i;
        return (1 - w) * sorted[i] + w * sorted[Math.min(i + 1, sorted.length - 1)];
    }
}
