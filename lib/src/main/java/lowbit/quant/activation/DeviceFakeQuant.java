package lowbit.quant.activation;

import lowbit.cuda.Cuda;
import lowbit.cuda.Kernel;

import jcuda.driver.CUdeviceptr;

/**
 * Activation and KV-cache fake quantization on the GPU, in place on float32 device arrays: the kernels of
 * kernels/quant.cu, twins of {@link lowbit.quant.activation.ActivationQuantizer#quantizePerToken},
 * {@link lowbit.quant.activation.ActivationQuantizer#quantizeWithScale} and
 * {@link lowbit.quant.activation.KvCacheQuantizer#quantizeGroups} on {@code Grid.QLLM_EVAL}. The CPU computes each
 * scale and value in double and rounds once to float; the kernels do the same arithmetic in double, so the results are
 * the same floats, bit for bit (NaN rows and groups stay NaN, constant KV groups stay exact, as on the CPU).
 */
public final class DeviceFakeQuant {
    private static final int THREADS = 256;

    private DeviceFakeQuant() {}

    /** x [rows][cols] := each row on its own symmetric absmax grid of {@code bits} bits (per-token dynamic). */
    public static void perToken(Cuda cuda, CUdeviceptr x, int rows, int cols, int bits) {
        int qmax = qmax("activation", bits);
        checkShape(rows, cols);
        cuda.kernel("quant", "act_per_token").launch(Kernel.Grid.of(rows, THREADS), x, rows, cols, qmax, ActivationQuantizer.MIN_ABSMAX);
    }

    /** x [rows][cols] := scale * clamp(rint(x / scale), -qmax, qmax), one fixed (calibrated) scale for every element. */
    public static void perTensor(Cuda cuda, CUdeviceptr x, int rows, int cols, int bits, float scale) {
        int qmax = qmax("activation", bits);
        checkShape(rows, cols);
        if (!(scale > 0) || !Float.isFinite(scale))
            throw new IllegalArgumentException("static activation scale must be positive and finite, got " + scale);
        long n = (long) rows * cols;
        cuda.kernel("quant", "act_per_tensor").launch(Kernel.Grid.cover(n, THREADS), x, n, scale, qmax);
    }

    /**
     * Keys or values [rows][kvHeads][headDim] := every run of {@code groupSize} head dimensions on its own asymmetric
     * min-max grid (qllm-eval's pseudo_quantize_tensor).
     */
    public static void kv(Cuda cuda, CUdeviceptr x, int rows, int kvHeads, int headDim, int bits, int groupSize) {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("KV bits must be 2..8, got " + bits);
        checkShape(rows, kvHeads);
        if (headDim <= 0) throw new IllegalArgumentException("KV head dimension must be positive, got " + headDim);
        if (groupSize < 1 || headDim % groupSize != 0)
            throw new IllegalArgumentException("KV group size must divide headDim " + headDim + ", got " + groupSize);
        long groups = (long) rows * kvHeads * (headDim / groupSize);
        int maxint = (1 << bits) - 1;
        cuda.kernel("quant", "kv_groups").launch(Kernel.Grid.cover(groups * 32, THREADS), x, groups, groupSize, maxint, KvCacheQuantizer.MIN_RANGE);
    }

    private static int qmax(String what, int bits) {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException(what + " bits must be 2..8, got " + bits);
        return (1 << (bits - 1)) - 1;
    }

    private static void checkShape(int rows, int cols) {
        if (rows < 0 || cols <= 0) throw new IllegalArgumentException("fake quantization of a " + rows + " x " + cols + " array");
    }
}
