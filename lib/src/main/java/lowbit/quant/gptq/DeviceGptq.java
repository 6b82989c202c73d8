package lowbit.quant.gptq;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;


import lowbit.calibration.Hessian;
import lowbit.quant.QuantConfig;
import lowbit.quant.UniformQuantizer;
import lowbit.tensor.Parallel;

/**
 * {@link Gptq}, the per-layer object of IST-DASLab's gptq.py, with its two costly parts on the GPU (kernels/gptq.cu):
 * {@link #addBatch} accumulates H = 2/n sum X^T X on the device, and {@link #quantize} runs the column loop there,
 * one kernel per lazy batch of columns and the trailing update W[:, i2:] -= Err1 Hinv[i1:i2, i2:] as a tiled GEMM.
 *
 * <p>It works in double like the CPU object, and each kernel repeats the CPU's fma chains in the CPU's order, so the
 * Hessian, W after every update and the codes are bit for bit those of {@link Gptq}; only the loss is summed in another
 * order (a relative difference near 1e-15). Ties are therefore no special case: a value half-way between two grid
 * points is half-way on both, and rint sends it to the even code on both.
 *
 * <p>Done on the host, on purpose: everything before the loop ({@link Gptq#plan}: dead columns, act-order, damping,
 * the grids fitted before the loop) including the inverse factor (Cholesky, inverse, upper Cholesky with damping
 * retries, {@link Hessian#inverseFactor} in double), so that the loop starts from the very H^-1 the CPU uses; and the
 * dynamic group grids, fitted by {@link UniformQuantizer} (the one grid) on the columns of W downloaded at the start of
 * each lazy batch. That is exact: a dynamic group is fitted on W holding the earlier batches' trailing updates and not
 * the in-batch ones, so every group that starts inside a batch can be fitted when the batch starts. The cost is one
 * download of rows x (batch + group) doubles per batch, and the O(n^3) factorization on the CPU's cores.
 */
public final class DeviceGptq implements AutoCloseable {
    private static final String MODULE = "gptq";
    /** Rows (one warp each) per block of the column-loop kernel. */
    private static final int LOOP_WARPS = 4;

    private final Cuda cuda;
    private final int columns;
    private final DeviceBuffer h;
    private DeviceBuffer staging;
    private int samples;
    private double hessianSeconds;

    public DeviceGptq(Cuda cuda, int columns) {
        if (columns < 1) throw new IllegalArgumentException("a Hessian needs >= 1 column, got " + columns);
        this.cuda = cuda;
        this.columns = columns;
        long bytes = 8L * columns * columns;
        cuda.require(bytes, "GPTQ's Hessian of " + columns + " columns");
        this.h = cuda.allocate(bytes, "GPTQ Hessian " + columns + "x" + columns).zero();
    }

    /** A DeviceGptq on a Hessian accumulated on the CPU (uploaded; the CPU's stays as it is). */
    public static DeviceGptq fromHessian(Cuda cuda, Hessian hessian) {
        DeviceGptq g = new DeviceGptq(cuda, hessian.columns());
        g.h.upload(hessian.values());
        g.samples = hessian.samples();
        return g;
    }

    public int columns() {
        return columns;
    }

    public int samples() {
        return samples;
    }

    /** Seconds spent in {@link #addBatch} (synchronized at each call's end, so it is the device's time too). */
    public double hessianSeconds() {
        return hessianSeconds;
    }

    /** Adds one calibration sequence x [tokens][columns]: H = H n/(n+1) + 2/(n+1) x^T x, bit for bit {@link Hessian#add}. */
    public void addBatch(float[] x, int tokens) {
        if (tokens < 1 || x.length < (long) tokens * columns)
            throw new IllegalArgumentException("batch has " + x.length + " values, expected " + tokens + "x" + columns);
        long t0 = System.nanoTime();
        double keep = (double) samples / (samples + 1);
        samples++;
        long count = (long) columns * columns;
        if (keep != 1) cuda.kernel(MODULE, "gptq_hessian_scale").launch(Kernel.Grid.cover(count, 256), h, count, keep);
        long need = 4L * tokens * columns;
        if (staging == null || staging.bytes() < need) {
            if (staging != null) staging.close();
            staging = cuda.allocate(need, "GPTQ calibration batch " + tokens + "x" + columns);
        }
        staging.upload(0, x, tokens * columns);
        int tiles = (columns + 63) / 64;
        cuda.kernel(MODULE, "gptq_hessian_add").launch(new Kernel.Grid(tiles, tiles, 1, 16, 16, 1, 0), h, staging, tokens, columns,
                2.0 / samples);
        cuda.synchronize();
        hessianSeconds += (System.nanoTime() - t0) / 1e9;
    }

    /** The running H, downloaded. */
    public Hessian hessian() {
        double[] v = new double[columns * columns];
        h.download(v);
        return Hessian.of(v, columns, samples);
    }

    /**
     * Quantizes W [rows][columns] (not modified) as {@link Gptq#quantize} does, with the same Result; the Hessian is left as
     * it is, so layers sharing an input share it.
     */
    public Gptq.Result quantize(String name, float[] weight, int rows, QuantConfig cfg, Gptq.Options opt, Parallel par) {
        Gptq.Plan p = Gptq.plan(name, weight, rows, hessian(), cfg, opt, par);
        long t0 = System.nanoTime();
        int n = columns, g = p.groupColumns(), groups = cfg.groupsPerRow(n), bs = opt.blockSize();
        boolean dynamic = cfg.grouped() && !opt.staticGroups();
        double[] scale = new double[rows * groups], zero = new double[rows * groups];
        int[] groupOf = new int[n];
        for (int j = 0; j < n; j++) groupOf[j] = !cfg.grouped() ? 0 : opt.staticGroups() ? p.perm()[j] / g : j / g;
        if (!cfg.grouped()) {
            System.arraycopy(p.rowScale(), 0, scale, 0, rows);
            System.arraycopy(p.rowZero(), 0, zero, 0, rows);
        } else if (opt.staticGroups()) {
            System.arraycopy(p.staticScale(), 0, scale, 0, scale.length);
            System.arraycopy(p.staticZero(), 0, zero, 0, zero.length);
        }
        int batch = Math.min(bs, n);
        int widest = dynamic ? Math.min(n, batch + g) : 0;   // columns a batch's group fits can read
        long bytes = 8L * rows * n + 8L * n * n + 8L * rows * groups * 2 + 4L * n * 2 + (long) rows * n + 8L * rows * batch + 8L * rows
                + 8L * rows * widest;
        cuda.require(bytes, name + ": GPTQ's column loop (" + rows + "x" + n + ")");
        UniformQuantizer grid = new UniformQuantizer(cfg);
        byte[] codes = new byte[rows * n];
        double[] rowLoss = new double[rows];
        try (DeviceBuffer dw = doubles(p.w(), name + " W"); DeviceBuffer dh = doubles(p.hinv(), name + " H^-1 factor");
             DeviceBuffer ds = doubles(scale, name + " scales"); DeviceBuffer dz = doubles(zero, name + " zeros");
             DeviceBuffer dperm = cuda.allocate(4L * n, name + " permutation").upload(p.perm());
             DeviceBuffer dgroup = cuda.allocate(4L * n, name + " group of column").upload(groupOf);
             DeviceBuffer dcodes = cuda.allocate(rows * (long) n, name + " codes");
             DeviceBuffer derr = cuda.allocate(8L * rows * batch, name + " batch errors");
             DeviceBuffer dloss = cuda.allocate(8L * rows, name + " loss per row").zero();
             DeviceBuffer dcols = widest > 0 ? cuda.allocate(8L * rows * widest, name + " columns for group fits") : null) {
            Kernel gather = cuda.kernel(MODULE, "gptq_gather_columns"), loop = cuda.kernel(MODULE, "gptq_block"),
                    trailing = cuda.kernel(MODULE, "gptq_trailing");
            double[] params = new double[2];
            for (int i1 = 0; i1 < n; i1 += bs) {
                int i2 = Math.min(i1 + bs, n), count = i2 - i1;
                int first = dynamic ? (i1 + g - 1) / g * g : i2;
                if (first < i2) {
                    int c1 = Math.min(n, (i2 - 1) / g * g + g), span = c1 - first;
                    gather.launch(Kernel.Grid.cover((long) rows * span, 256), dw, rows, n, first, c1, dcols);
                    double[] cols = new double[rows * span];
                    dcols.download(cols);
                    for (int col = first; col < i2; col += g)
                        for (int r = 0; r < rows; r++) {
                            grid.fit(cols, r * span + col - first, Math.min(g, n - col), params);
                            scale[r * groups + col / g] = params[0];
                            zero[r * groups + col / g] = params[1];
                            p.out().group(r, col / g, params[0], params[1]);
                        }
                    ds.upload(scale);
                    dz.upload(zero);
                }
                loop.launch(new Kernel.Grid((rows + LOOP_WARPS - 1) / LOOP_WARPS, 1, 1, 32 * LOOP_WARPS, 1, 1, 8 * LOOP_WARPS * count),
                        dw, rows, n, i1, count, dh, ds, dz, dgroup, groups, cfg.maxq(),
                        cfg.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN ? 1 : 0, dperm, dcodes, derr, dloss);
                if (i2 < n)
                    trailing.launch(new Kernel.Grid((n - i2 + 31) / 32, (rows + 31) / 32, 1, 32, 8, 1, 0), dw, rows, n, i1, count, i2,
                            derr, dh);
            }
            dcodes.download(codes);
            dloss.download(rowLoss);
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < n; c++) p.out().code(r, c, codes[r * n + c] & 0xff);
        double loss = 0;
        for (double l : rowLoss) loss += l;
        return p.result(loss, (System.nanoTime() - t0) / 1e9);
    }

    private DeviceBuffer doubles(double[] v, String what) {
        DeviceBuffer b = cuda.allocate(8L * v.length, what);
        b.upload(v);
        return b;
    }


    @Override
    public void close() {
        h.close();
        if (staging != null) staging.close();
    }
}
