package lowbit.quant.awq;

import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.cuda.GpuAvailable;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DeviceAwq (kernels/awq.cu) against the CPU. Its products accumulate in float32 in another order than the CPU's matmul,
 * so losses agree to 1e-4 relative (the bound for fp32), not bit for bit; the candidate weights are the CPU's own
 * (lowbit.quant.Rtn on the host), so with losses that close the search picks the same alpha and quantizes the same weights.
 */
@Tag("gpu")
class DeviceAwqGpuTest {
    private static float[] gaussian(int n, double scale, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (scale * rnd.nextGaussian());
        return v;
    }

    /** The loss of x w^T + b against ref, in double from the definition: the reference the kernel must meet. */
    private static double mse(float[][] x, float[] w, float[] bias, float[][] ref, int in, int out) {
        double sum = 0;
        long count = 0;
        for (int k = 0; k < x.length; k++) {
            int tokens = x[k].length / in;
            for (int t = 0; t < tokens; t++)
                for (int o = 0; o < out; o++) {
                    double y = bias == null ? 0 : bias[o];
                    for (int c = 0; c < in; c++) y += (double) x[k][t * in + c] * w[o * in + c];
                    double d = y - ref[k][t * out + o];
                    sum += d * d;
                    count++;
                }
        }
        return sum / count;
    }

    @Test
    void lossMatchesTheDefinitionOnUnevenTiles() {
        Cuda cuda = GpuAvailable.require();
        int in = 150, out = 70;   // neither a multiple of the 64-wide tiles nor of the 16-wide k steps
        float[][] x = {gaussian(37 * in, 1, 1), gaussian(91 * in, 1, 2)};
        float[][] ref = {gaussian(37 * out, 0.5, 3), gaussian(91 * out, 0.5, 4)};
        float[] bias = gaussian(out, 0.1, 5);
        for (float[] b : new float[][] {null, bias})
            try (DeviceAwq d = DeviceAwq.upload(cuda, "test linear", x, in, ref, out, b)) {
                assertEquals(128, d.tokens());
                for (int seed = 10; seed < 13; seed++) {
                    float[] w = gaussian(out * in, 0.1, seed);
                    double expected = mse(x, w, b, ref, in, out);
                    assertEquals(expected, d.loss(w), 1e-4 * expected, "seed " + seed + (b == null ? "" : " with bias"));
                }
            }
    }

    /** The whole AWQ with the single-linear groups' searches on the device chooses the CPU's alphas and weights. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "opt"})
    void awqOnTheDeviceChoosesTheCpuAlphas(String family) throws Exception {
        GpuAvailable.require();
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + family).toURI());
        QuantConfig cfg = QuantConfig.group(4, 16).withZeroPoint(QuantConfig.ZeroPoint.AWQ);
        QuantizedModel cpu = awq(dir, cfg, Device.CPU), gpu = awq(dir, cfg, Device.CUDA);
        for (Map.Entry<String, Map<String, Object>> e : cpu.layers().entrySet()) {
            if (!e.getValue().containsKey("alpha")) continue;
            Map<String, Object> g = gpu.layers().get(e.getKey());
            assertEquals(e.getValue().get("alpha"), g.get("alpha"), family + " " + e.getKey() + ": alpha");
            double lc = (Double) e.getValue().get("loss"), lg = (Double) g.get("loss");
            assertEquals(lc, lg, 1e-4 * lc, family + " " + e.getKey() + ": loss");
        }
        for (String name : cpu.weights().keySet())
            assertEquals(cpu.weights().get(name), gpu.weights().get(name), family + " " + name + ": quantized weight");
    }

    private static QuantizedModel awq(Path dir, QuantConfig cfg, Device device) throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            SplittableRandom rnd = new SplittableRandom(9);
            int[][] windows = new int[4][32];
            for (int[] w : windows)
                for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(model.config().vocabSize());
            return new Awq(cfg, n -> cfg, Awq.Options.defaults(), device).quantize(model, windows, Progress.NONE);
        }
    }
}
