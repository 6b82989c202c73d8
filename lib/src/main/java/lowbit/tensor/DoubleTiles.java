package lowbit.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one double-precision kernel behind {@link Cholesky}: a W x W tile of a product of two panels. A panel
 * holds W columns of a matrix k-major (element [k][c] at k*W + c), so one side is broadcast and the other
 * streamed as vectors, with no horizontal reductions. Every tile element is a plain fma chain over k in
 * ascending order starting from zero (or from the tile's previous value), whichever row kernel computes it:
 * results do not depend on how the work is split.
 */
final class DoubleTiles {
    private DoubleTiles() {}

    static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
    static final int L = S.length();
    /** Panel width: three vectors, the width of the register tile. */
    static final int W = 3 * L;
    /** k-steps per pass over a tile, so the two panel slices stay in L1 between the row kernels. */
    private static final int KC = 128;

    /**
     * t[r*W + c] = sum over k in [k0, k1) of a[ao + k*W + r] * b[bo + k*W + c], for r, c in [0, W): a tile
     * of A^T B where A and B are panels.
     */
    static void product(double[] a, int ao, double[] b, int bo, int k0, int k1, double[] t) {
        if (k0 >= k1) {
            java.util.Arrays.fill(t, 0, W * W, 0.0);
            return;
        }
        for (int kc = k0; kc < k1; kc += KC) {
            int ke = Math.min(k1, kc + KC);
            boolean more = kc > k0;
            int r = 0;
            for (; r + 8 <= W; r += 8) kernel8(a, ao + r, b, bo, kc, ke, t, r * W, more);
            for (; r < W; r++) kernel1(a, ao + r, b, bo, kc, ke, t, r * W, more);
        }
    }

    private static void kernel8(double[] a, int ao, double[] b, int bo, int k0, int k1, double[] t, int to,
                                boolean more) {
        DoubleVector c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
        DoubleVector c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
        if (more) {
            int o = to;
            c00 = DoubleVector.fromArray(S, t, o); c01 = DoubleVector.fromArray(S, t, o + L); c02 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c10 = DoubleVector.fromArray(S, t, o); c11 = DoubleVector.fromArray(S, t, o + L); c12 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c20 = DoubleVector.fromArray(S, t, o); c21 = DoubleVector.fromArray(S, t, o + L); c22 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c30 = DoubleVector.fromArray(S, t, o); c31 = DoubleVector.fromArray(S, t, o + L); c32 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c40 = DoubleVector.fromArray(S, t, o); c41 = DoubleVector.fromArray(S, t, o + L); c42 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c50 = DoubleVector.fromArray(S, t, o); c51 = DoubleVector.fromArray(S, t, o + L); c52 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c60 = DoubleVector.fromArray(S, t, o); c61 = DoubleVector.fromArray(S, t, o + L); c62 = DoubleVector.fromArray(S, t, o + 2 * L);
            o += W;
            c70 = DoubleVector.fromArray(S, t, o); c71 = DoubleVector.fromArray(S, t, o + L); c72 = DoubleVector.fromArray(S, t, o + 2 * L);
        } else {
            c00 = DoubleVector.zero(S); c01 = c00; c02 = c00; c10 = c00; c11 = c00; c12 = c00;
            c20 = c00; c21 = c00; c22 = c00; c30 = c00; c31 = c00; c32 = c00;
            c40 = c00; c41 = c00; c42 = c00; c50 = c00; c51 = c00; c52 = c00;
            c60 = c00; c61 = c00; c62 = c00; c70 = c00; c71 = c00; c72 = c00;
        }
        int ai = ao + k0 * W, bi = bo + k0 * W;
        for (int k = k0; k < k1; k++, ai += W, bi += W) {
            DoubleVector b0 = DoubleVector.fromArray(S, b, bi);
            DoubleVector b1 = DoubleVector.fromArray(S, b, bi + L);
            DoubleVector b2 = DoubleVector.fromArray(S, b, bi + 2 * L);
            DoubleVector x = DoubleVector.broadcast(S, a[ai]);
            c00 = x.fma(b0, c00); c01 = x.fma(b1, c01); c02 = x.fma(b2, c02);
            x = DoubleVector.broadcast(S, a[ai + 1]);
            c10 = x.fma(b0, c10); c11 = x.fma(b1, c11); c12 = x.fma(b2, c12);
            x = DoubleVector.broadcast(S, a[ai + 2]);
            c20 = x.fma(b0, c20); c21 = x.fma(b1, c21); c22 = x.fma(b2, c22);
            x = DoubleVector.broadcast(S, a[ai + 3]);
            c30 = x.fma(b0, c30); c31 = x.fma(b1, c31); c32 = x.fma(b2, c32);
            x = DoubleVector.broadcast(S, a[ai + 4]);
            c40 = x.fma(b0, c40); c41 = x.fma(b1, c41); c42 = x.fma(b2, c42);
            x = DoubleVector.broadcast(S, a[ai + 5]);
            c50 = x.fma(b0, c50); c51 = x.fma(b1, c51); c52 = x.fma(b2, c52);
            x = DoubleVector.broadcast(S, a[ai + 6]);
            c60 = x.fma(b0, c60); c61 = x.fma(b1, c61); c62 = x.fma(b2, c62);
            x = DoubleVector.broadcast(S, a[ai + 7]);
            c70 = x.fma(b0, c70); c71 = x.fma(b1, c71); c72 = x.fma(b2, c72);
        }
        // Stores stay in this method: a vector handed to another method is boxed unless that call is inlined.
        int o = to;
        c00.intoArray(t, o); c01.intoArray(t, o + L); c02.intoArray(t, o + 2 * L);
        o += W;
        c10.intoArray(t, o); c11.intoArray(t, o + L); c12.intoArray(t, o + 2 * L);
        o += W;
        c20.intoArray(t, o); c21.intoArray(t, o + L); c22.intoArray(t, o + 2 * L);
        o += W;
        c30.intoArray(t, o); c31.intoArray(t, o + L); c32.intoArray(t, o + 2 * L);
        o += W;
        c40.intoArray(t, o); c41.intoArray(t, o + L); c42.intoArray(t, o + 2 * L);
        o += W;
        c50.intoArray(t, o); c51.intoArray(t, o + L); c52.intoArray(t, o + 2 * L);
        o += W;
        c60.intoArray(t, o); c61.intoArray(t, o + L); c62.intoArray(t, o + 2 * L);
        o += W;
        c70.intoArray(t, o); c71.intoArray(t, o + L); c72.intoArray(t, o + 2 * L);
    }

    private static void kernel1(double[] a, int ao, double[] b, int bo, int k0, int k1, double[] t, int to,
                                boolean more) {
        DoubleVector c0, c1, c2;
        if (more) {
            c0 = DoubleVector.fromArray(S, t, to);
            c1 = DoubleVector.fromArray(S, t, to + L);
            c2 = DoubleVector.fromArray(S, t, to + 2 * L);
        } else {
            c0 = DoubleVector.zero(S); c1 = c0; c2 = c0;
        }
        int ai = ao + k0 * W, bi = bo + k0 * W;
        for (int k = k0; k < k1; k++, ai += W, bi += W) {
            DoubleVector x = DoubleVector.broadcast(S, a[ai]);
            c0 = x.fma(DoubleVector.fromArray(S, b, bi), c0);
            c1 = x.fma(DoubleVector.fromArray(S, b, bi + L), c1);
            c2 = x.fma(DoubleVector.fromArray(S, b, bi + 2 * L), c2);
        }
        c0.intoArray(t, to); c1.intoArray(t, to + L); c2.intoArray(t, to + 2 * L);
    }
}
