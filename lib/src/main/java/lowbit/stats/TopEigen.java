package lowbit.stats;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.apache.commons.math3.linear.EigenDecomposition;
import org.apache.commons.math3.linear.RealVector;

/**
 * The k largest eigenvalues of a symmetric matrix by Lanczos with full reorthogonalisation: each step costs one
 * matrix-vector product (n^2) plus the reorthogonalisation against the basis so far, and the top of the spectrum
 * of a Hessian converges in a few dozen steps, where a full decomposition costs O(n^3) with a large constant
 * (commons-math3's EigenDecomposition: 82 s for n = 1536 on this machine, against 0.5 s for the top 8 here,
 * 35 steps, same values to 6 digits on a Gram matrix of 2048 random rows with outlier columns). The Ritz values of the tridiagonal matrix come from commons-math3's
 * tridiagonal solver; a Ritz pair counts as converged when its residual beta_m |y_m| is at most
 * {@link #TOLERANCE} x the largest |Ritz value| (the eigenvalue error is at most that residual, and in practice
 * its square over the spectral gap). When the Krylov space becomes invariant (H of low rank, e.g. few
 * calibration tokens) the iteration continues from a fresh random vector orthogonal to the basis, so
 * eigenvalues the start vector missed (zeros included) are still found; at m = n the basis is complete and
 * the values are exact up to rounding. Like every single-vector Krylov method it may stop before finding
 * a second copy of an exactly repeated eigenvalue; Hessians of real activations do not have those at the top.
 */
public final class TopEigen {
    private TopEigen() {}

    public static final double TOLERANCE = 1e-10;

    /** The top-k eigenvalues (descending) and the Lanczos steps it took. */
    public record Result(double[] values, int steps) {}

    /** The k largest eigenvalues of the symmetric n x n matrix h (row-major; only symmetry is assumed, not definiteness). */
    public static Result largest(double[] h, int n, int k) {
        if ((long) n * n != h.length) throw new IllegalArgumentException("matrix has " + h.length + " entries, expected " + n + "^2");
        if (k < 1 || k > n) throw new IllegalArgumentException("asked for " + k + " eigenvalues of a " + n + "x" + n + " matrix");
        for (double v : h) if (!Double.isFinite(v)) throw new IllegalArgumentException("matrix contains " + v);
        double scale = 0;
        for (double v : h) scale = Math.max(scale, Math.abs(v));
        if (scale == 0) return new Result(new double[k], 0);

        SplittableRandom rnd = new SplittableRandom(0x5eed);
        double[][] q = new double[n][];
        double[] alpha = new double[n], beta = new double[n];
        double[] v = randomOrthogonal(q, 0, n, rnd);
        double[] w = new double[n];
        for (int j = 0; j < n; j++) {
            q[j] = v;
            multiply(h, n, v, w);
            double a = dot(v, w);
            alpha[j] = a;
            for (int i = 0; i < n; i++) w[i] -= a * v[i] + (j > 0 ? beta[j - 1] * q[j - 1][i] : 0);
            orthogonalise(q, j + 1, w);
            orthogonalise(q, j + 1, w);
            double b = Math.sqrt(dot(w, w));
            int m = j + 1;
            boolean breakdown = b <= 1e-13 * scale * Math.sqrt(n);
            if (m == n || (m >= k && (breakdown || m % 5 == 0))) {
                double[] top = converged(alpha, beta, m, breakdown ? 0 : b, k);
                if (top != null || m == n) return new Result(top != null ? top : ritz(alpha, beta, m, k), m);
            }
            if (breakdown) {
                beta[j] = 0;
                v = randomOrthogonal(q, m, n, rnd);
            } else {
                beta[j] = b;
                v = new double[n];
                for (int i = 0; i < n; i++) v[i] = w[i] / b;
            }
        }
        throw new AssertionError("unreachable: the loop returns at m = n");
    }

    /** The top-k Ritz values when all have residual within tolerance, else null. */
    private static double[] converged(double[] alpha, double[] beta, int m, double b, int k) {
        EigenDecomposition ed = tridiagonal(alpha, beta, m);
        double[] ev = ed.getRealEigenvalues();
        Integer[] order = descending(ev);
        double big = 0;
        for (double e : ev) big = Math.max(big, Math.abs(e));
        double[] top = new double[k];
        for (int i = 0; i < k; i++) {
            RealVector y = ed.getEigenvector(order[i]);
            if (b * Math.abs(y.getEntry(m - 1)) > TOLERANCE * big) return null;
            top[i] = ev[order[i]];
        }
        return top;
    }

    private static double[] ritz(double[] alpha, double[] beta, int m, int k) {
        double[] ev = tridiagonal(alpha, beta, m).getRealEigenvalues();
        Integer[] order = descending(ev);
        double[] top = new double[k];
        for (int i = 0; i < k; i++) top[i] = ev[order[i]];
        return top;
    }

    private static EigenDecomposition tridiagonal(double[] alpha, double[] beta, int m) {
        return new EigenDecomposition(Arrays.copyOf(alpha, m), Arrays.copyOf(beta, m - 1));
    }

    private static Integer[] descending(double[] ev) {
        Integer[] order = new Integer[ev.length];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, (x, y) -> Double.compare(ev[y], ev[x]));
        return order;
    }

    /** A unit vector orthogonal to q[0..m), from random directions (twice Gram-Schmidt). */
    private static double[] randomOrthogonal(double[][] q, int m, int n, SplittableRandom rnd) {
        for (int attempt = 0; attempt < 10; attempt++) {
            double[] v = new double[n];
            for (int i = 0; i < n; i++) v[i] = rnd.nextDouble(-1, 1);
            orthogonalise(q, m, v);
            orthogonalise(q, m, v);
            double norm = Math.sqrt(dot(v, v));
            if (norm > 1e-8) {
                for (int i = 0; i < n; i++) v[i] /= norm;
                return v;
            }
        }
        throw new IllegalStateException("could not extend a Lanczos basis of " + m + " vectors in dimension " + n);
    }

    private static void orthogonalise(double[][] q, int m, double[] w) {
        for (int i = 0; i < m; i++) {
            double c = dot(q[i], w);
            double[] qi = q[i];
            for (int t = 0; t < w.length; t++) w[t] -= c * qi[t];
        }
    }

    private static void multiply(double[] h, int n, double[] v, double[] out) {
        for (int i = 0; i < n; i++) {
            double s = 0;
            int row = i * n;
            for (int j = 0; j < n; j++) s += h[row + j] * v[j];
            out[i] = s;
        }
    }

    private static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) s += a[i] * b[i];
        return s;
    }
}
