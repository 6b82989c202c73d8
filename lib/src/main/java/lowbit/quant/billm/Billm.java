package lowbit.quant.billm;

import lowbit.calibration.Hessian;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.tensor.Parallel;

/**
 * BiLLM for one linear layer (METHODS.md section 2), as Aaronhuang-778/BiLLM's bigptq.py BRAGPTQ.fasterquant runs it
 * with the paper's settings ({@code braq}, block size 128, salient metric "hessian"): dead columns as in GPTQ, H
 * damped by percdamp * mean(diag H), U = the upper Cholesky factor of H^-1; then per block of columns, on the block
 * as the earlier blocks' error feedback left it:
 * <ol>
 *   <li>salience S = w^2 / U_jj^2; the salient columns are the top i of the 50 columns with the largest salience
 *       sums, i in 1..49 chosen by the least two-order binarization error of S; the break point is the quantile of the
 *       non-salient |S| (at 10%, 11%, ..., 90%) with the least error of S binarized as concentrated, sparse and
 *       salient ({@link Binarization});</li>
 *   <li>the block's weights binarized at once: salient columns with two orders of residual binarization, the
 *       concentrated (S below the break point) and sparse weights of each row with one order each, every order with
 *       its own per-row mean and scale;</li>
 *   <li>no update inside the block (the reference drops GPTQ's per-column feedback); Err = (W - Q) / diag(U) and
 *       the columns after the block get W -= Err U[block, after].</li>
 * </ol>
 *
 * <p>Different from the reference: all arithmetic is double (the reference runs float32 on a GPU); the means and
 * scales are rounded to the scale format (fp16 by default) and the weights the model runs, and the error fed
 * forward, are those the stored form gives back, while signs and the second order's residual use the unrounded
 * values as the reference does; a sign of an exact tie is stored as +1 (see {@link Binarization#binarize}); when
 * Cholesky fails the damping doubles, as our GPTQ does. Rows are independent given the block's masks, so they run
 * in parallel with a result that does not depend on the thread count.
 */
public final class Billm {
    /**
     * @param percdamp     damping as a fraction of mean(diag H) (0.01 in the reference)
     * @param blockSize    columns per block (128 in the paper; the spec's g)
     * @param scaleFormat  precision the means and scales are stored in
     */
    public record Options(double percdamp, int blockSize, QuantConfig.ScaleFormat scaleFormat) {
        public Options {
            if (!(percdamp >= 0) || percdamp > 1) throw new IllegalArgumentException("percdamp must be in [0, 1], got " + percdamp);
            if (blockSize < 1) throw new IllegalArgumentException("BiLLM block size must be >= 1, got " + blockSize);
            if (scaleFormat == null) throw new IllegalArgumentException("a scale format is required");
        }

        public static Options defaults() {
            return new Options(0.01, 128, QuantConfig.ScaleFormat.F16);
        }
    }

    /**
     * @param loss           the reference's sum of (w - q)^2 / U_jj^2 / 2
     * @param salientCounts  the searched salient-column count of each block
     * @param breakPoints    the searched salience threshold of each block
     * @param breakIndices   its index in the 81-point quantile grid (0: the 10% quantile)
     */
    public record Result(BillmWeight weight, double loss, double percdamp, int dampAttempts, int deadColumns,
                         int[] salientCounts, double[] breakPoints, int[] breakIndices, double choleskySeconds, double loopSeconds) {}

    private final Hessian hessian;

    /** BiLLM on a Hessian accumulated elsewhere (shared by the linears that read one input; left as it is). */
    public Billm(Hessian hessian) {
        this.hessian = hessian;
    }

    /**
     * Refuses a block size that does not fit a linear of {@code width} input columns, naming {@code linear}: wider
     * than the input, or leaving a block (the last one included) with fewer than the 50 columns the reference's
     * salient search ranks (torch.topk(column sums, 50) fails on a narrower block). A shorter last block of at least
     * 50 columns is what the reference's loop does, and is fine.
     */
    public static void checkFits(String linear, int width, int blockSize) {
        if (blockSize > width)
            throw new IllegalArgumentException(linear + ": BiLLM block size " + blockSize + " is wider than its input (" + width
                    + " columns); use g <= " + width);
        int last = width % blockSize == 0 ? blockSize : width % blockSize;
        boolean narrow = blockSize < Binarization.SEARCH_COLUMNS;
        if (narrow || last < Binarization.SEARCH_COLUMNS)
            throw new IllegalArgumentException(linear + ": BiLLM block size " + blockSize + " leaves " + (narrow ? "blocks of " + blockSize
                    : "a last block of " + last) + " of its " + width + " input columns; every block needs >= "
                    + Binarization.SEARCH_COLUMNS + " columns (the reference's salient search ranks the top " + Binarization.SEARCH_COLUMNS
                    + " columns of each block)");
    }

    /** Binarizes W [rows][columns] (not modified). */
    public Result quantize(String name, float[] weight, int rows, Options opt, Parallel par) {
        int n = hessian.columns();
        if (weight.length != (long) rows * n)
            throw new IllegalArgumentException(name + ": weight has " + weight.length + " elements, expected " + rows + "x" + n);
        if (hessian.samples() == 0) throw new IllegalStateException(name + ": BiLLM needs calibration data, no batch was added");
        checkFits(name, n, opt.blockSize());
        double[] w = new double[rows * n];
        for (int i = 0; i < w.length; i++) {
            if (!Float.isFinite(weight[i]))
                throw new IllegalArgumentException(name + ": weight [" + i / n + "][" + i % n + "] is " + weight[i] + "; cannot binarize NaN or Inf");
            w[i] = weight[i];
        }
        double[] hw = hessian.values().clone();
        for (double v : hw) if (!Double.isFinite(v)) throw new IllegalArgumentException(name + ": the Hessian contains " + v + " (non-finite calibration activations?)");
        int dead = 0;
        for (int i = 0; i < n; i++)
            if (hw[i * n + i] == 0) {
                dead++;
                hw[i * n + i] = 1;
                for (int r = 0; r < rows; r++) w[r * n + i] = 0;
            }

        long t0 = System.nanoTime();
        Hessian.InverseFactor factor = Hessian.inverseFactor(name, hw, n, opt.percdamp(), par);
        double[] u = factor.u();
        double cholSeconds = (System.nanoTime() - t0) / 1e9;

        long t1 = System.nanoTime();
        int bs = opt.blockSize(), blocks = BillmWeight.blocks(n, bs);
        QuantConfig.ScaleFormat fmt = opt.scaleFormat();
        byte[] salientCols = new byte[n], sign1 = new byte[rows * n], sign2 = new byte[rows * n], group = new byte[rows * n];
        float[] params = new float[rows * blocks * BillmWeight.PARAMS];
        int[] counts = new int[blocks], indices = new int[blocks];
        double[] breaks = new double[blocks], rowLoss = new double[rows];
        for (int b = 0; b < blocks; b++) {
            final int st = b * bs, ed = Math.min(n, st + bs), nb = ed - st, block = b;
            double[] s = new double[rows * nb];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < nb; j++) {
                    double x = w[r * n + st + j], d = u[(st + j) * n + st + j];
                    s[r * nb + j] = (x * x) / (d * d);
                }
            Binarization.Split split = Binarization.search(s, rows, nb, par);
            counts[b] = split.salient().length;
            breaks[b] = split.breakPoint();
            indices[b] = split.breakIndex();
            boolean[] salient = new boolean[nb];
            for (int j : split.salient()) {
                salient[j] = true;
                salientCols[st + j] = 1;
            }
            Binarization.forRows(rows, par, (r0, r1) -> {
                double[][] vals = {new double[nb], new double[nb], new double[nb]};   // concentrated, sparse, salient
                int[][] cols = {new int[nb], new int[nb], new int[nb]};
                boolean[][] signs = {new boolean[nb], new boolean[nb]};
                double[] p = new double[BillmWeight.PARAMS], approx = new double[nb], err = new double[nb];
                float[] q = new float[BillmWeight.PARAMS];
                for (int r = r0; r < r1; r++) {
                    int[] len = new int[3];
                    for (int j = 0; j < nb; j++) {
                        int g = salient[j] ? 2 : Math.abs(s[r * nb + j]) >= split.breakPoint() ? 1 : 0;
                        vals[g][len[g]] = w[r * n + st + j];
                        cols[g][len[g]++] = j;
                        group[r * n + st + j] = (byte) g;
                    }
                    // params: m1, a1, m2, a2 (salient), mc, ac, ms, as
                    Binarization.binarize(vals[2], len[2], 2, p, 0, signs, approx);
                    for (int i = 0; i < len[2]; i++) {
                        sign1[r * n + st + cols[2][i]] = (byte) (signs[0][i] ? 1 : 0);
                        sign2[r * n + st + cols[2][i]] = (byte) (signs[1][i] ? 1 : 0);
                    }
                    for (int g = 0; g < 2; g++) {
                        Binarization.binarize(vals[g], len[g], 1, p, 4 + 2 * g, signs, approx);
                        for (int i = 0; i < len[g]; i++) sign1[r * n + st + cols[g][i]] = (byte) (signs[0][i] ? 1 : 0);
                    }
                    int off = (r * blocks + block) * BillmWeight.PARAMS;
                    for (int k = 0; k < BillmWeight.PARAMS; k++) {
                        q[k] = (float) fmt.round(p[k]);
                        params[off + k] = q[k];
                    }
                    double loss = 0;
                    for (int j = 0; j < nb; j++) {
                        int c = st + j;
                        boolean plus = sign1[r * n + c] != 0;
                        int g = group[r * n + c];
                        float value = g == 2 ? BillmWeight.salientValue(q[0], q[1], plus, q[2], q[3], sign2[r * n + c] != 0)
                                : BillmWeight.groupValue(q[4 + 2 * g], q[5 + 2 * g], plus);
                        double d = u[c * n + c], x = w[r * n + c];
                        err[j] = (x - value) / d;
                        loss += (x - value) * (x - value) / (d * d);
                        w[r * n + c] = value;
                    }
                    rowLoss[r] += loss / 2;
                    if (ed < n)
                        for (int j = 0; j < nb; j++) axpy(-err[j], u, (st + j) * n + ed, w, r * n + ed, n - ed);
                }
            });
        }
        double loss = 0;
        for (double l : rowLoss) loss += l;
        byte[] residual = new byte[rows * countSalient(salientCols)], sparse = new byte[rows * (n - countSalient(salientCols))];
        int i2 = 0, ig = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < n; c++) {
                if (salientCols[c] != 0) residual[i2++] = sign2[r * n + c];
                else sparse[ig++] = group[r * n + c];
            }
        BillmWeight out = new BillmWeight(rows, n, bs, fmt, BitPacking.pack(salientCols, 1), BitPacking.pack(sign1, 1),
                BitPacking.pack(residual, 1), BitPacking.pack(sparse, 1), params);
        return new Result(out, loss, factor.percdamp(), factor.attempts(), dead, counts, breaks, indices, cholSeconds,
                (System.nanoTime() - t1) / 1e9);
    }

    private static int countSalient(byte[] cols) {
        int k = 0;
        for (byte b : cols) k += b;
        return k;
    }

    /** y[yo..yo+len) += a * x[xo..xo+len). */
    private static void axpy(double a, double[] x, int xo, double[] y, int yo, int len) {
        for (int i = 0; i < len; i++) y[yo + i] = Math.fma(a, x[xo + i], y[yo + i]);
    }
}
