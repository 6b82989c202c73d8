package lowbit.studies;

import java.util.ArrayList;
import java.util.List;
import lowbit.calibration.InputHessians;
import lowbit.calibration.SequentialCalibration;
import lowbit.eval.Perplexity;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.Rtn;
import lowbit.stats.Moments;
import lowbit.tensor.Parallel;
import lowbit.tensor.VectorMath;
import org.apache.commons.math3.stat.correlation.SpearmansCorrelation;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Which linears are sensitive to quantization: measured (quantize one linear with RTN, keep the rest in
 * float, evaluate the perplexity increase) and by cheap proxies (the Hessian-weighted quantization error
 * sum_r (w_r - q_r)^T H (w_r - q_r) with GPTQ's H from the float model, and the weight's Pearson kurtosis),
 * plus the rank correlation between them.
 */
public final class Sensitivity {
    private Sensitivity() {}

    /**
     * Perplexity with only one linear quantized, for every block linear in turn; the model is restored after
     * each. Columns: layer, module, name, bits, ppl, ppl_increase (over the float model on the same windows).
     */
    public static Table measured(Transformer model, int[] ids, int seqlen, int windows, QuantConfig cfg, Progress progress) {
        double base = Perplexity.evaluate(model, ids, seqlen, windows, Progress.NONE).ppl();
        Table t = table("sensitivity (measured, " + cfg.label() + ")");
        List<Linear> all = blockLinears(model);
        try (Progress.Task task = progress.start("sensitivity", all.size(), "linear")) {
            for (Linear lin : all) {
                float[] w = lin.weight();
                lin.setWeight(Rtn.quantize(lin.name(), w, lin.outFeatures(), lin.inFeatures(), cfg).dequantize());
                double ppl;
                try {
                    ppl = Perplexity.evaluate(model, ids, seqlen, windows, Progress.NONE).ppl();
                } finally {
                    lin.setWeight(w);
                }
                row(t, lin, cfg.bits());
                t.doubleColumn("ppl").append(ppl);
                t.doubleColumn("ppl_increase").append(ppl - base);
                task.step(1);
            }
        }
        return t;
    }

    /**
     * The proxies for every block linear at {@code cfg}: hessian_error (H accumulated over the calibration
     * windows on the float model, as GPTQ builds it) and kurtosis (Pearson, of the weight).
     */
    public static Table proxies(Transformer model, int[][] windows, QuantConfig cfg, Progress progress) {
        return proxies(model, windows, List.of(cfg), progress);
    }

    /**
     * {@link #proxies(Transformer, int[][], QuantConfig, Progress)} for several grids from one calibration pass:
     * one row per (linear, grid), in block order, the grids in the order given. What a bit allocation needs:
     * the predicted loss of every linear at every candidate width.
     */
    public static Table proxies(Transformer model, int[][] windows, List<QuantConfig> cfgs, Progress progress) {
        if (cfgs.isEmpty()) throw new IllegalArgumentException("no quantization grids given for the proxies");
        Table t = table("sensitivity proxies (" + cfgs.stream().map(QuantConfig::label).reduce((a, b) -> a + ", " + b).orElseThrow() + ")");
        t.addColumns(DoubleColumn.create("hessian_error"), DoubleColumn.create("kurtosis"));
        t.removeColumns("ppl", "ppl_increase");
        try (Parallel par = new Parallel(model.threads())) {
            SequentialCalibration.run(model, windows, block -> {
                // q/k/v (and gate/up) read one input: one Hessian per input
                InputHessians h = new InputHessians(block.layer(), block.linears(), par);
                block.forward(h);
                for (Linear lin : block.linears()) {
                    float[] w = lin.weight();
                    double kurtosis = Moments.of(w).pearsonKurtosis();
                    for (QuantConfig cfg : cfgs) {
                        float[] q = Rtn.quantize(lin.name(), w, lin.outFeatures(), lin.inFeatures(), cfg).dequantize();
                        row(t, lin, cfg.bits());
                        t.doubleColumn("hessian_error").append(hessianError(w, q, h.of(lin).values(), lin.outFeatures(), lin.inFeatures(), par));
                        t.doubleColumn("kurtosis").append(kurtosis);
                    }
                }
            }, progress);
        }
        return t;
    }

    /** sum over rows of d^T H d with d = w - q. */
    static double hessianError(float[] w, float[] q, double[] h, int rows, int cols) {
        try (Parallel par = new Parallel(1)) {
            return hessianError(w, q, h, rows, cols, par);
        }
    }

    /** As above, rows split over {@code par}'s threads; per-row terms are summed in row order, so any thread count gives the same bits. */
    static double hessianError(float[] w, float[] q, double[] h, int rows, int cols, Parallel par) {
        double[] perRow = new double[rows];
        par.forEach(rows, r -> {
            double[] d = new double[cols];
            for (int j = 0; j < cols; j++) d[j] = (double) w[r * cols + j] - q[r * cols + j];
            double total = 0;
            for (int i = 0; i < cols; i++) {
                if (d[i] == 0) continue;
                total += d[i] * VectorMath.dot(h, i * cols, d, cols);
            }
            perRow[r] = total;
        });
        double total = 0;
        for (double v : perRow) total += v;
        return total;
    }

    /** Spearman rank correlation of two columns (ties get average ranks). */
    public static double rankCorrelation(double[] a, double[] b) {
        if (a.length != b.length || a.length < 2) throw new IllegalArgumentException("need two equally long columns of >= 2 values");
        return new SpearmansCorrelation().correlation(a, b);
    }

    private static List<Linear> blockLinears(Transformer model) {
        List<Linear> all = new ArrayList<>();
        for (int l = 0; l < model.config().numLayers(); l++) all.addAll(model.blockLinears(l));
        return all;
    }

    private static Table table(String name) {
        return Table.create(name, IntColumn.create("layer"), StringColumn.create("module"), StringColumn.create("name"),
                IntColumn.create("bits"), DoubleColumn.create("ppl"), DoubleColumn.create("ppl_increase"));
    }

    private static void row(Table t, Linear lin, int bits) {
        t.intColumn("layer").append(lin.layer());
        t.stringColumn("module").append(lin.module());
        t.stringColumn("name").append(lin.name());
        t.intColumn("bits").append(bits);
    }
}
