package lowbit.calibration;

import lowbit.tensor.Gram;
import lowbit.tensor.Parallel;

/**
 * H = 2/n sum_sequences X^T X of one linear input, kept as a running average over calibration sequences the
 * way IST-DASLab's gptq.py add_batch does (H = H n/(n+1) + 2/(n+1) X^T X), so that GPTQ, the sensitivity proxies
 * and the Hessian statistics all see bit-identical matrices.
 */
public final class Hessian {
    private final int columns;
    private final double[] h;
    private int samples;

    public Hessian(int columns) {
        if (columns < 1) throw new IllegalArgumentException("a Hessian needs >= 1 column, got " + columns);
        this.columns = columns;
        this.h = new double[columns * columns];
    }

    /** A Hessian accumulated elsewhere over {@code samples} sequences (copied). */
    public static Hessian of(double[] h, int columns, int samples) {
        if (h.length != columns * columns) throw new IllegalArgumentException("H has " + h.length + " entries, expected " + columns + "^2");
        Hessian r = new Hessian(columns);
        System.arraycopy(h, 0, r.h, 0, h.length);
        r.samples = samples;
        return r;
    }

    /** Adds one calibration sequence x [tokens][columns]. */
    public void add(float[] x, int tokens, Parallel par) {
        if (x.length < tokens * columns)
            throw new IllegalArgumentException("batch has " + x.length + " values, expected " + tokens + "x" + columns);
        double keep = (double) samples / (samples + 1);
        samples++;
        if (keep != 1) for (int i = 0; i < h.length; i++) h[i] *= keep;
        Gram.accumulate(h, x, tokens, columns, 2.0 / samples, par);
    }

    public int columns() {
        return columns;
    }

    /** Sequences added so far. */
    public int samples() {
        return samples;
    }

    /** The running H, row-major [columns][columns] (live). */
    public double[] values() {
        return h;
    }

    public double trace() {
        double t = 0;
        for (int i = 0; i < columns; i++) t += h[i * columns + i];
        return t;
    }
}
