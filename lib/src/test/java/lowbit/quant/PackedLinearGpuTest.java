package lowbit.quant;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.GpuAvailable;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import lowbit.tensor.PackedMatrix;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The fused dequantize-GEMM (kernels/dequant_gemm.cu through {@link PackedLinear}) against its CPU twin,
 * {@link QuantizedWeight#dequantize()} then {@link PackedMatrix#multiply}: for 2/3/4/8-bit codes, symmetric and
 * asymmetric integer zeros, float mins, non-integer zeros (the FP64 path), groups of 128 and of 48 (groups that split a
 * 32-code chunk), per channel, per tensor and act-order group indices, on odd shapes, at 1, 4, 7 and 16 rows (the GEMV kernels)
 * and 17 and 64 rows (tiled kernel). Products: within 1e-5 of sum_k |x_k w_k| (the sum order differs). Weights: an
 * identity x reads W back through each kernel, bit for bit.
 */
@Tag("gpu")
class PackedLinearGpuTest {
    private static Cuda cuda;

    @BeforeEach
    void gpu() {
        cuda = GpuAvailable.require();
    }

    record Case(String what, QuantizedWeight w) {}

    private static List<Case> cases(int out, int in, long seed) {
        Random r = new Random(seed);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) w[i] = (float) (r.nextGaussian() * 0.05 * (i % 97 == 0 ? 20 : 1));
        List<Case> cases = new ArrayList<>();
        for (int bits : new int[] {2, 3, 4, 8}) {
            cases.add(new Case("asym g128 b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.group(bits, 128))));
            cases.add(new Case("sym g128 b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.group(bits, 128).withSymmetric(true))));
            cases.add(new Case("asym g48 b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.group(bits, 48))));
            cases.add(new Case("per-channel b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.perChannel(bits))));
            cases.add(new Case("per-tensor b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.perTensor(bits))));
            cases.add(new Case("float-min g32 b" + bits, Rtn.quantize("w", w, out, in,
                    new QuantConfig(bits, false, 32, ZeroPoint.FLOAT_MIN, ScaleFormat.F16, false))));
            cases.add(new Case("absmax per-channel b" + bits, Rtn.quantize("w", w, out, in, QuantConfig.absmaxPerChannel(bits))));
            QuantizedWeight g = Rtn.quantize("w", w, out, in, QuantConfig.group(bits, 32));
            // act-order: a column's group given by an index (a shuffled assignment of the same groups)
            int[] index = new int[in];
            for (int c = 0; c < in; c++) index[c] = c / 32;
            for (int c = in - 1; c > 0; c--) {
                int j = r.nextInt(c + 1), t = index[c];
                index[c] = index[j];
                index[j] = t;
            }
            cases.add(new Case("act-order g32 b" + bits, new QuantizedWeight(out, in, g.config(), g.packedCodes(), g.scales(), g.zeros(), index)));
            float[] z = g.zeros().clone();
            for (int i = 0; i < z.length; i++) z[i] += 0.375f;   // non-integer zeros: the kernel's double path
            cases.add(new Case("fractional zeros g32 b" + bits, new QuantizedWeight(out, in, g.config(), g.packedCodes(), g.scales(), z, null)));
        }
        return cases;
    }

    @Test
    void productsMatchDequantizeThenMultiply() {
        int[][] shapes = {{37, 200}, {64, 256}, {70, 576}};
        try (Parallel par = new Parallel(2)) {
            for (int[] shape : shapes) {
                int out = shape[0], in = shape[1];
                Random r = new Random(out * 31L + in);
                float[] bias = new float[out];
                for (int i = 0; i < out; i++) bias[i] = (float) r.nextGaussian();
                for (Case c : cases(out, in, out + in)) {
                    float[] wd = c.w().dequantize();
                    PackedMatrix cpu = PackedMatrix.pack(wd, out, in);
                    try (PackedLinear gpu = PackedLinear.upload(cuda, c.what(), c.w(), bias)) {
                        for (int rows : new int[] {1, 4, 7, 16, 17, 64}) {
                            float[] x = new float[rows * in];
                            for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
                            float[] want = new float[rows * out];
                            cpu.multiply(x, rows, want, bias, par);
                            float[] got = run(gpu, x, rows);
                            for (int m = 0; m < rows; m++)
                                for (int n = 0; n < out; n++) {
                                    double scale = Math.abs(bias[n]);
                                    for (int k = 0; k < in; k++) scale += Math.abs((double) x[m * in + k] * wd[n * in + k]);
                                    float g = got[m * out + n], e = want[m * out + n];
                                    assertTrue(Math.abs(g - e) <= 1e-5 * scale + 1e-30, c.what() + " " + out + "x" + in + " rows=" + rows
                                            + ": y[" + m + "][" + n + "] GPU " + g + " CPU " + e + " (scale " + scale + ")");
                                }
                        }
                    }
                }
            }
        }
    }

    @Test
    void identityInputReadsTheDequantizedWeightsBitForBit() {
        int out = 45, in = 160;
        for (Case c : cases(out, in, 7)) {
            float[] wd = c.w().dequantize();
            try (PackedLinear gpu = PackedLinear.upload(cuda, c.what(), c.w(), null)) {
                // all 160 unit rows at once (tiled kernel), then 16, 3 and 1 at a time (the three GEMV kernels)
                for (int step : new int[] {in, PackedLinear.GEMV_ROWS, 3, 1}) {
                    for (int k0 = 0; k0 < in; k0 += step) {
                        int rows = Math.min(step, in - k0);
                        float[] x = new float[rows * in];
                        for (int m = 0; m < rows; m++) x[m * in + k0 + m] = 1f;
                        float[] got = run(gpu, x, rows);
                        for (int m = 0; m < rows; m++)
                            for (int n = 0; n < out; n++) {
                                float want = wd[n * in + k0 + m] + 0f;   // the sum starts at +0, so -0.0 reads back as +0.0
                                assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[m * out + n]),
                                        c.what() + " (" + (rows > PackedLinear.GEMV_ROWS ? "tiled" : "GEMV") + " kernel): W[" + n + "][" + (k0 + m)
                                                + "] GPU " + got[m * out + n] + " CPU " + want);
                            }
                    }
                }
            }
        }
    }

    private static float[] run(PackedLinear l, float[] x, int rows) {
        try (DeviceBuffer dx = cuda.upload(x, "x"); DeviceBuffer dy = cuda.floats((long) rows * l.outFeatures(), "y")) {
            l.apply(dx.pointer(), rows, dy.pointer());
            cuda.synchronize();
            return dy.download(new float[rows * l.outFeatures()]);
        }
    }
}
