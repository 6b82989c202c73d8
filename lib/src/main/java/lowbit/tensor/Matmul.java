package lowbit.tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * The weight-gradient product of a linear layer's backward pass, dW[out][in] += dY^T X over T rows (dY [T][out],
 * X [T][in]). It runs on {@link PackedMatrix}'s kernel with X^T packed (a copy of column strips of X) and dY transposed,
 * so it is as fast as the forward product. The input-gradient product dX = dY W is {@link PackedMatrix#multiply} with
 * W^T packed. Each element of dW is summed over t in order by one task, so the result does not depend on the thread
 * count.
 */
public final class Matmul {
    /** The calling thread's operands, reused: a training step makes hundreds of these products. */
    private static final ThreadLocal<Buffers> BUFFERS = ThreadLocal.withInitial(Buffers::new);

    private static final class Buffers {
        float[] dyt = new float[0], product = new float[0];
        final Map<Long, PackedMatrix> xt = new HashMap<>();   // by shape: the products of a step alternate among a few
    }

    /** Rows of dW per pass: the pass's product (CHUNK x in floats) stays in cache until it is added. */
    private static final int CHUNK = 768;

    private Matmul() {}

    /** dW[out][in] += dY^T X, dY [T][out], X [T][in] row-major. */
    public static void addTransposedProduct(float[] dy, float[] x, int T, int out, int in, float[] dw, Parallel par) {
        if ((long) T * out > dy.length || (long) T * in > x.length || (long) out * in > dw.length)
            throw new IllegalArgumentException("dW += dY^T X of " + T + " rows, " + out + " outputs and " + in
                    + " inputs with buffers of " + dy.length + ", " + x.length + " and " + dw.length);
        if (T == 0) return;
        Buffers b = BUFFERS.get();
        int chunk = Math.min(out, CHUNK);
        if (b.dyt.length < chunk * T) b.dyt = new float[chunk * T];
        if (b.product.length < chunk * in) b.product = new float[chunk * in];
        float[] dyt = b.dyt, product = b.product;
        long shape = (long) in << 32 | T;
        PackedMatrix xt = PackedMatrix.packTransposed(x, T, in, b.xt.get(shape), par);
        b.xt.put(shape, xt);
        // CHUNK rows of dW at a time, so the product is added while it is in cache (lm_head's dW is 100 MB)
        for (int o0 = 0; o0 < out; o0 += CHUNK) {
            int first = o0, rows = Math.min(CHUNK, out - o0);
            // dY^T rows [rows][T], in blocks of 64 outputs so each line read from dY serves a block
            par.forEach((rows + 63) / 64, blk -> {
                int r0 = blk * 64, r1 = Math.min(rows, r0 + 64);
                for (int t = 0; t < T; t++) {
                    int src = t * out + first;
                    for (int r = r0; r < r1; r++) dyt[r * T + t] = dy[src + r];
                }
            });
            xt.multiply(dyt, rows, product, null, par);
            int n = rows * in, base = first * in;
            par.forEach((n + 16383) / 16384, c -> {
                for (int i = c * 16384, e = Math.min(n, i + 16384); i < e; i++) dw[base + i] += product[i];
            });
        }
    }
}
