package lowbit.calibration;

import lowbit.tensor.Cholesky;
import lowbit.tensor.Gram;
import lowbit.tensor.Parallel;

/**
 * H = 2/n sum_sequences X^T X of one linear input, kept as a running average over calibration sequences the
 * way IST-DASLab's gptq.py add_batch does (H = H n/(n+1) + 2/(n+1) X^T X), so that GPTQ, the sensitivity proxies
 * and the Hessian statistics all see bit-identical matrices.
 */
public final class Hessian {
    private final int columns;
    private final double[] h;
    private int samples;

    public Hessian(int columns) {
        if (columns < 1) throw new IllegalArgumentException("a Hessian needs >= 1 column, got " + columns);
        this.columns = columns;
        this.h = new double[columns * columns];
    }

    /** A Hessian accumulated elsewhere over {@code samples} sequences (copied). */
    public static Hessian of(double[] h, int columns, int samples) {
        if (h.length != columns * columns) throw new IllegalArgumentException("H has " + h.length + " entries, expected " + columns + "^2");
        Hessian r = new Hessian(columns);
        System.arraycopy(h, 0, r.h, 0, h.length);
        r.samples = samples;
        return r;
    }

    /** Adds one calibration sequence x [tokens][columns]. */
    public void add(float[] x, int tokens, Parallel par) {
        if (x.length < tokens * columns)
            throw new IllegalArgumentException("batch has " + x.length + " values, expected " + tokens + "x" + columns);
        double keep = (double) samples / (samples + 1);
        samples++;
        if (keep != 1) for (int i = 0; i < h.length; i++) h[i] *= keep;
        Gram.accumulate(h, x, tokens, columns, 2.0 / samples, par);
    }

    public int columns() {
        return columns;
    }

    /** Sequences added so far. */
    public int samples() {
        return samples;
    }

    /** The running H, row-major [columns][columns] (live). */
    public double[] values() {
        return h;
    }

    public double trace() {
        double t = 0;
        for (int i = 0; i < columns; i++) t += h[i * columns + i];
        return t;
    }

    /**
     * The upper Cholesky factor U of (H + damp I)^-1 (U^T U = H^-1), with the row-major {@code u}, as GPTQ's and
     * BiLLM's references compute it: damp = percdamp * mean(diag(H)), H^-1 = cholesky_inverse(cholesky(H)), then
     * cholesky(H^-1, upper=True).
     *
     * @param percdamp  the damping that made H factorizable: the requested one, unless a factorization failed and
     *                  it was doubled (0 becomes 0.01) until one succeeded
     * @param attempts  factorizations tried
     */
    public record InverseFactor(double[] u, double percdamp, int attempts) {}

    private static final int MAX_DAMP_ATTEMPTS = 12;

    /**
     * {@link InverseFactor} of {@code h} [n][n] (dead columns already fixed by the caller; not modified). When
     * damping {@code percdamp} does not make it factorizable the damping is doubled, at most 12 times; then an
     * IllegalStateException names {@code name}.
     */
    public static InverseFactor inverseFactor(String name, double[] h, int n, double percdamp, Parallel par) {
        double meanDiag = 0;
        for (int i = 0; i < n; i++) meanDiag += h[i * n + i];
        meanDiag /= n;
        for (int attempt = 1; attempt <= MAX_DAMP_ATTEMPTS; attempt++) {
            double[] a = h.clone();
            double damp = percdamp * meanDiag;
            for (int i = 0; i < n; i++) a[i * n + i] += damp;
            if (Cholesky.factorLower(a, n, par)) {
                double[] inv = Cholesky.inverseFromLower(a, n, par);
                if (Cholesky.factorUpper(inv, n, par)) return new InverseFactor(inv, percdamp, attempt);
            }
            percdamp = percdamp == 0 ? 0.01 : percdamp * 2;
        }
        throw new IllegalStateException(name + ": H is not positive definite even with percdamp " + percdamp / 2
                + " (" + MAX_DAMP_ATTEMPTS + " attempts); the calibration activations may be degenerate");
    }
}
