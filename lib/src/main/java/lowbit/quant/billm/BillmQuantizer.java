package lowbit.quant.billm;

import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.calibration.InputHessians;
import lowbit.calibration.SequentialCalibration;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizedModel;
import lowbit.tensor.Parallel;

/**
 * BiLLM over a whole model as the reference's run.py quant_sequential does it: blocks in order, each calibrated on
 * the outputs of the already-binarized blocks before it, every linear of a block hooked at once (one Hessian per
 * distinct input), then binarized, and lm_head left in float.
 */
public final class BillmQuantizer {
    private final Billm.Options options;

    public BillmQuantizer(Billm.Options options) {
        this.options = options;
    }

    /** Refuses a block size that does not fit one of {@code model}'s linears before any work ({@link Billm#checkFits}). */
    public static void checkFits(Transformer model, int blockSize, String context) {
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l)) Billm.checkFits(context + lin.name(), lin.inFeatures(), blockSize);
    }

    public QuantizedModel quantize(Transformer model, int[][] windows, Progress progress) {
        checkFits(model, options.blockSize(), "");
        Map<String, BillmWeight> weights = new LinkedHashMap<>();
        Map<String, Map<String, Object>> layers = new LinkedHashMap<>();
        double[] seconds = new double[3];   // hessian, cholesky, block loop
        long[] salient = new long[2];       // salient weights, all weights
        SequentialCalibration.Timing timing;
        try (Parallel par = new Parallel(model.threads())) {
            timing = SequentialCalibration.run(model, windows, block -> {
                InputHessians hessians = new InputHessians(block.layer(), block.linears(), par);
                block.forward(hessians);
                seconds[0] += hessians.seconds();
                for (Linear lin : block.linears()) {
                    Billm.Result r = new Billm(hessians.of(lin)).quantize(lin.name(), lin.weight(), lin.outFeatures(), options, par);
                    lin.setWeight(r.weight().dequantize());
                    weights.put(lin.name(), r.weight());
                    salient[0] += (long) r.weight().salientCount() * r.weight().rows();
                    salient[1] += (long) r.weight().rows() * r.weight().columns();
                    Map<String, Object> facts = new LinkedHashMap<>();
                    facts.put("loss", r.loss());
                    facts.put("percdamp", r.percdamp());
                    facts.put("damp_attempts", r.dampAttempts());
                    facts.put("dead_columns", r.deadColumns());
                    facts.put("salient_columns", r.salientCounts());
                    facts.put("break_point_quantiles", quantileLabels(r.breakIndices()));
                    facts.put("bits_per_weight", r.weight().bitsPerWeight());
                    facts.put("bits_per_weight_paper", r.weight().paperBitsPerWeight());
                    layers.put(lin.name(), facts);
                    seconds[1] += r.choleskySeconds();
                    seconds[2] += r.loopSeconds();
                }
            }, progress);
        }
        Map<String, Double> timings = new LinkedHashMap<>();
        timings.put("forward_capture_seconds", timing.captureSeconds() - seconds[0]);
        timings.put("hessian_seconds", seconds[0]);
        timings.put("cholesky_seconds", seconds[1]);
        timings.put("block_loop_seconds", seconds[2]);
        timings.put("block_output_seconds", timing.outputSeconds());
        Map<String, Object> opts = new LinkedHashMap<>();
        opts.put("percdamp", options.percdamp());
        opts.put("block_size", options.blockSize());
        opts.put("salient_metric", "hessian");
        opts.put("scale_format", options.scaleFormat().name().toLowerCase());
        opts.put("salient_fraction", (double) salient[0] / salient[1]);
        // the paper's N_param = 1 + r_salient and N_storing = 1 + 1/b_size (BillmWeight#paperBitsPerWeight)
        opts.put("bits_per_weight_paper", 1.0 + (double) salient[0] / salient[1]);
        opts.put("flag_bits_per_weight_paper", 1.0 + 1.0 / options.blockSize());
        return new QuantizedModel(BillmWeight.METHOD, null, opts, weights, layers, timings);
    }

    /** The searched break points as the quantiles they are (10% .. 90%). */
    private static int[] quantileLabels(int[] indices) {
        int[] out = new int[indices.length];
        for (int i = 0; i < indices.length; i++) out[i] = 10 + indices[i];
        return out;
    }
}
