package lowbit.quant;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;


/**
 * Round-to-nearest on the GPU: kernels/quant.cu's rtn_fit_codes, twin of {@link Rtn#quantize}. One block per group
 * (a row's group of columns, a whole row per channel, or the whole tensor per tensor) fits {@link
 * lowbit.quant.UniformQuantizer#fit}'s grid in double with the same arithmetic, so the codes, scales and zeros are the
 * CPU's exactly. One documented exception: with the MSE clip search, each candidate's error is a sum of
 * |x - q(x)|^2.4, and CUDA's pow and Java's Math.pow may differ in the last bit, so where two shrinks' errors are that
 * close the GPU may keep the other one (a tie within rounding; the kernel sums in the CPU's order, so nothing else differs).
 */
public final class DeviceRtn {
    private static final int THREADS = 128;   // at least the MSE search's 80 candidates, one per thread

    private DeviceRtn() {}

    /** Quantizes W [rows][cols] with {@code cfg}; NaN or Inf in W is refused naming the tensor, as on the CPU. */
    public static QuantizedWeight quantize(Cuda cuda, String name, float[] weight, int rows, int cols, QuantConfig cfg) {
        Rtn.checkWeight(name, weight, rows, cols);
        boolean perTensor = cfg.groupSize() == QuantConfig.PER_TENSOR;
        int groups = cfg.groupsPerRow(cols);
        int params = (perTensor ? 1 : rows) * groups;
        long n = (long) rows * cols;
        cuda.require(5 * n + 8L * params, name + " (RTN on the GPU)");
        byte[] codes = new byte[Math.toIntExact(n)];
        float[] scales = new float[params];
        float[] zeros = cfg.symmetric() ? null : new float[params];
        try (DeviceBuffer w = cuda.upload(weight, name);
             DeviceBuffer s = cuda.floats(params, name + " scales");
             DeviceBuffer z = cfg.symmetric() ? null : cuda.floats(params, name + " zeros");
             DeviceBuffer c = cuda.allocate(n, name + " codes")) {
            cuda.kernel("quant", "rtn_fit_codes").launch(Kernel.Grid.of(perTensor ? 1 : params, THREADS), w, rows, cols,
                    cfg.grouped() ? cfg.groupSize() : 0, perTensor ? 1 : 0, cfg.zeroPoint().ordinal(), cfg.maxq(), cfg.symmetric() ? 1 : 0,
                    cfg.scaleFormat() == QuantConfig.ScaleFormat.F16 ? 1 : 0, cfg.mseClip() ? 1 : 0, s, z, c);
            c.download(codes);
            s.download(scales);
            if (z != null) z.download(zeros);
        }
        return new QuantizedWeight(rows, cols, cfg, BitPacking.pack(codes, cfg.bits()), scales, zeros, null);
    }
}
