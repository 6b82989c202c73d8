package lowbit.quant.billm;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import lowbit.tensor.Parallel;

/**
 * BiLLM's residual binarization and the two searches that split a block of columns, as the reference computes them
 * (binary.py high_order_residual, utils/autosearch.py structural_searching, utils/mask.py
 * generate_structural_mask). The searches run on the block's salience S = W^2 / diag(U)^2, not on W: that is what
 * bigptq.py passes them (structural_guassian_distribution with metric "hessian"), so the break point splits the
 * non-salient weights by salience, not by |w| as the paper's text says.
 *
 * <p>Every error the searches compare is a sum over rows of per-row sums, so rows run in parallel and the result
 * does not depend on the thread count.
 */
final class Binarization {
    private Binarization() {}

    /** Candidate salient columns: bigptq.py calls structural_guassian_distribution with up_lim 50 (torch.topk(sums, 50)). */
    static final int SEARCH_COLUMNS = 50;
    /** Break-point candidates: quantiles at torch.linspace(0.10, 0.90, 81). */
    static final int BREAK_POINTS = 81;
    private static final int ROW_TILE = 16;

    /**
     * The split of one block.
     *
     * @param salient     salient columns of the block (block-relative, ascending)
     * @param breakPoint  the searched salience threshold: non-salient entries with S >= it are the sparse group
     * @param breakIndex  its index in the 81-point quantile grid
     */
    record Split(int[] salient, double breakPoint, int breakIndex) {}

    /** Both searches on the salience s [rows][n] of one block. */
    static Split search(double[] s, int rows, int n, Parallel par) {
        if (n < SEARCH_COLUMNS)
            throw new IllegalArgumentException("a BiLLM block needs at least " + SEARCH_COLUMNS + " columns, got " + n);
        double[] colSum = new double[n];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) colSum[j] += Math.abs(s[r * n + j]);
        int[] top = IntStream.range(0, n).boxed().sorted(Comparator.comparingDouble((Integer j) -> colSum[j]).reversed())
                .limit(SEARCH_COLUMNS).mapToInt(Integer::intValue).toArray();

        // salient count: i = 1..49 top columns, each side binarized with two orders
        int candidates = SEARCH_COLUMNS - 1;
        double[] rowErr = new double[rows * candidates];
        forRows(rows, par, (r0, r1) -> {
            double[] in = new double[n], out = new double[n], scratch = new double[n];
            boolean[] salient = new boolean[n];
            for (int r = r0; r < r1; r++) {
                Arrays.fill(salient, false);
                for (int i = 1; i <= candidates; i++) {
                    salient[top[i - 1]] = true;
                    int a = 0, b = 0;
                    for (int j = 0; j < n; j++) {
                        if (salient[j]) in[a++] = s[r * n + j];
                        else out[b++] = s[r * n + j];
                    }
                    rowErr[r * candidates + i - 1] = residualError(in, a, 2, scratch) + residualError(out, b, 2, scratch);
                }
            }
        });
        int count = argmin(rowErr, rows, candidates) + 1;
        boolean[] salient = new boolean[n];
        for (int i = 0; i < count; i++) salient[top[i]] = true;

        // break point: quantiles of |S| with the salient entries as zeros (the reference keeps them in the sample)
        double[] sorted = new double[rows * n];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) sorted[r * n + j] = salient[j] ? 0.0 : Math.abs(s[r * n + j]);
        Arrays.sort(sorted);
        double[] splits = quantiles(sorted);
        double[] splitErr = new double[rows * BREAK_POINTS];
        forRows(rows, par, (r0, r1) -> {
            double[] sal = new double[n], lo = new double[n], hi = new double[n], scratch = new double[n];
            for (int r = r0; r < r1; r++) {
                int a = 0;
                for (int j = 0; j < n; j++) if (salient[j]) sal[a++] = s[r * n + j];
                double salientErr = residualError(sal, a, 2, scratch);
                for (int k = 0; k < BREAK_POINTS; k++) {
                    int c = 0, d = 0;
                    for (int j = 0; j < n; j++) {
                        if (salient[j]) continue;
                        double v = s[r * n + j];
                        if (Math.abs(v) >= splits[k]) hi[d++] = v;
                        else lo[c++] = v;
                    }
                    splitErr[r * BREAK_POINTS + k] = residualError(lo, c, 1, scratch) + residualError(hi, d, 1, scratch) + salientErr;
                }
            }
        });
        int best = argmin(splitErr, rows, BREAK_POINTS);
        int[] cols = IntStream.range(0, n).filter(j -> salient[j]).toArray();
        return new Split(cols, splits[best], best);
    }

    /**
     * np.quantile(sorted, torch.linspace(0.10, 0.90, 81)) bit for bit: torch builds the grid in float32 as
     * fma(step, i, 0.1) for the first half and fma(-step, 80 - i, 0.9) for the second; numpy (2.x, a float32 q)
     * computes the virtual index (n - 1) * q in float32 and interpolates linearly from the upper neighbour when the
     * fraction is at least 0.5.
     */
    static double[] quantiles(double[] sorted) {
        int len = sorted.length, steps = BREAK_POINTS;
        float start = 0.10f, end = 0.90f;
        float step = (end - start) / (steps - 1);
        double[] out = new double[steps];
        for (int i = 0; i < steps; i++) {
            float q = i < steps / 2 ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (steps - i - 1), end);
            float vi = (float) (len - 1) * q;
            if (vi >= len - 1) {
                out[i] = sorted[len - 1];
                continue;
            }
            float prev = (float) Math.floor(vi);
            float gamma = vi - prev;
            double a = sorted[(int) prev], b = sorted[(int) prev + 1];
            double diff = b - a;
            out[i] = gamma >= 0.5f ? b - diff * (double) (1f - gamma) : a + diff * (double) gamma;
        }
        return out;
    }

    /**
     * Sum of squared errors of high_order_residual on v[0..n) with {@code orders} orders: per order the mean of
     * the residual, the scale mean |residual - mean| and binary = sign(residual - mean) * scale + mean, with
     * torch.sign's 0 for an exact tie (what the reference's searches see).
     */
    static double residualError(double[] v, int n, int orders, double[] approx) {
        if (n == 0) return 0;
        Arrays.fill(approx, 0, n, 0.0);
        for (int o = 0; o < orders; o++) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += v[i] - approx[i];
            double mean = sum / n, abs = 0;
            for (int i = 0; i < n; i++) abs += Math.abs(v[i] - approx[i] - mean);
            double scale = abs / n;
            for (int i = 0; i < n; i++) approx[i] = approx[i] + (Math.signum(v[i] - approx[i] - mean) * scale + mean);
        }
        double e = 0;
        for (int i = 0; i < n; i++) {
            double d = v[i] - approx[i];
            e += d * d;
        }
        return e;
    }

    /**
     * Residual binarization of the weights v[0..n) as they are stored: per order the reference's mean and scale
     * into {@code params[off + 2 order]} and {@code params[off + 2 order + 1]}, and the sign bit (residual >= mean;
     * the stored bit cannot say torch.sign's 0, which gives the same value whenever that order's scale is 0, as it
     * is where one or two entries reconstruct exactly) into {@code signs[order][i]}. Empty: mean and scale 0.
     */
    static void binarize(double[] v, int n, int orders, double[] params, int off, boolean[][] signs, double[] approx) {
        Arrays.fill(approx, 0, n, 0.0);
        for (int o = 0; o < orders; o++) {
            double mean = 0, scale = 0;
            if (n > 0) {
                double sum = 0;
                for (int i = 0; i < n; i++) sum += v[i] - approx[i];
                mean = sum / n;
                double abs = 0;
                for (int i = 0; i < n; i++) abs += Math.abs(v[i] - approx[i] - mean);
                scale = abs / n;
            }
            params[off + 2 * o] = mean;
            params[off + 2 * o + 1] = scale;
            for (int i = 0; i < n; i++) {
                boolean plus = v[i] - approx[i] - mean >= 0;
                signs[o][i] = plus;
                approx[i] = approx[i] + ((plus ? scale : -scale) + mean);
            }
        }
    }

    /** The first candidate with the least error summed over rows (strict <, as the reference keeps its first minimum). */
    private static int argmin(double[] rowErr, int rows, int candidates) {
        int best = 0;
        double min = Double.POSITIVE_INFINITY;
        for (int k = 0; k < candidates; k++) {
            double e = 0;
            for (int r = 0; r < rows; r++) e += rowErr[r * candidates + k];
            if (e < min) {
                min = e;
                best = k;
            }
        }
        return best;
    }

    interface RowRange {
        void run(int r0, int r1);
    }

    static void forRows(int rows, Parallel par, RowRange body) {
        int tiles = (rows + ROW_TILE - 1) / ROW_TILE;
        par.forEach(tiles, t -> body.run(t * ROW_TILE, Math.min(rows, (t + 1) * ROW_TILE)));
    }
}
