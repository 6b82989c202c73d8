package lowbit.io.gguf;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * ggml's tensor storage types with their ids, block sizes (elements per block) and type sizes (bytes
 * per block), as in ggml.h / ggml.c's type_traits. Ids that ggml has retired (4, 5, 31-33, 36-38) are
 * absent on purpose: a file carrying them is corrupt or from an incompatible fork.
 */
public enum GgmlType {
    F32(0, 1, 4, true),
    F16(1, 1, 2, true),
    Q4_0(2, 32, 18, true),
    Q4_1(3, 32, 20, true),
    Q5_0(6, 32, 22, true),
    Q5_1(7, 32, 24, true),
    Q8_0(8, 32, 34, true),
    Q8_1(9, 32, 40, false),
    Q2_K(10, 256, 84, true),
    Q3_K(11, 256, 110, true),
    Q4_K(12, 256, 144, true),
    Q5_K(13, 256, 176, true),
    Q6_K(14, 256, 210, true),
    Q8_K(15, 256, 292, false),
    IQ2_XXS(16, 256, 66, false),
    IQ2_XS(17, 256, 74, false),
    IQ3_XXS(18, 256, 98, false),
    IQ1_S(19, 256, 50, false),
    IQ4_NL(20, 32, 18, false),
    IQ3_S(21, 256, 110, false),
    IQ2_S(22, 256, 82, false),
    IQ4_XS(23, 256, 136, false),
    I8(24, 1, 1, false),
    I16(25, 1, 2, false),
    I32(26, 1, 4, false),
    I64(27, 1, 8, false),
    F64(28, 1, 8, false),
    IQ1_M(29, 256, 56, false),
    BF16(30, 1, 2, true),
    TQ1_0(34, 256, 54, false),
    TQ2_0(35, 256, 66, false),
    MXFP4(39, 32, 17, false);

    private static final GgmlType[] BY_ID = new GgmlType[64];

    static {
        for (GgmlType t : values()) BY_ID[t.id] = t;
    }

    public final int id;
    /** Elements per block; 1 for the plain float and integer types. */
    public final int blockSize;
    /** Bytes per block. */
    public final int typeSize;
    private final boolean dequantizable;

    GgmlType(int id, int blockSize, int typeSize, boolean dequantizable) {
        this.id = id;
        this.blockSize = blockSize;
        this.typeSize = typeSize;
        this.dequantizable = dequantizable;
    }

    /** The type with this ggml id, or null when ggml has no such type. */
    public static GgmlType byId(int id) {
        return id >= 0 && id < BY_ID.length ? BY_ID[id] : null;
    }

    /** Whether {@link Dequantize} can turn this type into floats. */
    public boolean isSupported() {
        return dequantizable;
    }

    /** Bytes that {@code elements} elements take; the caller has checked that a whole number of blocks results. */
    public long byteSize(long elements) {
        return elements / blockSize * typeSize;
    }

    /** "F32, F16, ..." for error messages. */
    public static String supportedNames() {
        return Arrays.stream(values()).filter(GgmlType::isSupported).map(Enum::name).collect(Collectors.joining(", "));
    }
}
