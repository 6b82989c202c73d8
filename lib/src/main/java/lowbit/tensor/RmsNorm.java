package lowbit.tensor;

/** RMSNorm in float32 as transformers' LlamaRMSNorm computes it; the runtime and the trainable model share it, so they agree bit for bit. */
public final class RmsNorm {
    private RmsNorm() {}

    /** out[r] = w * (x[r] / rms(x[r])) for each of {@code rows} rows of d values; out may be x. */
    public static void rows(float[] x, float[] out, int rows, int d, float[] w, float eps, Parallel par) {
        par.forEach(rows, r -> {
            int o = r * d;
            float ss = 0;
            for (int j = 0; j < d; j++) ss += x[o + j] * x[o + j];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int j = 0; j < d; j++) out[o + j] = w[j] * (x[o + j] * inv);
        });
    }
}
