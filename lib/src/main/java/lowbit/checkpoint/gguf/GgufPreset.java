package lowbit.checkpoint.gguf;

import java.util.Arrays;
import java.util.stream.Collectors;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.Quantize;

/**
 * llama-quantize's file types (llama.h's {@code llama_ftype}) that export writes: each names the type most
 * tensors get and the value of {@code general.file_type}. The _S/_M/_L mixes differ only in the per-tensor
 * rules of {@link GgufTypePlan}.
 */
public enum GgufPreset {
    F32(0, GgmlType.F32),
    F16(1, GgmlType.F16),
    BF16(32, GgmlType.BF16),
    Q8_0(7, GgmlType.Q8_0),
    Q4_0(2, GgmlType.Q4_0),
    Q4_1(3, GgmlType.Q4_1),
    Q5_0(8, GgmlType.Q5_0),
    Q5_1(9, GgmlType.Q5_1),
    Q2_K(10, GgmlType.Q2_K),
    Q3_K_S(11, GgmlType.Q3_K),
    Q3_K_M(12, GgmlType.Q3_K),
    Q3_K_L(13, GgmlType.Q3_K),
    Q4_K_S(14, GgmlType.Q4_K),
    Q4_K_M(15, GgmlType.Q4_K),
    Q5_K_S(16, GgmlType.Q5_K),
    Q5_K_M(17, GgmlType.Q5_K),
    Q6_K(18, GgmlType.Q6_K);

    /** llama.h's LLAMA_FTYPE value, written as general.file_type. */
    public final int fileType;
    /** llama_ftype_get_default_type: the type every quantizable tensor starts from before the rules. */
    public final GgmlType defaultType;

    GgufPreset(int fileType, GgmlType defaultType) {
        this.fileType = fileType;
        this.defaultType = defaultType;
    }

    /** Whether the preset quantizes (llama.cpp applies its per-tensor rules, overrides and fallbacks only then). */
    public boolean quantized() {
        return defaultType.blockSize > 1;
    }

    /** The preset named {@code name} (case-insensitive, as llama-quantize reads it). */
    public static GgufPreset parse(String name) {
        for (GgufPreset p : values()) if (p.name().equalsIgnoreCase(name.trim())) return p;
        throw new IllegalArgumentException("--type: unknown type '" + name + "' (known: " + names() + ")");
    }

    public static String names() {
        return Arrays.stream(values()).map(Enum::name).collect(Collectors.joining(", "));
    }

    /** The ggml type of a --tensor-type value (llama-quantize's parse_ggml_type: any ggml type name, case-insensitive). */
    public static GgmlType tensorType(String name, String option) {
        for (GgmlType t : GgmlType.values())
            if (t.name().equalsIgnoreCase(name.trim()) && Quantize.isQuantizable(t)) return t;
        throw new IllegalArgumentException(option + ": unknown tensor type '" + name + "' (known: "
                + Arrays.stream(GgmlType.values()).filter(Quantize::isQuantizable).map(Enum::name)
                .collect(Collectors.joining(", ")) + ")");
    }
}
