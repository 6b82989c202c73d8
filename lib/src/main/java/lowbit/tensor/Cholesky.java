package lowbit.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Cholesky factorization and inversion of symmetric positive definite matrices, row-major double[n*n],
 * for GPTQ's chain L = chol(H), H^-1 = L^-T L^-1, U = chol(H^-1, upper).
 *
 * <p>Blocked: a panel of {@link #NB} columns is factored and solved, and the trailing matrix is updated
 * with {@link DoubleTiles}' register-tiled kernel; the inverse is a blocked triangular inverse followed by
 * X^T X, both through the same kernel. With a {@link Parallel}, every output element is still computed
 * whole by one thread in a fixed order, so results are bitwise identical on any thread count.
 */
public final class Cholesky {
    private Cholesky() {}

    private static final VectorSpecies<Double> S = DoubleTiles.S;
    private static final int L = DoubleTiles.L;
    private static final int W = DoubleTiles.W;
    /** Columns per factorization step: the depth of the trailing update's products. */
    static final int NB = 4 * W;
    private static final Parallel SERIAL = new Parallel(1);

    /** {@link #factorLower(double[], int, Parallel)} on the calling thread. */
    public static boolean factorLower(double[] a, int n) {
        return factorLower(a, n, SERIAL);
    }

    /**
     * In place A = L L^T: L in the lower triangle, the upper triangle set to zero; only the lower triangle
     * of A is read. Returns false when A is not positive definite (a pivot is <= 0, NaN or infinite), with
     * {@code a} then in an unspecified state: the caller keeps a copy if it wants to retry.
     */
    public static boolean factorLower(double[] a, int n, Parallel par) {
        checkSquare(a, n, "a");
        for (int k0 = 0; k0 < n; k0 += NB) {
            final int from = k0, to = Math.min(n, k0 + NB), depth = to - from;
            if (!factorDiagonalBlock(a, n, from, to)) return false;
            int below = n - to;
            if (below == 0) break;
            int panels = (below + W - 1) / W;
            double[] p = new double[panels * depth * W];
            par.forEach(panels, q -> solvePanel(a, n, from, to, q, p));
            // largest row panels first, so the last tasks handed out are the short ones
            par.forEach(panels, task -> updateRowPanel(a, n, to, depth, panels - 1 - task, p));
        }
        for (int i = 0; i < n; i++) java.util.Arrays.fill(a, i * n + i + 1, (i + 1) * n, 0.0);
        return true;
    }

    /** {@link #factorUpper(double[], int, Parallel)} on the calling thread. */
    public static boolean factorUpper(double[] a, int n) {
        return factorUpper(a, n, SERIAL);
    }

    /**
     * In place A = U^T U: U in the upper triangle, the lower triangle set to zero (torch.linalg.cholesky
     * with upper=True). U is the transpose of the lower factor, which is unique; only the lower triangle of
     * A is read. Returns false when A is not positive definite, as {@link #factorLower}.
     */
    public static boolean factorUpper(double[] a, int n, Parallel par) {
        if (!factorLower(a, n, par)) return false;
        // in 8 x 8 blocks: a column walk misses the cache on every element, and with n*8 bytes a multiple of
        // 4 KiB (n = 512, 1536, ...) a whole column maps to one L1 set, so larger blocks would thrash it too
        int tb = 8;
        for (int i0 = 0; i0 < n; i0 += tb)
            for (int j0 = 0; j0 <= i0; j0 += tb)
                for (int i = i0, i1 = Math.min(n, i0 + tb); i < i1; i++)
                    for (int j = j0, j1 = Math.min(i, j0 + tb); j < j1; j++) {
                        a[j * n + i] = a[i * n + j];
                        a[i * n + j] = 0;
                    }
        return true;
    }

    /** {@link #inverseFromLower(double[], int, Parallel)} on the calling thread. */
    public static double[] inverseFromLower(double[] l, int n) {
        return inverseFromLower(l, n, SERIAL);
    }

    /**
     * A^-1 = L^-T L^-1 from the lower Cholesky factor L of A (torch.cholesky_inverse), as a new full
     * symmetric n x n matrix. Only the lower triangle of {@code l} is read; its diagonal must be positive,
     * as {@link #factorLower} leaves it.
     */
    public static double[] inverseFromLower(double[] l, int n, Parallel par) {
        checkSquare(l, n, "l");
        for (int i = 0; i < n; i++)
            if (!(l[i * n + i] > 0))
                throw new IllegalArgumentException("L[" + i + "][" + i + "] = " + l[i * n + i] + ", expected > 0");
        int panels = (n + W - 1) / W, size = panels * W;
        // X = L^-1 for L padded to size with an identity block, so every block is a full panel
        double[] x = new double[panels * size * W];
        for (int b = 0; b < panels; b++) {
            int i0 = b * W, block = b;
            double[] rows = packRowsTransposed(l, n, i0, i0 + W);
            par.forEach(b + 1, p -> invertTile(x, size, rows, block, p));
        }
        double[] inv = new double[n * n];
        int pairs = panels * (panels + 1) / 2;
        int[] ip = new int[pairs], jp = new int[pairs];
        // pairs with small jp have the longest k range: handed out first
        for (int j = 0, t = 0; j < panels; j++)
            for (int i = 0; i <= j; i++, t++) {
                ip[t] = i;
                jp[t] = j;
            }
        par.forEach(pairs, t -> gramTile(x, size, ip[t], jp[t], inv, n));
        return inv;
    }

    /** Textbook Cholesky of the diagonal block [from, to), whose earlier columns are already subtracted. */
    private static boolean factorDiagonalBlock(double[] a, int n, int from, int to) {
        for (int j = from; j < to; j++) {
            int rj = j * n;
            double d = a[rj + j];
            for (int k = from; k < j; k++) d = Math.fma(-a[rj + k], a[rj + k], d);
            if (!(d > 0 && d < Double.POSITIVE_INFINITY)) return false;
            double ljj = Math.sqrt(d);
            a[rj + j] = ljj;
            for (int i = j + 1; i < to; i++) {
                int ri = i * n;
                double s = a[ri + j];
                for (int k = from; k < j; k++) s = Math.fma(-a[ri + k], a[rj + k], s);
                a[ri + j] = s / ljj;
            }
        }
        return true;
    }

    /**
     * Rows below the diagonal block, panel q (W rows), columns [from, to): solves X L11^T = A21 for them in
     * a transposed copy (row k of the copy is column k of the panel, so the solve runs along vectors), then
     * writes the result back into a and leaves the copy in p for the trailing update.
     */
    private static void solvePanel(double[] a, int n, int from, int to, int q, double[] p) {
        int depth = to - from, base = q * depth * W, first = to + q * W, valid = Math.min(W, n - first);
        for (int c = 0; c < valid; c++) {
            int row = (first + c) * n + from;
            for (int k = 0; k < depth; k++) p[base + k * W + c] = a[row + k];
        }
        for (int k = 0; k < depth; k++) {
            int o = base + k * W, lk = (from + k) * n + from;
            DoubleVector v0 = DoubleVector.fromArray(S, p, o);
            DoubleVector v1 = DoubleVector.fromArray(S, p, o + L);
            DoubleVector v2 = DoubleVector.fromArray(S, p, o + 2 * L);
            for (int k2 = 0, o2 = base; k2 < k; k2++, o2 += W) {
                DoubleVector m = DoubleVector.broadcast(S, -a[lk + k2]);
                v0 = m.fma(DoubleVector.fromArray(S, p, o2), v0);
                v1 = m.fma(DoubleVector.fromArray(S, p, o2 + L), v1);
                v2 = m.fma(DoubleVector.fromArray(S, p, o2 + 2 * L), v2);
            }
            double d = a[lk + k];
            v0.div(d).intoArray(p, o);
            v1.div(d).intoArray(p, o + L);
            v2.div(d).intoArray(p, o + 2 * L);
        }
        for (int c = 0; c < valid; c++) {
            int row = (first + c) * n + from;
            for (int k = 0; k < depth; k++) a[row + k] = p[base + k * W + c];
        }
    }

    /** A22 -= L21 L21^T on the tiles of row panel qi left of and on the diagonal. */
    private static void updateRowPanel(double[] a, int n, int to, int depth, int qi, double[] p) {
        double[] t = new double[W * W];
        int i0 = to + qi * W, rows = Math.min(W, n - i0);
        for (int qj = 0; qj <= qi; qj++) {
            DoubleTiles.product(p, qi * depth * W, p, qj * depth * W, 0, depth, t);
            int j0 = to + qj * W, cols = Math.min(W, n - j0);
            for (int r = 0; r < rows; r++) {
                int o = (i0 + r) * n + j0, tr = r * W;
                if (cols == W) {
                    DoubleVector.fromArray(S, a, o).sub(DoubleVector.fromArray(S, t, tr)).intoArray(a, o);
                    DoubleVector.fromArray(S, a, o + L).sub(DoubleVector.fromArray(S, t, tr + L)).intoArray(a, o + L);
                    DoubleVector.fromArray(S, a, o + 2 * L).sub(DoubleVector.fromArray(S, t, tr + 2 * L)).intoArray(a, o + 2 * L);
                } else {
                    for (int c = 0; c < cols; c++) a[o + c] -= t[tr + c];
                }
            }
        }
    }

    /**
     * Rows [i0, i1) of L, padded with the identity beyond n, as a panel: element [k][r] = L[i0 + r][k] for
     * k in [0, i1).
     */
    private static double[] packRowsTransposed(double[] l, int n, int i0, int i1) {
        double[] rows = new double[i1 * W];
        for (int r = 0; r < W; r++) {
            int i = i0 + r;
            if (i >= n) {
                rows[i * W + r] = 1;
                continue;
            }
            for (int k = 0; k <= i; k++) rows[k * W + r] = l[i * n + k];
        }
        return rows;
    }

    /**
     * Block row b of X = L^-1, column panel p: X[i][j] = (delta_ij - sum_{k < i} L[i][k] X[k][j]) / L[i][i],
     * the sum over earlier blocks as one tile product, the rest of it row by row inside the block.
     */
    private static void invertTile(double[] x, int size, double[] rows, int b, int p) {
        int i0 = b * W, panel = p * size * W;
        double[] t = new double[W * W];
        DoubleTiles.product(rows, 0, x, panel, p * W, i0, t);
        for (int r = 0; r < W; r++) {
            int xo = panel + (i0 + r) * W;
            for (int c = 0; c < W; c++) x[xo + c] = (p == b && c == r ? 1.0 : 0.0) - t[r * W + c];
            DoubleVector v0 = DoubleVector.fromArray(S, x, xo);
            DoubleVector v1 = DoubleVector.fromArray(S, x, xo + L);
            DoubleVector v2 = DoubleVector.fromArray(S, x, xo + 2 * L);
            for (int k = 0; k < r; k++) {
                DoubleVector m = DoubleVector.broadcast(S, -rows[(i0 + k) * W + r]);
                int ko = panel + (i0 + k) * W;
                v0 = m.fma(DoubleVector.fromArray(S, x, ko), v0);
                v1 = m.fma(DoubleVector.fromArray(S, x, ko + L), v1);
                v2 = m.fma(DoubleVector.fromArray(S, x, ko + 2 * L), v2);
            }
            double d = rows[(i0 + r) * W + r];
            v0.div(d).intoArray(x, xo);
            v1.div(d).intoArray(x, xo + L);
            v2.div(d).intoArray(x, xo + 2 * L);
        }
    }

    /** Tile (ip, jp), ip <= jp, of X^T X, written to both triangles of inv. */
    private static void gramTile(double[] x, int size, int ip, int jp, double[] inv, int n) {
        double[] t = new double[W * W];
        // X is lower triangular: rows above jp*W are zero in panel jp
        DoubleTiles.product(x, ip * size * W, x, jp * size * W, jp * W, size, t);
        int i0 = ip * W, j0 = jp * W;
        for (int r = 0; r < W && i0 + r < n; r++) {
            int i = i0 + r;
            for (int c = ip == jp ? r : 0; c < W && j0 + c < n; c++) {
                int j = j0 + c;
                inv[i * n + j] = t[r * W + c];
                inv[j * n + i] = t[r * W + c];
            }
        }
    }

    private static void checkSquare(double[] a, int n, String name) {
        if (n < 0 || (long) n * n != a.length)
            throw new IllegalArgumentException(name + " has " + a.length + " elements, expected " + n + "x" + n);
    }
}
