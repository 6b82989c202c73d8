package lowbit.checkpoint.gguf;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import lowbit.io.gguf.GgmlType;

/**
 * The ggml type of every tensor of an export, chosen as llama-quantize chooses it (src/llama-quant.cpp,
 * llama_tensor_get_type): 1-D tensors and norms keep their type; with a quantized preset a --tensor-type
 * pattern or an explicit per-tensor type (a bits map, or a grid exported exactly) wins, else the preset's
 * per-tensor rules apply (attn_v, ffn_down, attn_output, the output/tied embedding rule, use_more_bits, the
 * n_layer/8 and n_layer/16 rules, the GQA rule); last, a type whose block does not divide the row length
 * falls back (tensor_type_fallback).
 *
 * <p>Only the rules that can fire for the presets of {@link GgufPreset} and the architectures export writes
 * (llama, qwen2, qwen3: no experts, no fused qkv, not Falcon) are carried over. The counters that index
 * attn_v and ffn_down tensors advance only where llama.cpp's do: in the rules, so a tensor given its type by
 * a pattern does not advance them, and tensors are visited in llama.cpp's order (by layer, then by name).
 */
public final class GgufTypePlan {
    /** A tensor to plan: its GGUF name, dims in GGUF order and the type it keeps when it is not quantized. */
    public record Tensor(String name, long[] dims, GgmlType keepType) {
        public Tensor {
            dims = dims.clone();
        }
    }

    /** llama-quantize's --tensor-type PATTERN=TYPE: a regex searched in the tensor name (lower-cased, as it does). */
    public record TypeOverride(Pattern pattern, GgmlType type) {
        public static TypeOverride parse(String text) {
            int eq = text.indexOf('=');
            if (eq <= 0 || eq == text.length() - 1)
                throw new IllegalArgumentException("--tensor-type '" + text + "': expected PATTERN=TYPE (e.g. attn_v=Q6_K)");
            String pattern = text.substring(0, eq).toLowerCase(java.util.Locale.ROOT);
            GgmlType type = GgufPreset.tensorType(text.substring(eq + 1), "--tensor-type '" + text + "'");
            try {
                return new TypeOverride(Pattern.compile(pattern), type);
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("--tensor-type '" + text + "': bad pattern: " + e.getDescription());
            }
        }
    }

    /**
     * One tensor's choice: {@code type} is written; {@code wanted} is what the rules asked for when it had to
     * fall back because its row length is not a multiple of that type's block, else null.
     */
    public record Entry(String name, long[] dims, GgmlType type, GgmlType wanted) {
        public boolean fellBack() {
            return wanted != null;
        }

        /** The warning llama-quantize prints for a fallback. */
        public String fallbackMessage() {
            return String.format(java.util.Locale.ROOT, "%s: row length %d is not a multiple of %s's block of %d, falling back to %s",
                    name, dims[0], wanted, wanted.blockSize, type);
        }
    }

    /** The model facts the rules read. */
    public record Model(String architecture, int layers, int heads, int kvHeads) {
        int gqa() {
            return heads / kvHeads;
        }

        /** llama.cpp's LLM_TYPE_70B: an 80-layer llama with grouped-query attention. */
        boolean is70b() {
            return architecture.equals("llama") && layers == 80 && heads != kvHeads;
        }
    }

    private static final Pattern LAYER = Pattern.compile("blk\\.(\\d+)\\..*");

    private final List<Entry> entries;

    private GgufTypePlan(List<Entry> entries) {
        this.entries = List.copyOf(entries);
    }

    /** Entries in llama.cpp's tensor order (the order llama-quantize writes them). */
    public List<Entry> entries() {
        return entries;
    }

    public List<Entry> fallbacks() {
        return entries.stream().filter(Entry::fellBack).toList();
    }

    /**
     * @param explicit  types given per tensor (a bits map, or grids exported exactly), applied like a pattern
     *                  override; patterns win over them
     * @param imatrix   whether an importance matrix is given (the Q4_0/Q5_0 ffn_down rule depends on it)
     */
    public static GgufTypePlan of(GgufPreset preset, Model model, List<Tensor> tensors, List<TypeOverride> overrides,
                                  Map<String, GgmlType> explicit, boolean imatrix) {
        if (!preset.quantized() && (!overrides.isEmpty() || !explicit.isEmpty()))
            throw new IllegalArgumentException("--tensor-type and per-tensor types need a quantized --type, not " + preset
                    + " (llama-quantize ignores them for float types)");
        List<Tensor> ordered = new ArrayList<>(tensors);
        ordered.sort(Comparator.comparingInt((Tensor t) -> layer(t.name())).thenComparing(Tensor::name));
        boolean tied = ordered.stream().noneMatch(t -> t.name().equals("output.weight"));
        int attnV = (int) ordered.stream().filter(t -> t.name().contains("attn_v.weight")).count();
        State s = new State(preset, model, tied, attnV, imatrix);
        List<Entry> out = new ArrayList<>();
        for (Tensor t : ordered) {
            if (!quantizable(t)) {
                out.add(new Entry(t.name(), t.dims(), t.keepType(), null));
                continue;
            }
            GgmlType type = preset.defaultType;
            if (!preset.quantized()) {
                out.add(new Entry(t.name(), t.dims(), type, null));
                continue;
            }
            GgmlType manual = null;
            for (TypeOverride o : overrides)
                if (o.pattern().matcher(t.name()).find()) {
                    manual = o.type();
                    break;
                }
            if (manual == null) manual = explicit.get(t.name());
            type = manual != null ? manual : s.rules(t, type);
            GgmlType fallback = fallback(type, t.dims()[0]);
            out.add(new Entry(t.name(), t.dims(), fallback, fallback == type ? null : type));
        }
        return new GgufTypePlan(out);
    }

    /** tensor_allows_quantization for the tensors our architectures have: 2-D weights other than norms. */
    static boolean quantizable(Tensor t) {
        return t.dims().length >= 2 && t.name().endsWith("weight") && !t.name().contains("_norm.weight");
    }

    /** tensor_type_fallback: the type a row of {@code columns} takes when {@code type}'s block does not divide it. */
    static GgmlType fallback(GgmlType type, long columns) {
        if (columns % type.blockSize == 0) return type;
        GgmlType f = switch (type) {
            case Q2_K, Q3_K -> GgmlType.Q4_0;
            case Q4_K -> GgmlType.Q5_0;
            case Q5_K -> GgmlType.Q5_1;
            case Q6_K -> GgmlType.Q8_0;
            default -> type;
        };
        return columns % f.blockSize == 0 ? f : GgmlType.F16;
    }

    private static int layer(String name) {
        Matcher m = LAYER.matcher(name);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    /** llama_tensor_get_type_impl's counters and rules for one model and preset. */
    private static final class State {
        private final GgufPreset preset;
        private final Model model;
        private final boolean tied, imatrix;
        private final int nAttnV;
        private int iAttnV, iFfnDown;

        State(GgufPreset preset, Model model, boolean tied, int nAttnV, boolean imatrix) {
            this.preset = preset;
            this.model = model;
            this.tied = tied;
            this.nAttnV = nAttnV;
            this.imatrix = imatrix;
        }

        private static boolean useMoreBits(int i, int n) {
            return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
        }

        GgmlType rules(Tensor t, GgmlType type) {
            String name = t.name();
            boolean output = name.equals("output.weight");
            boolean embd = name.equals("token_embd.weight");
            if (output || (tied && embd)) {
                // the tensor that produces the logits: Q8_0 when the default block does not divide its rows, else Q6_K
                if (t.dims()[0] % type.blockSize != 0) return GgmlType.Q8_0;
                return type != GgmlType.Q8_0 ? GgmlType.Q6_K : type;
            }
            if (embd) return type;
            if (name.contains("attn_v.weight")) {
                GgmlType n = type;
                switch (preset) {
                    case Q2_K -> n = model.gqa() >= 4 ? GgmlType.Q4_K : GgmlType.Q3_K;
                    case Q3_K_M -> n = iAttnV < 2 ? GgmlType.Q5_K : GgmlType.Q4_K;
                    case Q3_K_L -> n = GgmlType.Q5_K;
                    case Q4_K_M, Q5_K_M -> { if (useMoreBits(iAttnV, nAttnV)) n = GgmlType.Q6_K; }
                    case Q4_K_S -> { if (iAttnV < 4) n = GgmlType.Q5_K; }
                    default -> { }
                }
                if (model.is70b() && (n == GgmlType.Q3_K || n == GgmlType.Q4_K)) n = GgmlType.Q5_K;
                iAttnV++;
                return n;
            }
            if (name.contains("ffn_down")) {
                int i = iFfnDown++, n = model.layers();
                return switch (preset) {
                    case Q2_K -> GgmlType.Q3_K;
                    case Q3_K_M -> i < n / 16 ? GgmlType.Q5_K : GgmlType.Q4_K;
                    case Q3_K_L -> GgmlType.Q5_K;
                    case Q4_K_M, Q5_K_M -> useMoreBits(i, n) ? GgmlType.Q6_K : type;
                    case Q4_K_S -> i < n / 8 ? GgmlType.Q5_K : type;
                    // with an imatrix llama.cpp guards the first ffn_down layers of Q4_0/Q5_0 with the _1 types
                    case Q4_0 -> imatrix && i < n / 8 ? GgmlType.Q4_1 : type;
                    case Q5_0 -> imatrix && i < n / 8 ? GgmlType.Q5_1 : type;
                    default -> type;
                };
            }
            if (name.contains("attn_output.weight")) {
                return switch (preset) {
                    case Q2_K -> GgmlType.Q3_K;
                    case Q3_K_M -> GgmlType.Q4_K;
                    case Q3_K_L -> GgmlType.Q5_K;
                    default -> type;
                };
            }
            return type;
        }
    }
}
