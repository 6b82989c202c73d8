package lowbit.quant.activation;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.GpuAvailable;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * Activation and KV fake quantization on the GPU ({@link DeviceFakeQuant}, kernels/quant.cu) against the CPU twins
 * ActivationQuantizer.quantizePerToken / quantizeWithScale and KvCacheQuantizer.quantizeGroups (Grid.QLLM_EVAL). Both
 * compute in double and round once to float, so the comparison is bit for bit (NaN compared as NaN), on inputs with
 * outliers, exact ties (values at k + 1/2 steps of the grid), zero rows, constant groups and NaN rows and groups.
 */
@Tag("gpu")
class DeviceFakeQuantGpuTest {
    private static Cuda cuda;

    @BeforeEach
    void gpu() {
        cuda = GpuAvailable.require();
    }

    private static float[] activations(int rows, int cols, long seed, int bits) {
        Random r = new Random(seed);
        float[] x = new float[rows * cols];
        for (int i = 0; i < x.length; i++) x[i] = (float) (r.nextGaussian() * (r.nextInt(50) == 0 ? 30 : 1));
        // row 1: exact ties: absmax qmax makes the scale exactly 1, so +-0.5, +-1.5, 2.5 are half steps (rint: to even)
        if (rows > 1) {
            for (int c = 0; c < cols; c++) x[cols + c] = (c % 5 - 2) + 0.5f;
            x[cols] = (1 << (bits - 1)) - 1;
        }
        if (rows > 2) for (int c = 0; c < cols; c++) x[2 * cols + c] = 0f;   // an all-zero row: the 1e-5 floor
        if (rows > 3) x[3 * cols + cols / 2] = Float.NaN;                      // a NaN row stays NaN
        if (rows > 4) x[4 * cols] = -0.0f;
        return x;
    }

    @Test
    void perTokenMatchesTheCpuBitForBit() {
        for (int b = 2; b <= 8; b++)
            for (int[] shape : new int[][] {{5, 1}, {7, 576}, {33, 1537}, {4, 8192}}) {
                int bits = b, rows = shape[0], cols = shape[1];
                float[] x = activations(rows, cols, bits * 100L + cols, bits);
                float[] want = x.clone();
                ActivationQuantizer.quantizePerToken(want, rows, cols, bits);
                float[] got = onGpu(x, d -> DeviceFakeQuant.perToken(cuda, d, rows, cols, bits));
                same(want, got, "per-token a" + bits + " " + rows + "x" + cols);
            }
    }

    @Test
    void perTensorMatchesTheCpuBitForBit() {
        for (int b = 2; b <= 8; b++) {
            int bits = b, rows = 9, cols = 300;
            float[] x = activations(rows, cols, bits, bits);
            float scale = (float) (2.5 / ((1 << (bits - 1)) - 1));   // clips the outliers
            float[] want = x.clone();
            ActivationQuantizer.quantizeWithScale(want, 0, rows * cols, scale, (1 << (bits - 1)) - 1);
            float[] got = onGpu(x, d -> DeviceFakeQuant.perTensor(cuda, d, rows, cols, bits, scale));
            same(want, got, "per-tensor a" + bits);
        }
    }

    @Test
    void kvMatchesTheCpuBitForBit() {
        int rows = 21, heads = 3, headDim = 64;
        for (int bits : new int[] {2, 3, 4, 8})
            for (int group : new int[] {64, 32, 16, 8}) {
                int n = rows * heads * headDim;
                Random r = new Random(bits * 1000L + group);
                float[] x = new float[n];
                for (int i = 0; i < n; i++) x[i] = (float) (r.nextGaussian() * (i % 61 == 0 ? 8 : 1));
                for (int i = 0; i < group; i++) x[group + i] = 0.5f;          // a constant group stays exact
                for (int i = 0; i < group; i++) x[2 * group + i] = i % 2 == 0 ? 1.5f : 3f;   // one sign: the zero point clamps
                x[5 * group + 1] = Float.NaN;                                 // a NaN group stays NaN
                float[] want = x.clone();
                KvCacheQuantizer.quantizeGroups(want, n, group, bits, KvCacheQuantizer.Grid.QLLM_EVAL);
                float[] got = onGpu(x, d -> DeviceFakeQuant.kv(cuda, d, rows, heads, headDim, bits, group));
                same(want, got, "kv" + bits + " group " + group);
            }
    }

    private static float[] onGpu(float[] x, java.util.function.Consumer<jcuda.driver.CUdeviceptr> op) {
        try (DeviceBuffer d = cuda.upload(x, "x")) {
            op.accept(d.pointer());
            cuda.synchronize();
            return d.download(new float[x.length]);
        }
    }

    private static void same(float[] want, float[] got, String what) {
        for (int i = 0; i < want.length; i++) {
            if (Float.isNaN(want[i]) && Float.isNaN(got[i])) continue;
            assertEquals(Float.floatToRawIntBits(want[i]), Float.floatToRawIntBits(got[i]),
                    what + ": element " + i + " GPU " + got[i] + " CPU " + want[i]);
        }
    }
}
