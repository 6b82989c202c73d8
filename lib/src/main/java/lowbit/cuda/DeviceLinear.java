package lowbit.cuda;

import lowbit.quant.PackedLinear;

import jcuda.driver.CUdeviceptr;

/**
 * A linear layer resident on the GPU, y[rows][out] = x[rows][in] W^T (+ bias), activations in float32 and products
 * accumulated in float32: dense weights in fp32 or bf16 ({@link DenseLinear}), or packed 2/3/4/8-bit codes with their
 * group scales and zeros, multiplied by the fused dequantize-GEMM ({@link PackedLinear}).
 */
public interface DeviceLinear extends AutoCloseable {
    int outFeatures();

    int inFeatures();

    /** Device memory held (weights, scales, zeros, bias). */
    long bytes();

    /** y = x W^T + b on the default stream; y [rows][out] is overwritten, x [rows][in] is read. */
    void apply(CUdeviceptr x, int rows, CUdeviceptr y);

    @Override
    void close();
}
