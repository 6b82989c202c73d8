package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import lowbit.tensor.PackedMatrix;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * kernels/gemm.cu through {@link DenseLinear} against the CPU's {@link PackedMatrix#multiply}, on shapes that are not
 * multiples of the 64 x 64 tiles or the 16-wide k steps: fp32 weights to 1e-5 (summation order only), bf16 weights
 * equal to the CPU with the same bf16-rounded weights to 1e-5 and within 2e-2 relative of fp32. The bf16 case stays
 * below {@link DenseLinear#TENSOR_CORE_ROWS} rows, where gemm.cu keeps the activations in fp32 (TensorCoreGemmGpuTest
 * covers the tensor-core path).
 */
@Tag("gpu")
public class DenseLinearGpuTest {
    private static final int ROWS = 70, OUT = 96, IN = 200, SIMT_BF16_ROWS = DenseLinear.TENSOR_CORE_ROWS - 1;

    public static float[] random(int n, double scale, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        return a;
    }

    private static float[] cpu(int rows, float[] w, float[] x, float[] bias) {
        float[] y = new float[rows * OUT];
        try (Parallel par = new Parallel(1)) {
            PackedMatrix.pack(w, OUT, IN).multiply(x, rows, y, bias, par);
        }
        return y;
    }

    private static float[] gpu(Cuda cuda, int rows, float[] w, float[] x, float[] bias, WeightFormat format) {
        try (DenseLinear d = DenseLinear.upload(cuda, "test", w, OUT, IN, bias, format);
             DeviceBuffer xb = cuda.upload(x, "x"); DeviceBuffer yb = cuda.floats((long) rows * OUT, "y")) {
            assertEquals((long) OUT * IN * format.bytes + (bias == null ? 0 : 4L * OUT), d.bytes());
            d.apply(xb.pointer(), rows, yb.pointer());
            return yb.download(new float[rows * OUT]);
        }
    }

    private static void assertClose(float[] expected, float[] actual, double tol, String what) {
        for (int i = 0; i < expected.length; i++)
            assertTrue(Math.abs(expected[i] - actual[i]) <= tol * Math.max(1, Math.abs(expected[i])),
                    what + ": element " + i + " (row " + i / OUT + ", output " + i % OUT + ") CPU " + expected[i] + ", GPU " + actual[i]);
    }

    @Test
    void fp32WeightsMatchTheCpuProduct() {
        Cuda cuda = GpuAvailable.require();
        float[] w = random(OUT * IN, 0.1, 1), x = random(ROWS * IN, 1, 2), b = random(OUT, 0.5, 3);
        assertClose(cpu(ROWS, w, x, b), gpu(cuda, ROWS, w, x, b, WeightFormat.FP32), 1e-5, "gemm_f32 with bias");
        assertClose(cpu(ROWS, w, x, null), gpu(cuda, ROWS, w, x, null, WeightFormat.FP32), 1e-5, "gemm_f32 without bias");
    }

    @Test
    void bf16WeightsAreTheCpuProductOfTheRoundedWeights() {
        Cuda cuda = GpuAvailable.require();
        float[] w = random(OUT * IN, 0.1, 4), x = random(SIMT_BF16_ROWS * IN, 1, 5), b = random(OUT, 0.5, 6);
        float[] rounded = w.clone();
        for (int i = 0; i < rounded.length; i++) rounded[i] = WeightFormat.BF16.round(w[i]);
        float[] y = gpu(cuda, SIMT_BF16_ROWS, w, x, b, WeightFormat.BF16);
        assertClose(cpu(SIMT_BF16_ROWS, rounded, x, b), y, 1e-5, "gemm_bf16 against the CPU with the same bf16 weights");
        float[] exact = cpu(SIMT_BF16_ROWS, w, x, b);
        double num = 0, den = 0;
        for (int i = 0; i < y.length; i++) {
            num += (y[i] - exact[i]) * (double) (y[i] - exact[i]);
            den += exact[i] * (double) exact[i];
        }
        assertTrue(Math.sqrt(num / den) < 2e-2, "gemm_bf16 against fp32 weights: relative error " + Math.sqrt(num / den));
    }
}
