package lowbit.quant;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;
import lowbit.cuda.Device;
import lowbit.cuda.DeviceLinear;

import jcuda.driver.CUdeviceptr;

/**
 * A quantized linear layer kept packed on the GPU and multiplied by the fused dequantize-GEMM of
 * kernels/dequant_gemm.cu: the weights it multiplies by are exactly {@link QuantizedWeight#dequantize()}'s, so its CPU
 * twin is that dequantization followed by {@link lowbit.tensor.PackedMatrix#multiply}. Up to {@link #GEMV_ROWS} rows
 * take the GEMV kernel (each code read once), more rows the tiled kernel.
 *
 * <p>The codes are re-laid at upload ({@link #deviceLayout}): each weight row padded to a multiple of 32 codes, so that
 * 32 codes are exactly {@code bits} 32-bit words and every row starts on a word. That is our BitPacking layout of the
 * padded code matrix, at the same bits per weight (plus under 32 codes of padding per row).
 */
public final class PackedLinear implements DeviceLinear {
    /** The most rows of x the GEMV kernel takes; more go to the tiled kernel. */
    public static final int GEMV_ROWS = 16;
    static final int CHUNK = 32;
    private static final int GEMV_WARPS = 4;
    private static final int TILE = 64;

    /** How the kernel dequantizes (kernels/dequant_gemm.cu's MODE_*): which float arithmetic reproduces the CPU's. */
    enum Mode {
        /** Integer zeros (or the symmetric grid's fixed zero) small enough that scale * (code - zero) is one float multiply. */
        INT,
        /** Float mins: (float) (scale * code) + min. */
        FMIN,
        /** Any other zeros: the CPU's double arithmetic. */
        FP64
    }

    /** Zeros up to 2^20 in magnitude keep code - zero and its double product with a float scale exact (kernel comment). */
    private static final float INT_ZERO_LIMIT = 1 << 20;

    private final Cuda cuda;
    private final String name;
    private final int out, in, bits, groups, groupSize;
    private final boolean perTensor;
    private final float fixedZero;
    private final Mode mode;
    private final DeviceBuffer words, scales, zeros, groupIndex, bias;
    private final Kernel gemv1, gemv4, gemv16, gemm;

    private PackedLinear(Cuda cuda, String name, QuantizedWeight w, float[] bias) {
        this.cuda = cuda;
        this.name = name;
        QuantConfig cfg = w.config();
        this.out = w.rows();
        this.in = w.columns();
        this.bits = supportedBits(name, cfg.bits());
        this.groups = w.groups();
        this.groupSize = cfg.grouped() ? cfg.groupSize() : 0;
        this.perTensor = cfg.groupSize() == QuantConfig.PER_TENSOR;
        this.fixedZero = (cfg.maxq() + 1) / 2;
        this.mode = mode(cfg, w.zeros());
        if (w.groupIndex() != null)
            for (int c = 0; c < in; c++)
                if (w.groupIndex()[c] < 0 || w.groupIndex()[c] >= groups)   // the kernel would read outside the scales
                    throw new IllegalArgumentException(name + ": group index of column " + c + " is " + w.groupIndex()[c]
                            + ", expected 0.." + (groups - 1));
        if (bias != null && bias.length != out)
            throw new IllegalArgumentException(name + ": bias has " + bias.length + " entries, expected " + out);
        // one GEMV kernel per bound on the rows (1, 4, 16), so that the small ones keep few registers
        this.gemv1 = cuda.kernel("dequant_gemm", "dq_gemv1_b" + bits);
        this.gemv4 = cuda.kernel("dequant_gemm", "dq_gemv4_b" + bits);
        this.gemv16 = cuda.kernel("dequant_gemm", "dq_gemv16_b" + bits);
        this.gemm = cuda.kernel("dequant_gemm", "dq_gemm_b" + bits);
        cuda.require(bytesNeeded(w, bias != null), name + " (packed " + cfg.label() + ")");
        byte[] layout = deviceLayout(w);
        this.words = cuda.allocate(layout.length, name + " codes").upload(layout);
        this.scales = cuda.upload(w.scales(), name + " scales");
        this.zeros = w.zeros() == null ? null : cuda.upload(w.zeros(), name + " zeros");
        this.groupIndex = w.groupIndex() == null ? null : cuda.allocate(4L * in, name + " group index").upload(w.groupIndex());
        this.bias = bias == null ? null : cuda.upload(bias, name + " bias");
    }

    /**
     * Uploads {@code w} (its codes, scales, zeros or mins, act-order group index) and {@code bias} (nullable). Refuses,
     * in one line naming the layer, code widths the kernels do not have.
     */
    public static PackedLinear upload(Cuda cuda, String name, QuantizedWeight w, float[] bias) {
        return new PackedLinear(cuda, name, w, bias);
    }

    static int supportedBits(String name, int bits) {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8)
            throw new IllegalArgumentException(name + ": the GPU's dequantize-GEMM takes 2, 3, 4 or 8-bit codes, got " + bits
                    + " bits (use --device cpu)");
        return bits;
    }

    static Mode mode(QuantConfig cfg, float[] zeros) {
        if (cfg.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN) return Mode.FMIN;
        if (zeros == null) return Mode.INT;
        for (float z : zeros)
            if (z != Math.rint(z) || Math.abs(z) > INT_ZERO_LIMIT) return Mode.FP64;
        return Mode.INT;
    }

    /** Code words per weight row on the device: 32 codes take {@code bits} words. */
    static int rowWords(int columns, int bits) {
        return (columns + CHUNK - 1) / CHUNK * bits;
    }

    /**
     * The device layout of w's codes, as bytes (little-endian words): BitPacking of the code matrix with every row padded
     * by zero codes to a multiple of 32 columns.
     */
    static byte[] deviceLayout(QuantizedWeight w) {
        int cols = w.columns(), padded = (cols + CHUNK - 1) / CHUNK * CHUNK;
        byte[] codes = w.codes();
        if (padded == cols) return BitPacking.pack(codes, w.config().bits());
        byte[] wide = new byte[Math.multiplyExact(w.rows(), padded)];
        for (int r = 0; r < w.rows(); r++) System.arraycopy(codes, r * cols, wide, r * padded, cols);
        return BitPacking.pack(wide, w.config().bits());
    }

    /** Device bytes of w in this layout: codes, scales, zeros, group index and an optional bias. */
    public static long bytesNeeded(QuantizedWeight w, boolean withBias) {
        long b = 4L * w.rows() * rowWords(w.columns(), w.config().bits()) + 4L * w.scales().length;
        if (w.zeros() != null) b += 4L * w.zeros().length;
        if (w.groupIndex() != null) b += 4L * w.columns();
        if (withBias) b += 4L * w.rows();
        return b;
    }

    @Override
    public int outFeatures() {
        return out;
    }

    @Override
    public int inFeatures() {
        return in;
    }

    public int bits() {
        return bits;
    }

    /** Bytes one pass over the layer reads of the weight: codes, scales, zeros and group index (bias excluded). */
    public long weightBytes() {
        return words.bytes() + scales.bytes() + (zeros == null ? 0 : zeros.bytes()) + (groupIndex == null ? 0 : groupIndex.bytes());
    }

    @Override
    public long bytes() {
        return weightBytes() + (bias == null ? 0 : bias.bytes());
    }

    @Override
    public void apply(CUdeviceptr x, int rows, CUdeviceptr y) {
        if (rows < 0) throw new IllegalArgumentException(name + ": " + rows + " rows");
        if (rows == 0) return;
        Object[] args = {words, scales, zeros, groupIndex, out, in, groups, groupSize, perTensor ? 1 : 0, fixedZero, mode.ordinal(),
                x, rows, bias, y};
        if (rows <= GEMV_ROWS) {
            (rows == 1 ? gemv1 : rows <= 4 ? gemv4 : gemv16).launch(Kernel.Grid.of((out + GEMV_WARPS - 1) / GEMV_WARPS, 32 * GEMV_WARPS), args);
        } else {
            gemm.launch(Kernel.Grid.of((out + TILE - 1) / TILE, (rows + TILE - 1) / TILE, 256, 0), args);
        }
    }

    @Override
    public String toString() {
        return "PackedLinear[" + name + " " + out + "x" + in + ", " + bits + "-bit codes, " + mode + "]";
    }

    @Override
    public void close() {
        words.close();
        scales.close();
        if (zeros != null) zeros.close();
        if (groupIndex != null) groupIndex.close();
        if (bias != null) bias.close();
    }
}
