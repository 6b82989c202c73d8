package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.quant.gptq.DeviceGptq;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.gptq.Gptq;
import lowbit.results.CodeVersion;
import lowbit.tensor.Parallel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * `bench gptq`: one 2048x2048 layer alone (Hessian accumulation, Cholesky, column loop; against the
 * PyTorch reference algorithm on the same CPU when .venv has torch), then the whole model with the
 * GPTQ calibration protocol, split into forward capture, Hessian, Cholesky, column loop and block outputs.
 * With --device cuda both run with {@link DeviceGptq} and the baseline is the reference on torch.cuda (float32, as
 * gptq.py runs), side by side in one run; without a GPU, --device cuda stops with Cuda's one line.
 */
@Command(name = "gptq", mixinStandardHelpOptions = true,
        description = "GPTQ on one 2048x2048 layer (against the PyTorch reference algorithm when .venv has torch) and on the "
                + "whole model, split into forward capture, Hessian, Cholesky and column loop; --quant picks the spec "
                + "(default gptq:w4g128).")
final class GptqBench implements Callable<Integer> {
    static final int LAYER = 2048;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--part", defaultValue = "all", paramLabel = "all|layer|model", description = "which part to time (default: ${DEFAULT-VALUE})")
    String part;

    @Option(names = "--baseline", defaultValue = "auto", paramLabel = "auto|none|torch",
            description = "the PyTorch reference algorithm on the same layer; auto runs it when .venv has torch (default: ${DEFAULT-VALUE})")
    String baseline;

    @Override
    public Integer call() {
        if (!List.of("all", "layer", "model").contains(part)) throw new IllegalArgumentException("--part must be all, layer or model, got '" + part + "'");
        BenchCommand.checkBaseline(baseline, "torch");
        QuantSpec spec = quantOptions.quant == null ? QuantSpec.of("gptq", QuantConfig.group(4, 128)) : quantOptions.spec();
        if (!"gptq".equals(spec.method())) throw new IllegalArgumentException("bench gptq times gptq specs, got --quant " + spec);
        QuantizationRecipe recipe = quantOptions.recipe(spec, null);
        Device device = QuantOptions.device(modelOptions, recipe);
        int threads = modelOptions.threads();
        int windows = recipe.resolvedCalibration().nsamples(), seqlen = recipe.resolvedCalibration().seqlen();
        System.out.printf(Locale.ROOT, "gptq  spec=%s nsamples=%d seqlen=%d threads=%d device=%s code=%s%n", recipe.spec(), windows, seqlen,
                threads, device == Device.CUDA ? Cuda.get().describe() : "cpu", CodeVersion.current());
        if (!part.equals("model")) layer(recipe.weightConfig(), recipe.gptq().layer(), windows, seqlen, threads, baseline, device);
        if (!part.equals("layer")) model(modelOptions, recipe, device);
        return 0;
    }

    private static void layer(QuantConfig cfg, Gptq.Options opt, int windows, int seqlen, int threads, String baseline, Device device) {
        SplittableRandom rnd = new SplittableRandom(0);
        float[] w = new float[LAYER * LAYER];
        for (int i = 0; i < w.length; i++) w[i] = (float) (0.02 * gaussian(rnd));
        boolean gpu = device == Device.CUDA;
        Gptq g = gpu ? null : new Gptq(LAYER);
        double hessian = 0;
        try (Parallel par = new Parallel(threads); DeviceGptq dg = gpu ? new DeviceGptq(Cuda.get(), LAYER) : null;
             Progress.Task task = Progress.terminal().start("layer H", windows, "win")) {
            float[] x = new float[seqlen * LAYER];
            for (int s = 0; s < windows; s++) {
                correlatedInputs(x, seqlen, rnd);
                long t0 = System.nanoTime();
                if (gpu) dg.addBatch(x, seqlen);   // synchronizes: the time is the device's (and the batch's upload)
                else g.addBatch(x, seqlen, par);
                hessian += (System.nanoTime() - t0) / 1e9;
                task.step(1);
            }
            Gptq.Result r = gpu ? dg.quantize("bench.2048x2048", w, LAYER, cfg, opt, par) : g.quantize("bench.2048x2048", w, LAYER, cfg, opt, par);
            System.out.printf(Locale.ROOT, "%-12s layer %dx%d: hessian %.2f s (%.0f GFLOPS)  cholesky %.2f s  column loop %.2f s  total %.2f s%n",
                    gpu ? "lowbit-cuda" : "lowbit", LAYER, LAYER, hessian, 2.0 * windows * seqlen * LAYER * LAYER / hessian / 1e9,
                    r.choleskySeconds(), r.loopSeconds(), hessian + r.choleskySeconds() + r.loopSeconds());
        }
        if (baseline.equals("none")) return;
        PythonBaseline py = PythonBaseline.find("torch baseline", List.of("torch"));
        if (!py.available()) {
            if (baseline.equals("torch")) throw new IllegalArgumentException(py.missing());
            System.out.println("skipped: " + py.missing());
            return;
        }
        JsonNode ref = py.run("bench_gptq_layer.py", List.of("--columns", Integer.toString(LAYER), "--windows", Integer.toString(windows),
                "--seqlen", Integer.toString(seqlen), "--bits", Integer.toString(cfg.bits()),
                "--group", Integer.toString(cfg.grouped() ? cfg.groupSize() : -1), "--threads", Integer.toString(threads),
                "--device", device.label()));
        System.out.printf(Locale.ROOT, "%-12s layer %dx%d: hessian %.2f s (%.0f GFLOPS)  cholesky %.2f s  column loop %.2f s  total %.2f s  (torch %s, float32, gptq.py, %s)%n",
                gpu ? "torch-cuda" : "torch", LAYER, LAYER, ref.path("hessian_seconds").asDouble(),
                2.0 * windows * seqlen * LAYER * LAYER / ref.path("hessian_seconds").asDouble() / 1e9,
                ref.path("cholesky_seconds").asDouble(), ref.path("loop_seconds").asDouble(), ref.path("total_seconds").asDouble(),
                ref.path("torch").asText(), ref.path("device").asText("cpu"));
    }

    // Hessian GFLOPS count the full product X^T X (2 * tokens * n^2), what the reference computes; lowbit
    // computes one triangle, so its rate against the work it really does is half the printed figure.

    /** Gaussian inputs with a per-channel scale spread and a rank-8 shared component, like real activations. */
    private static void correlatedInputs(float[] x, int rows, SplittableRandom rnd) {
        double[] a = new double[8];
        for (int t = 0; t < rows; t++) {
            for (int k = 0; k < a.length; k++) a[k] = gaussian(rnd);
            for (int j = 0; j < LAYER; j++) {
                double shared = a[j & 7] * ((j % 13) + 1) * 0.1;
                x[t * LAYER + j] = (float) (gaussian(rnd) * (1 + (j % 97) / 16.0) + shared);
            }
        }
    }

    private static double gaussian(SplittableRandom rnd) {
        return rnd.nextGaussian();
    }

    private static void model(ModelOptions modelOptions, QuantizationRecipe recipe, Device device) {
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            long t1 = System.nanoTime();
            QuantizationRecipe.Outcome o = recipe.apply(model, Checkpoints.tokenizer(ckpt), Progress.terminal(), device);
            double total = (System.nanoTime() - t1) / 1e9;
            Map<String, Double> t = o.model().timings();
            double parts = t.values().stream().mapToDouble(Double::doubleValue).sum();
            System.out.printf(Locale.ROOT, "%-12s model %s (%d linears, %.3f bits/weight): total %.1f s = sampling+embedding %.1f s"
                            + " + forward capture %.1f s + hessian %.1f s + cholesky %.1f s + column loop %.1f s + block outputs %.1f s  (load %.1f s)%n",
                    device == Device.CUDA ? "lowbit-cuda" : "lowbit", ckpt.source(), o.model().weights().size(), o.model().bitsPerWeight(), total, total - parts,
                    t.get("forward_capture_seconds"), t.get("hessian_seconds"), t.get("cholesky_seconds"), t.get("column_loop_seconds"),
                    t.get("block_output_seconds"), (t1 - t0) / 1e9);
        }
    }
}
