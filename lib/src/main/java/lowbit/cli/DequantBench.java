package lowbit.cli;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUresult;
import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.quant.PackedLinear;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * `bench dequant`: the fused dequantize-GEMM ({@link PackedLinear#apply}) on the GPU, for 2/3/4/8-bit codes in groups of
 * 128, on the default model's linear shapes and a 7B layer's, at 1, 16 and 2048 rows. Prints the bytes moved per second
 * (codes, scales, zeros and activations read, outputs written), that as a share of the device's peak memory bandwidth
 * (2 x memory clock x bus width / 8, from the driver's attributes), and TFLOP/s. The weights are random codes and scales:
 * speed does not depend on their values.
 */
@Command(name = "dequant", mixinStandardHelpOptions = true,
        description = "GB/s and % of peak memory bandwidth of the GPU's fused dequantize-GEMM (packed 2/3/4/8-bit codes, "
                + "group 128) on the default model's and a 7B layer's shapes at 1, 16 and 2048 rows, and TFLOP/s. Needs a GPU.")
final class DequantBench implements Callable<Integer> {
    /** out x in of the default model's (SmolLM2-135M) linears, then a 7B (LLaMA-7B) layer's. */
    static final Map<String, int[]> SHAPES = shapes();

    @Option(names = "--bits", split = ",", defaultValue = "2,3,4,8", paramLabel = "B,...", description = "code widths (default: ${DEFAULT-VALUE})")
    List<Integer> bits;

    @Option(names = "--rows", split = ",", defaultValue = "1,16,2048", paramLabel = "M,...", description = "rows of x (default: ${DEFAULT-VALUE})")
    List<Integer> rows;

    @Option(names = "--group", defaultValue = "128", paramLabel = "G", description = "group size (default: ${DEFAULT-VALUE})")
    int group;

    @Option(names = "--seconds", defaultValue = "0.2", paramLabel = "S", description = "timed seconds per case, after a warm-up (default: ${DEFAULT-VALUE})")
    double seconds;

    private static Map<String, int[]> shapes() {
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put("135m q/o 576x576", new int[] {576, 576});
        m.put("135m k/v 192x576", new int[] {192, 576});
        m.put("135m gate/up 1536x576", new int[] {1536, 576});
        m.put("135m down 576x1536", new int[] {576, 1536});
        m.put("7b q 4096x4096", new int[] {4096, 4096});
        m.put("7b up 11008x4096", new int[] {11008, 4096});
        m.put("7b down 4096x11008", new int[] {4096, 11008});
        return m;
    }

    @Override
    public Integer call() {
        for (int b : bits) if (b != 2 && b != 3 && b != 4 && b != 8) throw new IllegalArgumentException("--bits takes 2, 3, 4 or 8, got " + b);
        for (int r : rows) if (r < 1) throw new IllegalArgumentException("--rows must be >= 1, got " + r);
        if (group < 1) throw new IllegalArgumentException("--group must be >= 1, got " + group);
        if (!(seconds > 0)) throw new IllegalArgumentException("--seconds must be > 0, got " + seconds);
        Cuda cuda = Cuda.get();
        double peak = peakBytesPerSecond(cuda);
        System.out.printf(Locale.ROOT, "dequant  device=%s peak memory bandwidth=%s group=%d code=%s%n", cuda.describe(),
                peak > 0 ? String.format(Locale.ROOT, "%.0f GB/s", peak / 1e9) : "unknown (the driver did not report it)", group,
                CodeVersion.current());
        System.out.printf(Locale.ROOT, "%-24s %4s %5s %10s %9s %8s %8s%n", "shape", "bits", "rows", "us/call", "GB/s", "% peak", "TFLOP/s");
        Random random = new Random(0);
        for (var shape : SHAPES.entrySet()) {
            int out = shape.getValue()[0], in = shape.getValue()[1];
            for (int b : bits) {
                QuantizedWeight w = randomWeight(out, in, QuantConfig.group(b, group), random);
                try (PackedLinear l = PackedLinear.upload(cuda, shape.getKey(), w, null)) {
                    for (int m : rows) {
                        Timing t = time(cuda, l, m, seconds);
                        long bytes = l.weightBytes() + 4L * m * (in + out);
                        double gbs = bytes / t.secondsPerCall() / 1e9;
                        System.out.printf(Locale.ROOT, "%-24s %4d %5d %10.1f %9.1f %8s %8.2f%n", shape.getKey(), b, m,
                                t.secondsPerCall() * 1e6, gbs, peak > 0 ? String.format(Locale.ROOT, "%.1f%%", 100 * bytes / t.secondsPerCall() / peak) : "-",
                                2.0 * m * out * in / t.secondsPerCall() / 1e12);
                    }
                }
            }
        }
        return 0;
    }

    record Timing(int calls, double seconds) {
        double secondsPerCall() {
            return seconds / calls;
        }
    }

    /** Calls apply until {@code budget} seconds have passed (after three warm-up calls), synchronizing at the end. */
    private static Timing time(Cuda cuda, PackedLinear l, int rows, double budget) {
        float[] x = new float[rows * l.inFeatures()];
        Random r = new Random(rows);
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        try (DeviceBuffer dx = cuda.upload(x, "x"); DeviceBuffer dy = cuda.floats((long) rows * l.outFeatures(), "y")) {
            for (int i = 0; i < 3; i++) l.apply(dx.pointer(), rows, dy.pointer());
            cuda.synchronize();
            int calls = 0, batch = 1;
            long start = System.nanoTime(), end = start + (long) (budget * 1e9), now;
            do {
                for (int i = 0; i < batch; i++) l.apply(dx.pointer(), rows, dy.pointer());
                cuda.synchronize();
                calls += batch;
                batch = Math.min(batch * 2, 1024);
                now = System.nanoTime();
            } while (now < end);
            return new Timing(calls, (now - start) / 1e9);
        }
    }

    /** Random codes (every bit pattern is a valid code), positive fp16-exact scales and integer zeros. */
    static QuantizedWeight randomWeight(int out, int in, QuantConfig cfg, Random r) {
        byte[] packed = new byte[BitPacking.packedBytes((long) out * in, cfg.bits())];
        r.nextBytes(packed);
        int groups = cfg.groupsPerRow(in);
        float[] scales = new float[out * groups], zeros = new float[out * groups];
        for (int i = 0; i < scales.length; i++) {
            scales[i] = Float.float16ToFloat(Float.floatToFloat16((float) (0.001 + 0.01 * r.nextDouble())));
            zeros[i] = r.nextInt(cfg.maxq() + 1);
        }
        return new QuantizedWeight(out, in, cfg, packed, scales, zeros, null);
    }

    /** The device's peak memory bandwidth in bytes/s from the driver's attributes, or 0 when it does not report them. */
    static double peakBytesPerSecond(Cuda cuda) {
        cuda.makeCurrent();
        CUdevice device = new CUdevice();
        int[] clock = new int[1], width = new int[1];
        if (cuDeviceGet(device, 0) != CUresult.CUDA_SUCCESS   // Cuda opens the first device
                || cuDeviceGetAttribute(clock, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE, device) != CUresult.CUDA_SUCCESS
                || cuDeviceGetAttribute(width, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH, device) != CUresult.CUDA_SUCCESS)
            return 0;
        return peakBytesPerSecond(clock[0], width[0]);
    }

    /** Double data rate: 2 transfers per memory clock (reported in kHz) of busBits / 8 bytes. */
    static double peakBytesPerSecond(int memoryClockKHz, int busBits) {
        return 2.0 * memoryClockKHz * 1e3 * busBits / 8;
    }
}
