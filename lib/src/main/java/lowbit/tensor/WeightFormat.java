package lowbit.tensor;

import java.util.Locale;

/**
 * How a model's linear weights are held in memory: float32, or bfloat16 (half the memory; products still accumulate
 * in float32). bf16 is float32's upper half, so a checkpoint stored in bf16 (most Hugging Face releases) loses nothing.
 */
public enum WeightFormat {
    FP32(4), BF16(2);

    /** Bytes per weight. */
    public final int bytes;

    WeightFormat(int bytes) {
        this.bytes = bytes;
    }

    /** The option's spelling: fp32 or bf16. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /** fp32 (also float32) or bf16 (also bfloat16). */
    public static WeightFormat parse(String s) {
        return switch (s == null ? "" : s.strip().toLowerCase(Locale.ROOT)) {
            case "fp32", "float32", "f32" -> FP32;
            case "bf16", "bfloat16" -> BF16;
            default -> throw new IllegalArgumentException("--weights must be fp32 or bf16, got '" + s + "'");
        };
    }

    /**
     * float32 to bfloat16 bits, rounding to nearest with ties to even as torch's {@code .to(torch.bfloat16)} and CUDA's
     * {@code __float2bfloat16} do; NaN stays a quiet NaN, infinities stay infinite, and values past bf16's largest
     * finite round to infinity.
     */
    public static short toBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7fffffff) > 0x7f800000) return (short) ((bits >>> 16) | 0x0040);
        int rounded = bits + 0x7fff + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }

    /** bfloat16 bits to float32: exact. */
    public static float fromBf16(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }

    /** Every element of {@code values} rounded to bf16. */
    public static short[] toBf16(float[] values) {
        short[] out = new short[values.length];
        for (int i = 0; i < values.length; i++) out[i] = toBf16(values[i]);
        return out;
    }

    /** The float32 value this format stores for {@code f}: f itself in fp32, f rounded to bf16 in bf16. */
    public float round(float f) {
        return this == FP32 ? f : fromBf16(toBf16(f));
    }
}
