package lowbit.tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The orthonormal Hadamard transform of order n, x -> x M with M = H / sqrt(n), on row vectors, in place. QuaRot
 * rotates with these because a Hadamard spreads an outlier channel evenly over all channels and costs
 * O(n log n) for the power-of-two part.
 *
 * <p>Order n = m * 2^k is built as H = K_m (x) S_(2^k), K first (index i = a * 2^k + b for a in [0, m), b in
 * [0, 2^k)), with the smallest m that has a construction, m up to {@link #MAX_BASE}:
 * <ul>
 *   <li>m = 1: Sylvester's H_1 = [1], H_2n = [[H, H], [H, -H]], so S[b][b'] = (-1)^popcount(b &amp; b'); its
 *       fast Walsh-Hadamard transform is a butterfly;</li>
 *   <li>Paley I: m = q + 1 for a prime q = 3 mod 4 (12, 20, 24, 32, 44, 48, 60, 68, 72, 80, 84, 104, 108, 128,
 *       132, 140, ...), K = I + [[0, 1], [-1, Q]] with Q the Jacobsthal matrix Q[i][j] = chi(j - i) of the
 *       quadratic residues mod q;</li>
 *   <li>Paley II: m = 2 (q + 1) for a prime q = 1 mod 4 (12, 28, 36, 60, 76, 84, 108, 124, 148, 180, 196, ...),
 *       from the symmetric conference matrix C = [[0, 1], [1, Q]]: each 0 of C becomes [[1, -1], [-1, -1]] and
 *       each +-1 becomes +-[[1, 1], [1, -1]]. Paley I is preferred where both apply (12, 60, 84, 108, ...).</li>
 * </ul>
 * The m that are not a smaller one times a power of two: 1, 12, 20, 28, 36, 44, 60, 68, 76, 84, 104, 108, 124,
 * 132, 140, 148, 164, 180, 196, 200, 204, 212, 220, 228, 252. So every power of two, and for example 12, 20, 28, 36, 40 (20 x 2), 48 (12 x 4), 60, 108, 140, 576 (36 x 16),
 * 896 (28 x 32), 1536 (12 x 128) and 3072 (12 x 256). Orders whose Hadamard matrices need GF(p^2) or Williamson
 * constructions (52, 92, 116, 156, 172, ...) are refused by {@link #of}.
 *
 * <p>The float transform is the online rotation of the forward pass: the Sylvester part is a butterfly over
 * each block of 2^k, vectorized across j for strides of a vector or more and by lane shuffles below that; the
 * K part is a dense m x m product across the m blocks, vectorized over b. Both accumulate in float: K and S
 * hold +-1, so every step is one rounded add or subtract, the same in the vector and scalar paths.
 */
public final class Hadamard {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** SWAP[s] pairs lane j with lane j ^ 2^s; SIGN[s] is +1 on the lane of the pair holding a, -1 on b's. */
    private static final List<VectorShuffle<Float>> SWAP = new ArrayList<>();
    private static final float[][] SIGN = new float[Integer.numberOfTrailingZeros(L)][L];
    private static final ThreadLocal<float[]> TMP = ThreadLocal.withInitial(() -> new float[0]);

    static {
        for (int s = 0; (1 << s) < L; s++) {
            int h = 1 << s;
            SWAP.add(VectorShuffle.fromOp(S, j -> j ^ h));
            for (int j = 0; j < L; j++) SIGN[s][j] = (j & h) == 0 ? 1 : -1;
        }
    }

    /**
     * The largest Paley factor built: the K part costs m adds per value, and QuaRot's largest is 172. Up to 256
     * covers the intermediate sizes of Qwen2/2.5 (4864 = 76 x 64, 8960 = 140 x 64, 18944 = 148 x 128).
     */
    static final int MAX_BASE = 256;

    private final int n, m, p;
    /** K transposed, kt[a' * m + a] = K[a][a'], as +-1; null for m = 1. */
    private final float[] kt;

    private Hadamard(int n, int m, int[][] k) {
        this.n = n;
        this.m = m;
        this.p = n / m;
        if (k == null) {
            kt = null;
        } else {
            kt = new float[m * m];
            for (int a = 0; a < m; a++)
                for (int c = 0; c < m; c++) kt[c * m + a] = k[a][c];
        }
    }

    /**
     * The transform of order {@code n}; {@code what} names where it is needed (a layer and its size) in the error
     * for an order with no construction.
     */
    public static Hadamard of(int n, String what) {
        int m = base(n);
        if (m < 0)
            throw new IllegalArgumentException(what + ": no Hadamard matrix of order " + n + " (orders built here are m * 2^k with m = 1 or a Paley order up to "
                    + MAX_BASE + ", q + 1 for a prime q = 3 mod 4 or 2(q + 1) for a prime q = 1 mod 4: m in " + bases() + nearest(n) + ")");
        return new Hadamard(n, m, m == 1 ? null : paley(m));
    }

    /** Whether {@link #of} can build order n. */
    public static boolean exists(int n) {
        return base(n) > 0;
    }

    public int size() {
        return n;
    }

    /** The orthonormal matrix M, row-major [n][n], such that {@link #transformRows} computes x M. */
    public double[] matrix() {
        double scale = 1 / Math.sqrt(n);
        double[] out = new double[n * n];
        for (int a = 0, i = 0; a < m; a++)
            for (int b = 0; b < p; b++, i++)
                for (int c = 0, j = 0; c < m; c++) {
                    double k = m == 1 ? scale : kt[c * m + a] * scale;
                    for (int d = 0; d < p; d++, j++) out[i * n + j] = (Integer.bitCount(b & d) & 1) == 0 ? k : -k;
                }
        return out;
    }

    /** Each of the {@code rows} contiguous rows of n values in x becomes x_r M. */
    public void transformRows(double[] x, int rows) {
        check(x.length, rows);
        double scale = 1 / Math.sqrt(n);
        double[] tmp = new double[n];
        for (int r = 0; r < rows; r++) {
            int o = r * n;
            for (int a = 0; a < m; a++) {
                int base = o + a * p;
                for (int h = 1; h < p; h <<= 1)
                    for (int i = base; i < base + p; i += h << 1)
                        for (int j = i; j < i + h; j++) {
                            double u = x[j], v = x[j + h];
                            x[j] = u + v;
                            x[j + h] = u - v;
                        }
            }
            if (m == 1) {
                for (int j = o; j < o + n; j++) x[j] *= scale;
                continue;
            }
            for (int c = 0; c < m; c++)
                for (int b = 0; b < p; b++) {
                    double s = 0;
                    for (int a = 0; a < m; a++) s += kt[c * m + a] * x[o + a * p + b];
                    tmp[c * p + b] = s * scale;
                }
            System.arraycopy(tmp, 0, x, o, n);
        }
    }

    /** Each of the {@code rows} contiguous rows of n values in x becomes x_r M, rows in parallel. */
    public void transformRows(float[] x, int rows, Parallel par) {
        check(x.length, rows);
        float scale = (float) (1 / Math.sqrt(n));
        par.forEach(rows, r -> {
            int o = r * n;
            for (int a = 0; a < m; a++) butterfly(x, o + a * p);
            if (m == 1) scale(x, o, scale);
            else mix(x, o, scale);
        });
    }

    /** The fast Walsh-Hadamard transform of the p values at x[o..], unscaled. */
    private void butterfly(float[] x, int o) {
        int h = 1;
        if (p >= L) {
            // strides below a vector: every stage inside one register, lane j paired with j ^ h
            for (int i = o; i < o + p; i += L) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                for (int s = 0; s < SWAP.size(); s++) v = v.fma(FloatVector.fromArray(S, SIGN[s], 0), v.rearrange(SWAP.get(s)));
                v.intoArray(x, i);
            }
            for (h = L; h < p; h <<= 1)
                for (int i = o; i < o + p; i += h << 1)
                    for (int j = i; j < i + h; j += L) {
                        FloatVector u = FloatVector.fromArray(S, x, j), v = FloatVector.fromArray(S, x, j + h);
                        u.add(v).intoArray(x, j);
                        u.sub(v).intoArray(x, j + h);
                    }
            return;
        }
        for (; h < p; h <<= 1)
            for (int i = o; i < o + p; i += h << 1)
                for (int j = i; j < i + h; j++) {
                    float u = x[j], v = x[j + h];
                    x[j] = u + v;
                    x[j + h] = u - v;
                }
    }

    private void scale(float[] x, int o, float scale) {
        int j = o, end = o + n;
        for (; j + L <= end; j += L) FloatVector.fromArray(S, x, j).mul(scale).intoArray(x, j);
        for (; j < end; j++) x[j] *= scale;
    }

    /** y[c][b] = scale * sum_a K[a][c] x[a][b] over the m blocks of p, written back to x. */
    private void mix(float[] x, int o, float scale) {
        float[] tmp = TMP.get();
        if (tmp.length < n) TMP.set(tmp = new float[n]);
        int vectorEnd = p >= L ? p : 0;
        for (int c = 0; c < m; c++) {
            int krow = c * m;
            for (int b = 0; b < vectorEnd; b += L) {
                FloatVector acc = FloatVector.zero(S);
                for (int a = 0; a < m; a++)
                    acc = FloatVector.fromArray(S, x, o + a * p + b).fma(FloatVector.broadcast(S, kt[krow + a]), acc);
                acc.mul(scale).intoArray(tmp, c * p + b);
            }
            for (int b = vectorEnd; b < p; b++) {
                float s = 0;
                for (int a = 0; a < m; a++) s += kt[krow + a] * x[o + a * p + b];
                tmp[c * p + b] = s * scale;
            }
        }
        System.arraycopy(tmp, 0, x, o, n);
    }

    private void check(int length, int rows) {
        if (rows < 0 || (long) rows * n > length)
            throw new IllegalArgumentException(rows + " rows of " + n + " values need " + (long) rows * n + " elements, have " + length);
    }

    /** The smallest m with n = m * 2^k and a construction of order m (1 for a power of two), or -1. */
    private static int base(int n) {
        if (n < 1) return -1;
        int odd = n >> Integer.numberOfTrailingZeros(n);
        for (long m = odd; m <= Math.min(n, MAX_BASE); m <<= 1)
            if (m == 1 || isPaleyI((int) m) || isPaleyII((int) m)) return (int) m;
        return -1;
    }

    private static boolean isPaleyI(int m) {
        int q = m - 1;
        return q % 4 == 3 && prime(q);
    }

    private static boolean isPaleyII(int m) {
        if (m % 2 != 0) return false;
        int q = m / 2 - 1;
        return q % 4 == 1 && prime(q);
    }

    /** The +-1 Hadamard matrix of order m by Paley I, or else Paley II. */
    static int[][] paley(int m) {
        if (isPaleyI(m)) return paleyI(m - 1);
        if (isPaleyII(m)) return paleyII(m / 2 - 1);
        throw new IllegalArgumentException("no Paley construction of order " + m);
    }

    /** Paley I of order q + 1 for a prime q = 3 mod 4: I + [[0, 1^T], [-1, Q]], Q skew-symmetric. */
    static int[][] paleyI(int q) {
        int[] chi = legendre(q);
        int m = q + 1;
        int[][] h = new int[m][m];
        for (int j = 1; j < m; j++) {
            h[0][j] = 1;
            h[j][0] = -1;
        }
        for (int i = 0; i < q; i++)
            for (int j = 0; j < q; j++) h[i + 1][j + 1] = chi[(j - i + q) % q];
        for (int i = 0; i < m; i++) h[i][i] += 1;
        return h;
    }

    /** Paley II of order 2(q + 1) for a prime q = 1 mod 4, from the symmetric conference matrix [[0, 1^T], [1, Q]]. */
    static int[][] paleyII(int q) {
        int[] chi = legendre(q);
        int c = q + 1;
        int[][] conf = new int[c][c];
        for (int j = 1; j < c; j++) conf[0][j] = conf[j][0] = 1;
        for (int i = 0; i < q; i++)
            for (int j = 0; j < q; j++) conf[i + 1][j + 1] = chi[(j - i + q) % q];
        int[][] h = new int[2 * c][2 * c];
        for (int i = 0; i < c; i++)
            for (int j = 0; j < c; j++) {
                int e = conf[i][j];
                // 0 -> [[1, -1], [-1, -1]], e = +-1 -> e [[1, 1], [1, -1]]
                h[2 * i][2 * j] = e == 0 ? 1 : e;
                h[2 * i][2 * j + 1] = e == 0 ? -1 : e;
                h[2 * i + 1][2 * j] = e == 0 ? -1 : e;
                h[2 * i + 1][2 * j + 1] = e == 0 ? -1 : -e;
            }
        return h;
    }

    /** chi[x] for x in [0, q): 0 at 0, 1 on the quadratic residues, -1 on the rest. */
    private static int[] legendre(int q) {
        int[] chi = new int[q];
        Arrays.fill(chi, 1, q, -1);
        for (long x = 1; x < q; x++) chi[(int) (x * x % q)] = 1;
        return chi;
    }

    private static boolean prime(int q) {
        if (q < 2) return false;
        for (int d = 2; (long) d * d <= q; d++) if (q % d == 0) return false;
        return true;
    }

    /** The bases that are not a smaller base times a power of two, as "1, 12, 20, ...". */
    private static String bases() {
        StringBuilder s = new StringBuilder("1");
        for (int m = 3; m <= MAX_BASE; m++)
            if (Integer.bitCount(m) != 1 && base(m) == m)
                s.append(", ").append(m);
        return s.toString();
    }

    private static String nearest(int n) {
        if (n < 1) return "";
        int below = n - 1;
        while (below >= 1 && !exists(below)) below--;
        long above = n + 1L;
        while (above <= Integer.MAX_VALUE && !exists((int) above)) above++;
        return "; the nearest are " + (below >= 1 ? String.valueOf(below) : "")
                + (below >= 1 && above <= Integer.MAX_VALUE ? " and " : "") + (above <= Integer.MAX_VALUE ? String.valueOf(above) : "");
    }

    @Override
    public String toString() {
        return "Hadamard[" + n + (m == 1 ? "" : " = " + m + " x " + p) + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Hadamard h && h.n == n;
    }

    @Override
    public int hashCode() {
        return Integer.hashCode(n);
    }
}
