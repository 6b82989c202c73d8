package lowbit.quant.qat;

/**
 * Quantize-dequantize of a row-major [rows][cols] matrix, x' = s * (clamp(round(x / s) + z, qmin, qmax) - z),
 * with the straight-through estimator for its backward pass. The arithmetic is torch's CPU kernel for
 * fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine (so outputs agree bit for bit): x is
 * multiplied by the float 1/s rather than divided, rounded half to even, the zero point added in float,
 * and the gradient mask is taken on the code BEFORE clamping, inclusive at both bounds; a value whose code
 * rounds onto qmin or qmax still passes its gradient. Per-channel scales run along axis 0 (one per row);
 * per-group scales cover groupSize consecutive columns of a row, row-major, as per-channel on the matrix
 * reshaped to [rows * cols / groupSize][groupSize].
 */
public record FakeQuant(QuantRange range, Granularity granularity, int groupSize) {
    public enum Granularity { TENSOR, CHANNEL, GROUP }

    public FakeQuant {
        if (range == null || granularity == null) throw new IllegalArgumentException("fake-quant needs a range and a granularity");
        if (granularity == Granularity.GROUP ? groupSize < 1 : groupSize != 0)
            throw new IllegalArgumentException("fake-quant group size " + groupSize + " does not fit granularity " + granularity
                    + " (groups need a size >= 1, the others 0)");
    }

    public static FakeQuant perTensor(int bits, boolean symmetric) {
        return new FakeQuant(QuantRange.of(bits, symmetric), Granularity.TENSOR, 0);
    }

    public static FakeQuant perChannel(int bits, boolean symmetric) {
        return new FakeQuant(QuantRange.of(bits, symmetric), Granularity.CHANNEL, 0);
    }

    public static FakeQuant perGroup(int bits, boolean symmetric, int groupSize) {
        return new FakeQuant(QuantRange.of(bits, symmetric), Granularity.GROUP, groupSize);
    }

    /** How many (scale, zero point) pairs a [rows][cols] matrix needs. */
    public int paramCount(int rows, int cols) {
        return switch (granularity) {
            case TENSOR -> 1;
            case CHANNEL -> rows;
            case GROUP -> {
                if (cols % groupSize != 0)
                    throw new IllegalArgumentException("fake-quant group size " + groupSize + " does not divide " + cols + " columns");
                yield rows * (cols / groupSize);
            }
        };
    }

    public Result forward(float[] x, int rows, int cols, float[] scale, int[] zeroPoint) {
        if (rows < 1 || cols < 1 || x.length != (long) rows * cols)
            throw new IllegalArgumentException("fake-quant input has " + x.length + " values, expected " + rows + " x " + cols);
        int n = paramCount(rows, cols);
        if (scale.length != n || zeroPoint.length != n)
            throw new IllegalArgumentException("fake-quant " + granularity + " needs " + n + " scales and zero points, got "
                    + scale.length + " and " + zeroPoint.length);
        for (int p = 0; p < n; p++) {
            if (!(scale[p] > 0) || !Float.isFinite(scale[p]))
                throw new IllegalArgumentException("fake-quant scale[" + p + "] must be finite and > 0, got " + scale[p]);
            if (zeroPoint[p] < range.qmin() || zeroPoint[p] > range.qmax())
                throw new IllegalArgumentException("fake-quant zero point[" + p + "] = " + zeroPoint[p] + " is outside ["
                        + range.qmin() + ", " + range.qmax() + "]");
        }
        int block = switch (granularity) {
            case TENSOR -> x.length;
            case CHANNEL -> cols;
            case GROUP -> groupSize;
        };
        float[] y = new float[x.length];
        boolean[] inside = new boolean[x.length];
        int qmin = range.qmin(), qmax = range.qmax();
        for (int p = 0; p < n; p++) {
            float s = scale[p];
            float inv = 1.0f / s;
            int z = zeroPoint[p];
            for (int i = p * block, end = i + block; i < end; i++) {
                float v = x[i];
                if (!Float.isFinite(v)) throw new IllegalArgumentException("fake-quant input[" + i + "] is not finite: " + v);
                long q = (long) (z + (float) Math.rint(v * inv));
                inside[i] = q >= qmin && q <= qmax;
                y[i] = (Math.clamp(q, qmin, qmax) - z) * s;
            }
        }
        return new Result(y, inside);
    }

    /** The forward output and the STE mask its backward pass needs. */
    public record Result(float[] output, boolean[] inside) {
        public float[] backward(float[] dy) {
            if (dy.length != inside.length)
                throw new IllegalArgumentException("fake-quant upstream gradient has " + dy.length + " values, expected " + inside.length);
            float[] dx = new float[dy.length];
            for (int i = 0; i < dy.length; i++) if (inside[i]) dx[i] = dy[i];
            return dx;
        }
    }
}
