package lowbit.quant;

/** Round-to-nearest: every weight onto the grid independently, no calibration data. */
public final class Rtn {
    private Rtn() {}

    /** Quantizes W [rows][columns]; NaN or Inf in W is refused naming the tensor. */
    public static QuantizedWeight quantize(String name, float[] w, int rows, int columns, QuantConfig cfg) {
        checkWeight(name, w, rows, columns);
        UniformQuantizer grid = new UniformQuantizer(cfg);
        QuantizedWeight.Builder out = new QuantizedWeight.Builder(rows, columns, cfg);
        double[] params = new double[2];
        if (cfg.groupSize() == QuantConfig.PER_TENSOR) {
            double[] all = toDouble(w, 0, w.length);
            grid.fit(all, 0, all.length, params);
            out.group(0, 0, params[0], params[1]);
            for (int i = 0; i < w.length; i++) out.code(i / columns, i % columns, grid.code(all[i], params[0], params[1]));
            return out.build();
        }
        int g = cfg.groupColumns(columns);
        for (int r = 0; r < rows; r++) {
            double[] row = toDouble(w, r * columns, columns);
            for (int c0 = 0, gi = 0; c0 < columns; c0 += g, gi++) {
                int n = Math.min(g, columns - c0);
                grid.fit(row, c0, n, params);
                out.group(r, gi, params[0], params[1]);
                for (int c = c0; c < c0 + n; c++) out.code(r, c, grid.code(row[c], params[0], params[1]));
            }
        }
        return out.build();
    }

    /** Refuses, naming the tensor, a weight of the wrong size or with NaN or Inf in it (also for lowbit.quant.DeviceRtn). */
    public static void checkWeight(String name, float[] w, int rows, int columns) {
        if (w.length != (long) rows * columns)
            throw new IllegalArgumentException(name + ": weight has " + w.length + " elements, expected " + rows + "x" + columns);
        for (int i = 0; i < w.length; i++)
            if (!Float.isFinite(w[i]))
                throw new IllegalArgumentException(name + ": weight [" + i / columns + "][" + i % columns + "] is " + w[i]
                        + "; cannot quantize a tensor with NaN or Inf");
    }

    private static double[] toDouble(float[] w, int off, int n) {
        double[] d = new double[n];
        for (int i = 0; i < n; i++) d[i] = w[off + i];
        return d;
    }
}
