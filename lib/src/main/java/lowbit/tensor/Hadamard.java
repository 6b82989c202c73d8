package lowbit.tensor;

import java.util.Arrays;

/**
 * The orthonormal Hadamard transform of order n, x -> x H / sqrt(n) on row vectors, in place. QuaRot rotates
 * with these because a Hadamard spreads an outlier channel evenly over all channels and costs O(n log n).
 *
 * <p>Orders that are powers of two use Sylvester's construction (H_1 = [1], H_2n = [[H, H], [H, -H]]), whose
 * fast Walsh-Hadamard transform is the butterfly below.
 */
public final class Hadamard {
    private final int n;

    private Hadamard(int n) {
        this.n = n;
    }

    /**
     * The transform of order {@code n}; {@code what} names where it is needed (a layer and its size) in the error
     * for an order with no construction.
     */
    public static Hadamard of(int n, String what) {
        if (!exists(n))
            throw new IllegalArgumentException(what + ": no Hadamard matrix of order " + n + " is known here (orders that are a power of two)");
        return new Hadamard(n);
    }

    /** Whether {@link #of} can build order n. */
    public static boolean exists(int n) {
        return n >= 1 && Integer.bitCount(n) == 1;
    }

    public int size() {
        return n;
    }

    /** The orthonormal matrix M, row-major [n][n], such that {@link #transformRows} computes x M. */
    public double[] matrix() {
        double[] m = new double[n * n];
        for (int i = 0; i < n; i++) {
            m[i * n + i] = 1;
            transform(m, i * n);
        }
        return m;
    }

    /** Each of the {@code rows} contiguous rows of n values in x becomes x_r M. */
    public void transformRows(double[] x, int rows) {
        check(x.length, rows);
        for (int r = 0; r < rows; r++) transform(x, r * n);
    }

    /** Each of the {@code rows} contiguous rows of n values in x becomes x_r M, rows in parallel. */
    public void transformRows(float[] x, int rows, Parallel par) {
        check(x.length, rows);
        double scale = 1 / Math.sqrt(n);
        par.forEach(rows, r -> {
            int o = r * n;
            for (int h = 1; h < n; h <<= 1)
                for (int i = 0; i < n; i += h << 1)
                    for (int j = i; j < i + h; j++) {
                        float a = x[o + j], b = x[o + j + h];
                        x[o + j] = a + b;
                        x[o + j + h] = a - b;
                    }
            for (int j = 0; j < n; j++) x[o + j] = (float) (x[o + j] * scale);
        });
    }

    private void transform(double[] x, int o) {
        for (int h = 1; h < n; h <<= 1)
            for (int i = 0; i < n; i += h << 1)
                for (int j = i; j < i + h; j++) {
                    double a = x[o + j], b = x[o + j + h];
                    x[o + j] = a + b;
                    x[o + j + h] = a - b;
                }
        double scale = 1 / Math.sqrt(n);
        for (int j = 0; j < n; j++) x[o + j] *= scale;
    }

    private void check(int length, int rows) {
        if (rows < 0 || (long) rows * n > length)
            throw new IllegalArgumentException(rows + " rows of " + n + " values need " + (long) rows * n + " elements, have " + length);
    }

    @Override
    public String toString() {
        return "Hadamard[" + n + "]";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Hadamard h && h.n == n;
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(new int[]{n});
    }
}
