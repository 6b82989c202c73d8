package lowbit.cuda;

import jcuda.driver.CUdeviceptr;
import lowbit.tensor.WeightFormat;

/**
 * A dense linear layer on the GPU: W [out][in] held in fp32 or bf16 (rounded to nearest even, as
 * {@link WeightFormat#toBf16(float)}), the bias in fp32, with fp32 accumulation. In fp32, kernels/gemm.cu's FMAs match
 * {@link lowbit.tensor.PackedMatrix#multiply} up to summation order. In bf16, fewer than {@value #TENSOR_CORE_ROWS}
 * rows go to gemm.cu too, which computes exactly what the CPU's bf16 weights give (the rounded weights times fp32
 * activations); from {@value #TENSOR_CORE_ROWS} rows on, kernels/gemm_tc.cu multiplies on the tensor cores, which
 * round the activations to bf16 as well (as transformers in bf16 does): each product then departs from the CPU's bf16
 * path by up to 2^-9 relative more, well inside the 2e-2 relative on bf16 log-probs.
 */
public final class DenseLinear implements DeviceLinear {
    private static final int TILE = 64;  // gemm.cu's TILE_R and TILE_O
    private static final int TC_ROWS = 128, TC_OUT = 64;  // gemm_tc.cu's TC_R and TC_O
    /** From this many rows bf16 products run on the tensor cores: fewer leave most of a 128-row tile empty. */
    public static final int TENSOR_CORE_ROWS = 64;

    private final Cuda cuda;
    private final String name;
    private final int out, in;
    private final WeightFormat format;
    private final DeviceBuffer weight, bias;

    private DenseLinear(Cuda cuda, String name, int out, int in, WeightFormat format, DeviceBuffer weight, DeviceBuffer bias) {
        this.cuda = cuda;
        this.name = name;
        this.out = out;
        this.in = in;
        this.format = format;
        this.weight = weight;
        this.bias = bias;
    }

    /** Copies {@code weight} [out][in] (and {@code bias} [out], or null) to the GPU in {@code format}. */
    public static DenseLinear upload(Cuda cuda, String name, float[] weight, int out, int in, float[] bias, WeightFormat format) {
        if (out <= 0 || in <= 0 || weight.length != (long) out * in)
            throw new IllegalArgumentException(name + ": a weight of " + weight.length + " values is not " + out + " x " + in);
        if (bias != null && bias.length != out)
            throw new IllegalArgumentException(name + ": a bias of " + bias.length + " values for " + out + " outputs");
        DeviceBuffer w = null, b = null;
        try {
            if (format == WeightFormat.FP32) {
                w = cuda.upload(weight, name + ".weight");
            } else {
                w = cuda.allocate(2L * weight.length, name + ".weight (bf16)").upload(WeightFormat.toBf16(weight));
            }
            if (bias != null) b = cuda.upload(bias, name + ".bias");
            return new DenseLinear(cuda, name, out, in, format, w, b);
        } catch (RuntimeException e) {
            if (w != null) w.close();
            throw e;
        }
    }

    public String name() {
        return name;
    }

    public WeightFormat format() {
        return format;
    }

    @Override
    public int outFeatures() {
        return out;
    }

    @Override
    public int inFeatures() {
        return in;
    }

    @Override
    public long bytes() {
        return weight.bytes() + (bias == null ? 0 : bias.bytes());
    }

    @Override
    public void apply(CUdeviceptr x, int rows, CUdeviceptr y) {
        if (rows <= 0) return;
        if (format == WeightFormat.BF16 && rows >= TENSOR_CORE_ROWS) {
            cuda.kernel("gemm_tc", "gemm_bf16_tc").launch(
                    Kernel.Grid.of((out + TC_OUT - 1) / TC_OUT, (rows + TC_ROWS - 1) / TC_ROWS, 256, 0), x, weight, bias, y, rows, out, in);
            return;
        }
        Kernel k = cuda.kernel("gemm", format == WeightFormat.FP32 ? "gemm_f32" : "gemm_bf16");
        k.launch(Kernel.Grid.of((out + TILE - 1) / TILE, (rows + TILE - 1) / TILE, 256, 0), x, weight, bias, y, rows, out, in);
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) bias.close();
    }

    @Override
    public String toString() {
        return name + " [" + out + "x" + in + ", " + format.label() + "]";
    }
}
