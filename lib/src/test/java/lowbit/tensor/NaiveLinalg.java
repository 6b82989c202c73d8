package lowbit.tensor;

/** Textbook scalar algorithms, the independent reference for {@link Cholesky} and {@link Gram}. */
final class NaiveLinalg {
    private NaiveLinalg() {}

    /** Cholesky-Banachiewicz, row by row; null when a pivot is not positive. */
    static double[] choleskyLower(double[] a, int n) {
        double[] l = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = 0; k < j; k++) s += l[i * n + k] * l[j * n + k];
                if (i == j) {
                    double d = a[i * n + i] - s;
                    if (!(d > 0)) return null;
                    l[i * n + i] = Math.sqrt(d);
                } else {
                    l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
                }
            }
        return l;
    }

    /** Row-oriented upper form, from the upper triangle of a: U[i][j] for j >= i. */
    static double[] choleskyUpper(double[] a, int n) {
        double[] u = new double[n * n];
        for (int i = 0; i < n; i++) {
            double d = a[i * n + i];
            for (int k = 0; k < i; k++) d -= u[k * n + i] * u[k * n + i];
            if (!(d > 0)) return null;
            double uii = Math.sqrt(d);
            u[i * n + i] = uii;
            for (int j = i + 1; j < n; j++) {
                double s = a[i * n + j];
                for (int k = 0; k < i; k++) s -= u[k * n + i] * u[k * n + j];
                u[i * n + j] = s / uii;
            }
        }
        return u;
    }

    /** L^-T L^-1: L^-1 by forward substitution on the columns of I, then its Gram matrix. */
    static double[] inverseFromLower(double[] l, int n) {
        double[] x = new double[n * n];
        for (int j = 0; j < n; j++)
            for (int i = j; i < n; i++) {
                double s = i == j ? 1 : 0;
                for (int k = j; k < i; k++) s -= l[i * n + k] * x[k * n + j];
                x[i * n + j] = s / l[i * n + i];
            }
        double[] inv = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int k = Math.max(i, j); k < n; k++) s += x[k * n + i] * x[k * n + j];
                inv[i * n + j] = s;
            }
        return inv;
    }

    /** h[i][j] += weight * sum_r x[r][i] x[r][j], in double, row of x by row of x. */
    static void gram(double[] h, float[] x, int rows, int n, double weight) {
        double[] acc = new double[n * n];
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            for (int i = 0; i < n; i++) {
                double xi = x[o + i];
                int hi = i * n;
                for (int j = i; j < n; j++) acc[hi + j] += xi * x[o + j];
            }
        }
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) {
                h[i * n + j] += weight * acc[i * n + j];
                h[j * n + i] = h[i * n + j];
            }
    }
}
