package lowbit.io.safetensors;

import java.nio.ByteBuffer;
import java.util.Optional;

/**
 * The element types a safetensors header may name. All are known so that sizes can be validated;
 * {@link #convertible()} says which ones {@link SafetensorsFile#floats} turns into float32 (the
 * 8-bit float formats are recognised but not converted).
 */
public enum Dtype {
    F64(8), F32(4), F16(2), BF16(2),
    I64(8), I32(4), I16(2), I8(1),
    U64(8), U32(4), U16(2), U8(1),
    BOOL(1),
    F8_E4M3(1), F8_E5M2(1);

    public final int bytes;

    Dtype(int bytes) {
        this.bytes = bytes;
    }

    public static Optional<Dtype> parse(String name) {
        for (Dtype d : values()) if (d.name().equals(name)) return Optional.of(d);
        return Optional.empty();
    }

    public boolean convertible() {
        return this != F8_E4M3 && this != F8_E5M2;
    }

    /** Converts {@code n} elements from a little-endian buffer into {@code out[pos..pos+n)}. */
    void toFloats(ByteBuffer in, float[] out, int pos, int n) {
        switch (this) {
            case F32 -> in.asFloatBuffer().get(out, pos, n);
            case F16 -> {
                for (int i = 0; i < n; i++) out[pos + i] = Float.float16ToFloat(in.getShort(2 * i));
            }
            case BF16 -> {
                for (int i = 0; i < n; i++) out[pos + i] = Float.intBitsToFloat((in.getShort(2 * i) & 0xffff) << 16);
            }
            case F64 -> {
                for (int i = 0; i < n; i++) out[pos + i] = (float) in.getDouble(8 * i);
            }
            case I64 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.getLong(8 * i);
            }
            case I32 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.getInt(4 * i);
            }
            case I16 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.getShort(2 * i);
            }
            case I8 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.get(i);
            }
            case U64 -> {
                for (int i = 0; i < n; i++) {
                    long v = in.getLong(8 * i);
                    // unsigned: values past Long.MAX_VALUE come out as 2^64 + v
                    out[pos + i] = v >= 0 ? v : (float) (v & Long.MAX_VALUE) + 0x1p63f;
                }
            }
            case U32 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.getInt(4 * i) & 0xffffffffL;
            }
            case U16 -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.getShort(2 * i) & 0xffff;
            }
            case U8, BOOL -> {
                for (int i = 0; i < n; i++) out[pos + i] = in.get(i) & 0xff;
            }
            default -> throw new UnsupportedOperationException(name());
        }
    }
}
