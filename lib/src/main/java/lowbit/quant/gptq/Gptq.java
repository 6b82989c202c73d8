package lowbit.quant.gptq;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;
import lowbit.calibration.Hessian;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.UniformQuantizer;
import lowbit.tensor.Parallel;

/**
 * GPTQ for one linear layer, as IST-DASLab's gptq.py does it (METHODS.md section 2): {@link #addBatch}
 * accumulates H = 2/n sum x x^T as a running average over calibration sequences, {@link #quantize} runs the
 * column loop with Cholesky-inverse error feedback in lazy batches.
 *
 * <p>Kept from the reference on purpose, because they change the result: per-channel grids are fitted on W
 * before dead columns are zeroed; a dynamic group's grid is fitted, when the loop reaches the group's first
 * column, on W holding the lazy-batch updates of earlier blocks but not the in-block ones; act-order sorts
 * diag(H) descending before damping (ties keep column order); static groups are fitted before the
 * permutation. Different from the reference: all arithmetic is double (the reference runs float32 on a GPU);
 * when Cholesky fails, the damping doubles until it succeeds and the result records the damping used.
 *
 * <p>Rows are independent given H^-1, so the loop runs over tiles of rows in parallel; every row is
 * computed whole by one thread and the result does not depend on the thread count.
 */
public final class Gptq {
    private static final VectorSpecies<Double> S = DoubleVector.SPECIES_PREFERRED;
    private static final int ROW_TILE = 8;

    public record Options(double percdamp, int blockSize, boolean actOrder, boolean staticGroups) {
        public Options {
            if (!(percdamp >= 0) || percdamp > 1) throw new IllegalArgumentException("percdamp must be in [0, 1], got " + percdamp);
            if (blockSize < 1) throw new IllegalArgumentException("GPTQ block size must be >= 1, got " + blockSize);
        }

        public static Options defaults() {
            return new Options(0.01, 128, false, false);
        }

        public Options withActOrder(boolean a) {
            return new Options(percdamp, blockSize, a, staticGroups);
        }

        public Options withStaticGroups(boolean s) {
            return new Options(percdamp, blockSize, actOrder, s);
        }

        public Options withPercdamp(double p) {
            return new Options(p, blockSize, actOrder, staticGroups);
        }

        public Options withBlockSize(int b) {
            return new Options(percdamp, blockSize == b ? blockSize : b, actOrder, staticGroups);
        }
    }

    /**
     * @param loss           the reference's sum of (w - q)^2 / Hinv_ii^2 / 2 (a proxy for the output error)
     * @param percdamp       the damping that made H factorizable (the requested one unless it was raised)
     * @param deadColumns    input columns whose calibration inputs were all zero
     */
    public record Result(QuantizedWeight weight, double loss, double percdamp, int dampAttempts, int deadColumns,
                         double choleskySeconds, double loopSeconds) {}

    private final int columns;
    private final Hessian hessian;
    private final double[] h;

    public Gptq(int columns) {
        this(new Hessian(columns));
    }

    /** GPTQ on a Hessian accumulated elsewhere (shared: {@link #quantize} leaves it as it is). */
    public Gptq(Hessian hessian) {
        this.hessian = hessian;
        this.columns = hessian.columns();
        this.h = hessian.values();
    }

    /** A Gptq whose Hessian was accumulated elsewhere (n sequences). */
    public static Gptq fromHessian(double[] h, int columns, int nsamples) {
        return new Gptq(Hessian.of(h, columns, nsamples));
    }

    public int columns() {
        return columns;
    }

    public int samples() {
        return hessian.samples();
    }

    /** The running H (live). */
    public double[] hessian() {
        return h;
    }

    /** Adds one calibration sequence x [tokens][columns]: H = H n/(n+1) + 2/(n+1) x^T x ({@link Hessian#add}). */
    public void addBatch(float[] x, int tokens, Parallel par) {
        hessian.add(x, tokens, par);
    }

    /** Quantizes W [rows][columns] (not modified); the Hessian is left as it is, so layers sharing an input can share it. */
    public Result quantize(String name, float[] weight, int rows, QuantConfig cfg, Options opt, Parallel par) {
        Plan p = plan(name, weight, rows, hessian, cfg, opt, par);
        int n = columns;
        long t1 = System.nanoTime();
        int tiles = (rows + ROW_TILE - 1) / ROW_TILE;
        double[] tileLoss = new double[tiles];
        UniformQuantizer grid = new UniformQuantizer(cfg);
        int g = p.groupColumns(), groups = cfg.groupsPerRow(n);
        par.forEach(tiles, tile -> {
            int r0 = tile * ROW_TILE, r1 = Math.min(rows, r0 + ROW_TILE);
            tileLoss[tile] = columnLoop(p.w(), p.hinv(), r0, r1, n, g, groups, grid, cfg, opt, p.perm(), p.rowScale(), p.rowZero(),
                    p.staticScale(), p.staticZero(), p.out());
        });
        double loss = 0;
        for (double l : tileLoss) loss += l;
        return p.result(loss, (System.nanoTime() - t1) / 1e9);
    }

    /**
     * Everything GPTQ decides before its column loop, shared by this CPU loop and the GPU's (lowbit.quant.gptq.DeviceGptq), so
     * both start from the same numbers: W in double, dead columns zeroed, permuted by act-order; the upper Cholesky factor
     * of the damped H^-1, permuted likewise; the grids fitted before the loop (per channel or per tensor in
     * {@code rowScale}/{@code rowZero}, static groups [rows][groups] in {@code staticScale}/{@code staticZero}, null
     * otherwise), already recorded in {@code out}; and {@code perm} (column j of the loop is column perm[j] of W).
     */
    public record Plan(int rows, int columns, QuantConfig config, Options options, double[] w, double[] hinv, int[] perm,
                       double[] rowScale, double[] rowZero, double[] staticScale, double[] staticZero, QuantizedWeight.Builder out,
                       double percdamp, int dampAttempts, int deadColumns, double choleskySeconds) {
        /** Columns per group along the loop (the whole row when not grouped). */
        public int groupColumns() {
            return config.grouped() ? config.groupSize() : columns;
        }

        /** The Result once the loop has written every code into {@code out}. */
        public Result result(double loss, double loopSeconds) {
            return new Result(out.build(), loss, percdamp, dampAttempts, deadColumns, choleskySeconds, loopSeconds);
        }
    }

    /** The {@link Plan} of quantizing W [rows][H's columns] (not modified) with Hessian {@code hessian} (not modified). */
    public static Plan plan(String name, float[] weight, int rows, Hessian hessian, QuantConfig cfg, Options opt, Parallel par) {
        int n = hessian.columns();
        double[] h = hessian.values();
        if (weight.length != rows * n)
            throw new IllegalArgumentException(name + ": weight has " + weight.length + " elements, expected " + rows + "x" + n);
        if (hessian.samples() == 0) throw new IllegalStateException(name + ": GPTQ needs calibration data, no batch was added");
        if (opt.staticGroups() && !cfg.grouped())
            throw new IllegalArgumentException(name + ": static groups need a group size");
        double[] w = new double[rows * n];
        for (int i = 0; i < w.length; i++) {
            if (!Float.isFinite(weight[i]))
                throw new IllegalArgumentException(name + ": weight [" + i / n + "][" + i % n + "] is " + weight[i] + "; cannot quantize NaN or Inf");
            w[i] = weight[i];
        }
        for (double v : h) if (!Double.isFinite(v)) throw new IllegalArgumentException(name + ": the Hessian contains " + v + " (non-finite calibration activations?)");

        UniformQuantizer grid = new UniformQuantizer(cfg);
        QuantizedWeight.Builder out = new QuantizedWeight.Builder(rows, n, cfg);
        double[] params = new double[2];

        // Grids fitted on the whole row (or matrix) come first, before dead columns are zeroed.
        double[] rowScale = null, rowZero = null;
        if (!cfg.grouped()) {
            rowScale = new double[rows];
            rowZero = new double[rows];
            if (cfg.groupSize() == QuantConfig.PER_TENSOR) {
                grid.fit(w, 0, w.length, params);
                Arrays.fill(rowScale, params[0]);
                Arrays.fill(rowZero, params[1]);
                out.group(0, 0, params[0], params[1]);
            } else {
                for (int r = 0; r < rows; r++) {
                    grid.fit(w, r * n, n, params);
                    rowScale[r] = params[0];
                    rowZero[r] = params[1];
                    out.group(r, 0, params[0], params[1]);
                }
            }
        }

        double[] hw = h.clone();
        int dead = 0;
        for (int i = 0; i < n; i++) {
            if (hw[i * n + i] == 0) {
                dead++;
                hw[i * n + i] = 1;
                for (int r = 0; r < rows; r++) w[r * n + i] = 0;
            }
        }

        int g = cfg.grouped() ? cfg.groupSize() : n;
        int groups = cfg.groupsPerRow(n);
        double[] staticScale = null, staticZero = null;
        if (opt.staticGroups()) {
            staticScale = new double[rows * groups];
            staticZero = new double[rows * groups];
            for (int r = 0; r < rows; r++)
                for (int gi = 0; gi < groups; gi++) {
                    int c0 = gi * g;
                    grid.fit(w, r * n + c0, Math.min(g, n - c0), params);
                    staticScale[r * groups + gi] = params[0];
                    staticZero[r * groups + gi] = params[1];
                    out.group(r, gi, params[0], params[1]);
                }
        }

        int[] perm = IntStream.range(0, n).toArray();
        if (opt.actOrder()) {
            double[] diag = new double[n];
            for (int i = 0; i < n; i++) diag[i] = hw[i * n + i];
            perm = IntStream.range(0, n).boxed()
                    .sorted(Comparator.comparingDouble((Integer i) -> diag[i]).reversed())
                    .mapToInt(Integer::intValue).toArray();
            w = permuteColumns(w, rows, n, perm);
            hw = permuteSymmetric(hw, n, perm);
            if (cfg.grouped() && !opt.staticGroups()) {
                int[] gIdx = new int[n];
                for (int j = 0; j < n; j++) gIdx[perm[j]] = j / g;
                out.groupIndex(gIdx);
            }
        }

        long t0 = System.nanoTime();
        Hessian.InverseFactor factor = Hessian.inverseFactor(name, hw, n, opt.percdamp(), par);
        double cholSeconds = (System.nanoTime() - t0) / 1e9;
        return new Plan(rows, n, cfg, opt, w, factor.u(), perm, rowScale, rowZero, staticScale, staticZero, out,
                factor.percdamp(), factor.attempts(), dead, cholSeconds);
    }

    /** Rows [r0, r1): quantize column by column, feeding each column's error forward through H^-1. */
    private static double columnLoop(double[] w, double[] hinv, int r0, int r1, int n, int g, int groups,
                                     UniformQuantizer grid, QuantConfig cfg, Options opt, int[] perm,
                                     double[] rowScale, double[] rowZero, double[] staticScale, double[] staticZero,
                                     QuantizedWeight.Builder out) {
        int bs = opt.blockSize(), tr = r1 - r0;
        double[] w1 = new double[tr * bs], err = new double[tr * bs];
        double[] scale = new double[tr], zero = new double[tr], params = new double[2];
        if (rowScale != null)
            for (int t = 0; t < tr; t++) {
                scale[t] = rowScale[r0 + t];
                zero[t] = rowZero[r0 + t];
            }
        double loss = 0;
        for (int i1 = 0; i1 < n; i1 += bs) {
            int i2 = Math.min(i1 + bs, n), count = i2 - i1;
            for (int t = 0; t < tr; t++) System.arraycopy(w, (r0 + t) * n + i1, w1, t * count, count);
            for (int i = 0; i < count; i++) {
                int col = i1 + i;
                if (cfg.grouped()) {
                    if (!opt.staticGroups()) {
                        if (col % g == 0)
                            for (int t = 0; t < tr; t++) {
                                // The reference fits on W, which lacks this block's in-block updates.
                                grid.fit(w, (r0 + t) * n + col, Math.min(g, n - col), params);
                                scale[t] = params[0];
                                zero[t] = params[1];
                                out.group(r0 + t, col / g, params[0], params[1]);
                            }
                    } else {
                        int gi = perm[col] / g;
                        for (int t = 0; t < tr; t++) {
                            scale[t] = staticScale[(r0 + t) * groups + gi];
                            zero[t] = staticZero[(r0 + t) * groups + gi];
                        }
                    }
                }
                double d = hinv[col * n + col];
                for (int t = 0; t < tr; t++) {
                    double x = w1[t * count + i];
                    int code = grid.code(x, scale[t], zero[t]);
                    double q = grid.value(code, scale[t], zero[t]);   // the model runs (float) q, exactly what the stored codes give
                    out.code(r0 + t, perm[col], code);
                    double e = (x - q) / d;
                    loss += (x - q) * (x - q) / (d * d) / 2;
                    err[t * count + i] = e;
                    axpy(-e, hinv, col * n + col, w1, t * count + i, count - i);
                }
            }
            if (i2 < n)
                for (int t = 0; t < tr; t++)
                    for (int k = 0; k < count; k++)
                        axpy(-err[t * count + k], hinv, (i1 + k) * n + i2, w, (r0 + t) * n + i2, n - i2);
        }
        return loss;
    }

    /** y[yo..yo+len) += a * x[xo..xo+len). */
    private static void axpy(double a, double[] x, int xo, double[] y, int yo, int len) {
        int i = 0;
        if (len >= S.length()) {
            DoubleVector av = DoubleVector.broadcast(S, a);
            for (int upper = S.loopBound(len); i < upper; i += S.length())
                DoubleVector.fromArray(S, x, xo + i).fma(av, DoubleVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        }
        for (; i < len; i++) y[yo + i] = Math.fma(a, x[xo + i], y[yo + i]);
    }

    private static double[] permuteColumns(double[] w, int rows, int n, int[] perm) {
        double[] p = new double[w.length];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < n; j++) p[r * n + j] = w[r * n + perm[j]];
        return p;
    }

    private static double[] permuteSymmetric(double[] h, int n, int[] perm) {
        double[] p = new double[h.length];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) p[i * n + j] = h[perm[i] * n + perm[j]];
        return p;
    }
}
