package lowbit.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Accumulates X^T X into a double matrix: GPTQ's Hessian of a linear layer's inputs. The products are taken
 * in float with fma, as the reference does its matmul in float32, and only the finished sum is widened.
 *
 * <p>X is copied into panels of {@link #W} columns stored k-major, so the kernel broadcasts one side and
 * streams the other as vectors. Each output tile is computed whole by one task, every element a plain fma
 * chain over the rows of X in order: bitwise the same on any thread count.
 */
public final class Gram {
    private Gram() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Panel width: three vectors, the width of the register tile. */
    static final int W = 3 * L;
    /** Rows of X per pass over a tile, so the two panel slices stay in L1 between the row kernels. */
    private static final int KC = 128;

    /**
     * h[i][j] += weight * sum_r x[r][i] * x[r][j] over the full symmetric n x n h (one triangle computed,
     * the other mirrored from it), x row-major [rows][n]. h is taken to be symmetric: its upper triangle is
     * read and both triangles are written.
     */
    public static void accumulate(double[] h, float[] x, int rows, int n, double weight, Parallel par) {
        if (n < 0 || rows < 0 || (long) n * n != h.length || (long) rows * n > x.length)
            throw new IllegalArgumentException("Gram of " + rows + "x" + n + " inputs into a matrix of "
                    + h.length + " with " + x.length + " input elements");
        if (rows == 0 || n == 0) return;
        int panels = (n + W - 1) / W;
        float[] p = new float[panels * rows * W];
        par.forEach(panels, q -> {
            int base = q * rows * W, c0 = q * W, cols = Math.min(W, n - c0);
            for (int r = 0; r < rows; r++) System.arraycopy(x, r * n + c0, p, base + r * W, cols);
        });
        int pairs = panels * (panels + 1) / 2;
        int[] ip = new int[pairs], jp = new int[pairs];
        for (int j = 0, t = 0; j < panels; j++)
            for (int i = 0; i <= j; i++, t++) {
                ip[t] = i;
                jp[t] = j;
            }
        par.forEach(pairs, t -> {
            float[] tile = new float[W * W];
            product(p, ip[t] * rows * W, p, jp[t] * rows * W, rows, tile);
            int i0 = ip[t] * W, j0 = jp[t] * W;
            boolean diagonal = ip[t] == jp[t];
            for (int r = 0; r < W && i0 + r < n; r++) {
                int i = i0 + r;
                for (int c = diagonal ? r : 0; c < W && j0 + c < n; c++) {
                    int j = j0 + c;
                    double v = h[i * n + j] + weight * tile[r * W + c];
                    h[i * n + j] = v;
                    h[j * n + i] = v;
                }
            }
        });
    }

    /** t[r*W + c] = sum over k in [0, depth) of a[ao + k*W + r] * b[bo + k*W + c]. */
    private static void product(float[] a, int ao, float[] b, int bo, int depth, float[] t) {
        for (int kc = 0; kc < depth; kc += KC) {
            int ke = Math.min(depth, kc + KC);
            boolean more = kc > 0;
            int r = 0;
            for (; r + 8 <= W; r += 8) kernel8(a, ao + r, b, bo, kc, ke, t, r * W, more);
            for (; r < W; r++) kernel1(a, ao + r, b, bo, kc, ke, t, r * W, more);
        }
    }

    private static void kernel8(float[] a, int ao, float[] b, int bo, int k0, int k1, float[] t, int to,
                                boolean more) {
        FloatVector c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;
        FloatVector c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;
        if (more) {
            int o = to;
            c00 = FloatVector.fromArray(S, t, o); c01 = FloatVector.fromArray(S, t, o + L); c02 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c10 = FloatVector.fromArray(S, t, o); c11 = FloatVector.fromArray(S, t, o + L); c12 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c20 = FloatVector.fromArray(S, t, o); c21 = FloatVector.fromArray(S, t, o + L); c22 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c30 = FloatVector.fromArray(S, t, o); c31 = FloatVector.fromArray(S, t, o + L); c32 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c40 = FloatVector.fromArray(S, t, o); c41 = FloatVector.fromArray(S, t, o + L); c42 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c50 = FloatVector.fromArray(S, t, o); c51 = FloatVector.fromArray(S, t, o + L); c52 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c60 = FloatVector.fromArray(S, t, o); c61 = FloatVector.fromArray(S, t, o + L); c62 = FloatVector.fromArray(S, t, o + 2 * L);
            o += W;
            c70 = FloatVector.fromArray(S, t, o); c71 = FloatVector.fromArray(S, t, o + L); c72 = FloatVector.fromArray(S, t, o + 2 * L);
        } else {
            c00 = FloatVector.zero(S); c01 = c00; c02 = c00; c10 = c00; c11 = c00; c12 = c00;
            c20 = c00; c21 = c00; c22 = c00; c30 = c00; c31 = c00; c32 = c00;
            c40 = c00; c41 = c00; c42 = c00; c50 = c00; c51 = c00; c52 = c00;
            c60 = c00; c61 = c00; c62 = c00; c70 = c00; c71 = c00; c72 = c00;
        }
        int ai = ao + k0 * W, bi = bo + k0 * W;
        for (int k = k0; k < k1; k++, ai += W, bi += W) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector b2 = FloatVector.fromArray(S, b, bi + 2 * L);
            FloatVector v = FloatVector.broadcast(S, a[ai]);
            c00 = v.fma(b0, c00); c01 = v.fma(b1, c01); c02 = v.fma(b2, c02);
            v = FloatVector.broadcast(S, a[ai + 1]);
            c10 = v.fma(b0, c10); c11 = v.fma(b1, c11); c12 = v.fma(b2, c12);
            v = FloatVector.broadcast(S, a[ai + 2]);
            c20 = v.fma(b0, c20); c21 = v.fma(b1, c21); c22 = v.fma(b2, c22);
            v = FloatVector.broadcast(S, a[ai + 3]);
            c30 = v.fma(b0, c30); c31 = v.fma(b1, c31); c32 = v.fma(b2, c32);
            v = FloatVector.broadcast(S, a[ai + 4]);
            c40 = v.fma(b0, c40); c41 = v.fma(b1, c41); c42 = v.fma(b2, c42);
            v = FloatVector.broadcast(S, a[ai + 5]);
            c50 = v.fma(b0, c50); c51 = v.fma(b1, c51); c52 = v.fma(b2, c52);
            v = FloatVector.broadcast(S, a[ai + 6]);
            c60 = v.fma(b0, c60); c61 = v.fma(b1, c61); c62 = v.fma(b2, c62);
            v = FloatVector.broadcast(S, a[ai + 7]);
            c70 = v.fma(b0, c70); c71 = v.fma(b1, c71); c72 = v.fma(b2, c72);
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

    private static void kernel1(float[] a, int ao, float[] b, int bo, int k0, int k1, float[] t, int to,
                                boolean more) {
        FloatVector c0, c1, c2;
        if (more) {
            c0 = FloatVector.fromArray(S, t, to);
            c1 = FloatVector.fromArray(S, t, to + L);
            c2 = FloatVector.fromArray(S, t, to + 2 * L);
        } else {
            c0 = FloatVector.zero(S); c1 = c0; c2 = c0;
        }
        int ai = ao + k0 * W, bi = bo + k0 * W;
        for (int k = k0; k < k1; k++, ai += W, bi += W) {
            FloatVector v = FloatVector.broadcast(S, a[ai]);
            c0 = v.fma(FloatVector.fromArray(S, b, bi), c0);
            c1 = v.fma(FloatVector.fromArray(S, b, bi + L), c1);
            c2 = v.fma(FloatVector.fromArray(S, b, bi + 2 * L), c2);
        }
        c0.intoArray(t, to); c1.intoArray(t, to + L); c2.intoArray(t, to + 2 * L);
    }
}
