package lowbit.quant.qat;

/**
 * PACT (Choi et al., 2018): y = clamp(x, 0, alpha), quantized to k bits on [0, alpha] as
 * round(y * (2^k - 1) / alpha) * alpha / (2^k - 1) (the paper's eq. 1, in that float order). Backward,
 * the paper's eq. 3 with the STE: dx = dy for 0 <= x < alpha, else 0; dalpha = sum of dy where x >= alpha
 * (alpha's effect through the grid spacing is ignored, as in the paper).
 */
public record Pact(int bits) {
    public Pact {
        QuantRange.unsigned(bits);
    }

    public Result forward(float[] x, float alpha) {
        if (!(alpha > 0) || !Float.isFinite(alpha)) throw new IllegalArgumentException("PACT alpha must be finite and > 0, got " + alpha);
        float levels = (1 << bits) - 1;
        float toCode = levels / alpha, toValue = alpha / levels;
        float[] y = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            if (!Float.isFinite(x[i])) throw new IllegalArgumentException("PACT input[" + i + "] is not finite: " + x[i]);
            y[i] = (float) Math.rint(Math.clamp(x[i], 0f, alpha) * toCode) * toValue;
        }
        return new Result(y, x.clone(), alpha);
    }

    public record Result(float[] output, float[] input, float alpha) {
        public Gradients backward(float[] dy) {
            if (dy.length != input.length)
                throw new IllegalArgumentException("PACT upstream gradient has " + dy.length + " values, expected " + input.length);
            float[] dx = new float[input.length];
            double dAlpha = 0;
            for (int i = 0; i < input.length; i++) {
                if (input[i] >= alpha) dAlpha += dy[i];
                else if (input[i] >= 0) dx[i] = dy[i];
            }
            return new Gradients(dx, dAlpha);
        }
    }

    public record Gradients(float[] dx, double dAlpha) {}
}
