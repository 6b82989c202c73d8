package lowbit.quant;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A quantization recipe in the --quant grammar shared by every method:
 * {@code METHOD:wB[gG][aA][sym]} for the weights (no g: one grid per output channel; aA quantizes the
 * linears' inputs per token), {@code kvB} for the KV cache, terms joined by '+'. Examples: rtn:w3,
 * rtn:w4g32, gptq:w4g128, gptq:w3sym, gptq:w4g128+kv4, awq:w3g128, smoothquant:w8a8, rtn:w4a8, kv4.
 * "fp" means no quantization.
 *
 * @param method          weight method, or null when only the KV cache (or nothing) is quantized
 * @param weightBits      0 when there is no weight term
 * @param groupSize       {@link QuantConfig#PER_CHANNEL} unless a g term is given
 * @param activationBits  0 for float activations
 * @param kvBits          0 for a float KV cache
 */
public record QuantSpec(String text, String method, int weightBits, int groupSize, boolean symmetric,
                        int activationBits, int kvBits) {

    /** Weight methods known to the grammar, in the order the docs list them. */
    public static final List<String> METHODS = List.of("rtn", "gptq", "awq", "smoothquant");

    /** A compile-time constant so that CLI help can show it; QuantSpecTest checks it names every method. */
    public static final String GRAMMAR = "METHOD:wB[gG][aA][sym] and/or kvB joined by '+' (e.g. rtn:w3, gptq:w4g128, "
            + "gptq:w3sym, gptq:w4g128+kv4, awq:w3g128, smoothquant:w8a8, rtn:w4a8, kv4), METHOD one of rtn, gptq, awq, "
            + "smoothquant; B in 2..8; or fp";

    private static final Pattern WEIGHTS = Pattern.compile("([a-z0-9_-]+):w(\\d+)(?:g(\\d+))?(?:a(\\d+))?(sym)?");
    private static final Pattern KV = Pattern.compile("kv(\\d+)");

    public static QuantSpec parse(String text) {
        if (text == null || text.isBlank()) throw bad(text, "it is empty");
        String t = text.trim().toLowerCase();
        if (t.equals("fp") || t.equals("none")) return new QuantSpec("fp", null, 0, QuantConfig.PER_CHANNEL, false, 0, 0);
        String method = null;
        int wbits = 0, group = QuantConfig.PER_CHANNEL, abits = 0, kv = 0;
        boolean sym = false;
        for (String term : t.split("\\+", -1)) {
            Matcher m;
            if ((m = WEIGHTS.matcher(term)).matches()) {
                if (method != null) throw bad(text, "it has two weight terms");
                method = m.group(1);
                if (!METHODS.contains(method)) throw bad(text, "unknown method '" + method + "'");
                wbits = bits(text, m.group(2), "weight");
                if (m.group(3) != null) {
                    group = Integer.parseInt(m.group(3));
                    if (group < 1) throw bad(text, "group size must be >= 1");
                }
                if (m.group(4) != null) abits = bits(text, m.group(4), "activation");
                sym = m.group(5) != null;
            } else if ((m = KV.matcher(term)).matches()) {
                if (kv != 0) throw bad(text, "it has two kv terms");
                kv = bits(text, m.group(1), "KV-cache");
            } else {
                throw bad(text, "'" + term + "' is not a term");
            }
        }
        return new QuantSpec(t, method, wbits, group, sym, abits, kv);
    }

    private static int bits(String text, String digits, String what) {
        int b;
        try {
            b = Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            throw bad(text, what + " bits '" + digits + "' is not a number");
        }
        if (b < 2 || b > 8) throw bad(text, what + " bits must be 2..8, got " + b);
        return b;
    }

    private static IllegalArgumentException bad(String text, String why) {
        return new IllegalArgumentException("bad --quant spec '" + text + "': " + why + ". Grammar: " + GRAMMAR);
    }

    public boolean quantizesWeights() {
        return method != null;
    }

    /**
     * The weight grid this spec names, fp16 scales: the GPTQ reference's grid for rtn and gptq (asymmetric
     * with integer zero, or its symmetric grid with sym), llm-awq's own grid for awq, and SmoothQuant's
     * symmetric absmax grid for smoothquant (which is always symmetric).
     */
    public QuantConfig weightConfig() {
        if (method == null) throw new IllegalStateException("spec '" + text + "' quantizes no weights");
        QuantConfig.ZeroPoint zero = switch (method) {
            case "awq" -> symmetric ? QuantConfig.ZeroPoint.INTEGER : QuantConfig.ZeroPoint.AWQ;
            case "smoothquant" -> QuantConfig.ZeroPoint.ABSMAX;
            default -> QuantConfig.ZeroPoint.INTEGER;
        };
        return new QuantConfig(weightBits, symmetric || method.equals("smoothquant"), groupSize, zero,
                QuantConfig.ScaleFormat.F16, false);
    }

    @Override
    public String toString() {
        return text;
    }
}
