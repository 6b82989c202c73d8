package lowbit.cli;

import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.calibration.CalibrationSampler;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * `bench billm`: BiLLM on the whole model, then GPTQ on the same calibration windows (a fresh copy of the model), each
 * split into forward capture, Hessian, Cholesky and the quantization loop, with seconds per transformer layer.
 */
@Command(name = "billm", mixinStandardHelpOptions = true,
        description = "BiLLM (default billm:w1g128) on the whole model, then GPTQ (default gptq:w2g128) on the same calibration "
                + "windows, each split into forward capture, Hessian, Cholesky and quantization loop, with seconds per layer "
                + "and the load average.")
final class BillmBench implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--quant", defaultValue = "billm:w1g128", paramLabel = "SPEC", description = "the BiLLM spec (default: ${DEFAULT-VALUE})")
    String billm;

    @Option(names = "--gptq", defaultValue = "gptq:w2g128", paramLabel = "SPEC", description = "the GPTQ spec it is timed against (default: ${DEFAULT-VALUE})")
    String gptq;

    @Option(names = "--nsamples", defaultValue = "16", paramLabel = "N",
            description = "calibration windows, the same for both (default: ${DEFAULT-VALUE}; the references use 128)")
    int nsamples;

    @Option(names = "--calib-seqlen", defaultValue = "2048", paramLabel = "L", description = "calibration window length (default: ${DEFAULT-VALUE})")
    int seqlen;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "calibration draw seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("bench billm");
        QuantSpec b = QuantSpec.parse(billm), g = QuantSpec.parse(gptq);
        if (!QuantSpec.BILLM.equals(b.method())) throw new IllegalArgumentException("bench billm times billm specs, got --quant " + b);
        if (!"gptq".equals(g.method())) throw new IllegalArgumentException("bench billm compares with a gptq spec, got --gptq " + g);
        if (nsamples < 1) throw new IllegalArgumentException("--nsamples must be >= 1, got " + nsamples);
        if (seqlen < 2) throw new IllegalArgumentException("--calib-seqlen must be >= 2, got " + seqlen);
        QuantizationRecipe.Calibration c = new QuantizationRecipe.Calibration("c4", nsamples, seqlen, seed, CalibrationSampler.Mode.DOCUMENTS);
        System.out.printf(Locale.ROOT, "billm vs gptq  nsamples=%d seqlen=%d seed=%d threads=%d code=%s load average at start %s%n",
                nsamples, seqlen, seed, modelOptions.threads(), CodeVersion.current(), BenchCommand.Eval.loadAverage());
        for (QuantizationRecipe r : List.of(QuantizationRecipe.of(b).withCalibration(c), QuantizationRecipe.of(g).withCalibration(c))) {
            BenchCommand.Timed t = BenchCommand.Timed.apply(modelOptions, r);
            System.out.printf(Locale.ROOT, "%-18s total %.1f s (sampling included), %.2f s per layer (%d layers), %.3f bits/weight stored:%s%n",
                    r.spec(), t.seconds(), t.seconds() / t.layers(), t.layers(), t.outcome().model().bitsPerWeight(), t.phases());
        }
        System.out.printf(Locale.ROOT, "load average at the end %s%n", BenchCommand.Eval.loadAverage());
        return 0;
    }
}
