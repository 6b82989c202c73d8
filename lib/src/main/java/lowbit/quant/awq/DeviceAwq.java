package lowbit.quant.awq;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;



/**
 * AWQ's scale-search loss on the GPU (kernels/awq.cu) for a scaling group whose loss module is one linear (v -> o,
 * up -> down, OPT's fc1 and fc1 -> fc2): the calibration inputs and the float module's outputs are uploaded once per
 * group, then each candidate alpha costs one upload of its weight Q(W s) / s and one fused kernel, y = x Wq^T + b and
 * the mean squared error to the float output over every token, the tokens x out x in products the CPU search spends its
 * time on. Wq itself is made on the host by lowbit.quant.Rtn, the one RTN grid, so the candidate weights are the CPU
 * search's exactly; products accumulate in float32 in another order than the CPU's, so losses agree to about 1e-6
 * relative, and the chosen alpha is the CPU's unless two alphas' losses are that close.
 */
public final class DeviceAwq implements AutoCloseable {
    private static final int TILE = 64;

    private final Cuda cuda;
    private final String what;
    private final long tokens;
    private final int in, out;
    private final DeviceBuffer x, ref, weight, bias, partial;

    private DeviceAwq(Cuda cuda, String what, long tokens, int in, int out, DeviceBuffer x, DeviceBuffer ref, DeviceBuffer weight,
                      DeviceBuffer bias, DeviceBuffer partial) {
        this.cuda = cuda;
        this.what = what;
        this.tokens = tokens;
        this.in = in;
        this.out = out;
        this.x = x;
        this.ref = ref;
        this.weight = weight;
        this.bias = bias;
        this.partial = partial;
    }

    /**
     * The loss module's inputs (one [T][in] array per calibration window) and its float outputs ([T][out] each), uploaded;
     * {@code bias} (nullable, length out) is the linear's, fixed during the search.
     */
    public static DeviceAwq upload(Cuda cuda, String what, float[][] inputs, int in, float[][] reference, int out, float[] bias) {
        if (inputs.length == 0 || inputs.length != reference.length)
            throw new IllegalArgumentException(what + ": " + inputs.length + " input windows and " + reference.length + " output windows");
        long tokens = 0;
        for (int i = 0; i < inputs.length; i++) {
            if (inputs[i].length % in != 0 || reference[i].length != (long) inputs[i].length / in * out)
                throw new IllegalArgumentException(what + ": window " + i + " has " + inputs[i].length + " inputs and " + reference[i].length
                        + " outputs, expected T x " + in + " and T x " + out);
            tokens += inputs[i].length / in;
        }
        if (bias != null && bias.length != out) throw new IllegalArgumentException(what + ": bias of " + bias.length + ", expected " + out);
        long blocks = (long) ((out + TILE - 1) / TILE) * ((tokens + TILE - 1) / TILE);
        cuda.require(4L * tokens * (in + out) + 4L * out * in + (bias == null ? 0 : 4L * out) + 8L * blocks,
                what + ": AWQ's scale search on " + tokens + " tokens");
        DeviceBuffer x = null, ref = null, weight = null, b = null, partial = null;
        try {
            x = stack(cuda, inputs, 4L * tokens * in, what + " calibration inputs");
            ref = stack(cuda, reference, 4L * tokens * out, what + " float outputs");
            weight = cuda.floats((long) out * in, what + " candidate weight");
            b = bias == null ? null : cuda.upload(bias, what + " bias");
            partial = cuda.allocate(8L * blocks, what + " loss partial sums");
            return new DeviceAwq(cuda, what, tokens, in, out, x, ref, weight, b, partial);
        } catch (RuntimeException e) {
            for (DeviceBuffer d : new DeviceBuffer[] {x, ref, weight, b, partial}) if (d != null) d.close();
            throw e;
        }
    }

    private static DeviceBuffer stack(Cuda cuda, float[][] windows, long bytes, String what) {
        DeviceBuffer d = cuda.allocate(bytes, what);
        long off = 0;
        for (float[] w : windows) {
            d.upload(off, w);
            off += 4L * w.length;
        }
        return d;
    }

    public long tokens() {
        return tokens;
    }

    /** Mean over every output element of (x w^T + b - reference)^2, for w [out][in] (the candidate Q(W s) / s). */
    public double loss(float[] w) {
        if (w.length != (long) out * in) throw new IllegalArgumentException(what + ": candidate weight of " + w.length + ", expected " + out + "x" + in);
        weight.upload(w);
        int gx = (out + TILE - 1) / TILE, gy = (int) ((tokens + TILE - 1) / TILE);
        cuda.kernel("awq", "awq_loss").launch(new Kernel.Grid(gx, gy, 1, 256, 1, 1, 0), x, tokens, in, weight, out, bias, ref, partial);
        double[] sums = partial.download(new double[gx * gy]);
        double s = 0;
        for (double v : sums) s += v;
        return s / (tokens * out);
    }

    @Override
    public void close() {
        for (DeviceBuffer d : new DeviceBuffer[] {x, ref, weight, bias, partial}) if (d != null) d.close();
    }
}
