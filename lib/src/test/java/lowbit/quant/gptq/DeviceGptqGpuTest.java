package lowbit.quant.gptq;

import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.cuda.GpuAvailable;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.SplittableRandom;
import lowbit.calibration.Hessian;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DeviceGptq (kernels/gptq.cu) against its CPU twin lowbit.quant.gptq.Gptq. The kernels repeat the CPU's double fma chains
 * in the CPU's order and H^-1 is the CPU's own, so the Hessian and the codes, scales and zeros must be bit for bit the
 * same: there are no ties to excuse, because a value half-way between two grid points is the same double on both and rint
 * sends it to the same even code. Only the loss is summed in another order (rows, then columns), hence 1e-12 relative.
 */
@Tag("gpu")
class DeviceGptqGpuTest {
    private static final Gptq.Options DEFAULT = Gptq.Options.defaults();

    private static float[] gaussian(int n, double scale, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) v[i] = (float) (scale * rnd.nextGaussian());
        return v;
    }

    /** Inputs with a per-column spread and shared components, so H has structure and act-order a real permutation. */
    private static float[] inputs(int tokens, int n, long seed, int deadColumn) {
        SplittableRandom rnd = new SplittableRandom(seed);
        float[] x = new float[tokens * n];
        for (int t = 0; t < tokens; t++) {
            double a = rnd.nextGaussian(), b = rnd.nextGaussian();
            for (int j = 0; j < n; j++)
                x[t * n + j] = j == deadColumn ? 0f : (float) (rnd.nextGaussian() * (1 + (j % 7) / 2.0) + (j % 2 == 0 ? a : b) * 0.7);
        }
        return x;
    }

    @Test
    void hessianOnTheDeviceIsHessianAddBitForBit() {
        Cuda cuda = GpuAvailable.require();
        int n = 100;   // not a multiple of the 32-wide tiles
        Hessian cpu = new Hessian(n);
        try (Parallel par = new Parallel(2); DeviceGptq gpu = new DeviceGptq(cuda, n)) {
            int[] tokens = {37, 64, 5};   // a batch shorter than a 32-row step, and uneven ones
            for (int s = 0; s < tokens.length; s++) {
                float[] x = inputs(tokens[s], n, 10 + s, -1);
                cpu.add(x, tokens[s], par);
                gpu.addBatch(x, tokens[s]);
            }
            Hessian h = gpu.hessian();
            assertEquals(cpu.samples(), h.samples());
            assertArrayEquals(cpu.values(), h.values(), 0.0, "device H vs Hessian.add");
        }
    }

    /** Quantizes one layer on both from one Hessian (uploaded to the device) and compares everything. */
    private static void sameAsCpu(String what, int rows, int n, QuantConfig cfg, Gptq.Options opt, int deadColumn) {
        Cuda cuda = GpuAvailable.require();
        Hessian h = new Hessian(n);
        try (Parallel par = new Parallel(2)) {
            for (int s = 0; s < 3; s++) h.add(inputs(96, n, 20 + s, deadColumn), 96, par);
            float[] w = gaussian(rows * n, 0.05, 3);
            Gptq.Result cpu = new Gptq(h).quantize(what, w, rows, cfg, opt, par);
            Gptq.Result gpu;
            try (DeviceGptq d = DeviceGptq.fromHessian(cuda, h)) {
                gpu = d.quantize(what, w, rows, cfg, opt, par);
            }
            assertArrayEquals(cpu.weight().codes(), gpu.weight().codes(), what + ": codes");
            assertArrayEquals(cpu.weight().scales(), gpu.weight().scales(), 0f, what + ": scales");
            assertArrayEquals(cpu.weight().zeros(), gpu.weight().zeros(), 0f, what + ": zeros");
            assertEquals(cpu.weight(), gpu.weight(), what + ": the whole quantized weight (group index too)");
            assertEquals(cpu.loss(), gpu.loss(), 1e-12 * cpu.loss(), what + ": loss");
            assertEquals(cpu.percdamp(), gpu.percdamp(), what + ": damping");
            assertEquals(cpu.deadColumns(), gpu.deadColumns(), what + ": dead columns");
        }
    }

    @Test
    void groupsThatDoNotDivideTheRowNorTheBatch() {
        // 300 columns: groups of 128 end with one of 44; batches of 128 start inside no group but the last batch is 44 wide
        sameAsCpu("w4g128", 70, 300, QuantConfig.group(4, 128), DEFAULT, -1);
        // groups of 48 straddle the batches of 128: a group fitted in one batch reads columns of the next
        sameAsCpu("w3g48", 40, 300, QuantConfig.group(3, 48), DEFAULT, -1);
        // narrow batches: several batches inside one group
        sameAsCpu("w4g128 block 32", 33, 200, QuantConfig.group(4, 128), DEFAULT.withBlockSize(32), -1);
    }

    @Test
    void actOrderWithDynamicAndStaticGroups() {
        sameAsCpu("act-order w4g64", 50, 256, QuantConfig.group(4, 64), DEFAULT.withActOrder(true), -1);
        sameAsCpu("act-order static w4g64", 50, 256, QuantConfig.group(4, 64), DEFAULT.withActOrder(true).withStaticGroups(true), -1);
        sameAsCpu("static w2g32", 50, 160, QuantConfig.group(2, 32), DEFAULT.withStaticGroups(true), -1);
    }

    @Test
    void perChannelPerTensorSymmetricFloatMinAndMseGrids() {
        sameAsCpu("per-channel w4", 64, 192, QuantConfig.perChannel(4), DEFAULT, -1);
        sameAsCpu("per-tensor w8", 16, 96, QuantConfig.perTensor(8), DEFAULT, -1);
        sameAsCpu("symmetric w4g64", 48, 192, QuantConfig.group(4, 64).withSymmetric(true), DEFAULT.withActOrder(true), -1);
        sameAsCpu("q4_1 (float min) g32", 48, 192, QuantConfig.q4_1(), DEFAULT, -1);
        sameAsCpu("mse clip w3g64 f32 scales", 32, 192,
                QuantConfig.group(3, 64).withMseClip(true).withScaleFormat(QuantConfig.ScaleFormat.F32), DEFAULT, -1);
    }

    @Test
    void deadColumnsAreZeroedAsOnTheCpu() {
        sameAsCpu("dead column 17", 40, 160, QuantConfig.group(4, 32), DEFAULT, 17);
        sameAsCpu("dead column 17, act-order", 40, 160, QuantConfig.group(4, 32), DEFAULT.withActOrder(true), 17);
    }

    /** The whole-model path (DeviceGptq per input inside the sequential protocol) gives the CPU's quantized model. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "opt"})
    void wholeModelOnTheDeviceIsTheCpuModel(String family) throws Exception {
        GpuAvailable.require();
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + family).toURI());
        QuantConfig cfg = QuantConfig.group(4, 16);
        QuantizedModel cpu, gpu;
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[][] windows = windows(model, 3, 32);
            cpu = new GptqQuantizer(cfg, n -> cfg, DEFAULT.withActOrder(true), true, Device.CPU).quantize(model, windows, Progress.NONE);
        }
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[][] windows = windows(model, 3, 32);
            gpu = new GptqQuantizer(cfg, n -> cfg, DEFAULT.withActOrder(true), true, Device.CUDA).quantize(model, windows, Progress.NONE);
        }
        assertEquals(cpu.weights().keySet(), gpu.weights().keySet());
        for (String name : cpu.weights().keySet())
            assertEquals(cpu.weights().get(name), gpu.weights().get(name), family + " " + name + ": quantized weight");
    }

    private static int[][] windows(Transformer model, int count, int length) {
        SplittableRandom rnd = new SplittableRandom(5);
        int[][] w = new int[count][length];
        for (int[] win : w)
            for (int i = 0; i < length; i++) win[i] = rnd.nextInt(model.config().vocabSize());
        return w;
    }
}
