package lowbit.model;

/**
 * cos and sin of RoPE's angles, [position][headDim / 2] row-major, as transformers computes them: inv_freq in float32, the
 * angle rounded to float, cos and sin in double. The runtime and the trainable model share them, so their rotations agree
 * bit for bit.
 */
public record RotaryTables(float[] cos, float[] sin, int positions) {
    public static RotaryTables of(ModelConfig cfg, int positions) {
        int d = cfg.headDim(), half = d / 2;
        float[] cos = new float[positions * half], sin = new float[positions * half];
        for (int i = 0; i < half; i++) {
            float invFreq = (float) (1.0 / Math.pow(cfg.ropeTheta(), (2.0 * i) / d));
            for (int t = 0; t < positions; t++) {
                float angle = (float) t * invFreq;
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
        return new RotaryTables(cos, sin, positions);
    }
}
