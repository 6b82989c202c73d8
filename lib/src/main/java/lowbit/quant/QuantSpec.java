package lowbit.quant;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A quantization recipe in the --quant grammar shared by every method:
 * {@code METHOD:wB[gG][aA][sym|fmin]} for the weights (no g: one grid per output channel; aA quantizes the
 * linears' inputs per token; fmin stores a float min instead of an integer zero, llama.cpp's Q4_1 grid), {@code kvB} for the KV cache, terms joined by '+'. Examples: rtn:w3,
 * rtn:w4g32, gptq:w4g128, gptq:w3sym, gptq:w4g128+kv4, awq:w3g128, smoothquant:w8a8, rtn:w4a8, kv4.
 * "fp" means no quantization.
 *
 * <p>A spec is built either by {@link #parse} from that text or by {@link #of} from a method and a
 * {@link QuantConfig}; both go through the one validating constructor, and {@link #text()} writes the canonical
 * text back (what result rows record).
 *
 * @param method          weight method, or null when only the KV cache (or nothing) is quantized
 * @param weightBits      0 when there is no weight term
 * @param groupSize       {@link QuantConfig#PER_CHANNEL} unless a g term is given
 * @param activationBits  0 for float activations
 * @param kvBits          0 for a float KV cache
 * @param rotation        the rotation applied to the float model first (QuaRot), or NONE
 * @param floatMin        x = scale*q + min with a float min in the scale format (llama.cpp's Q4_1/Q5_1 grid) instead
 *                        of an integer zero; rtn and gptq only
 */
public record QuantSpec(String method, int weightBits, int groupSize, boolean symmetric, int activationBits, int kvBits,
                        Rotation rotation, boolean floatMin) {

    /** Weight methods known to the grammar, in the order the docs list them. */
    public static final List<String> METHODS = List.of("rtn", "gptq", "awq", "smoothquant", "billm");

    /** The one-bit method; the only one whose weights are not on a uniform grid. */
    public static final String BILLM = "billm";

    /** A compile-time constant so that CLI help can show it; QuantSpecTest checks it names every method. */
    public static final String GRAMMAR = "METHOD:wB[gG][aA][sym|fmin] and/or kvB, optionally quarot first, joined by '+' (e.g. rtn:w3, gptq:w4g128, "
            + "gptq:w3sym, rtn:w4g32fmin, gptq:w4g128+kv4, awq:w3g128, smoothquant:w8a8, rtn:w4a8, kv4, billm:w1g128, quarot+rtn:w4a4+kv4, "
            + "quarot), METHOD one of rtn, gptq, awq, smoothquant, billm; B in 2..8 (1 for billm); or fp";

    /** A rotation of the float model that leaves its function unchanged and makes it easier to quantize. */
    public enum Rotation {
        NONE, QUAROT;

        /** The spec term ("quarot"); NONE has none. */
        public String term() {
            return name().toLowerCase();
        }
    }

    /** No quantization. */
    public static final QuantSpec FP = new QuantSpec(null, 0, QuantConfig.PER_CHANNEL, false, 0, 0);

    private static final Pattern WEIGHTS = Pattern.compile("([a-z0-9_-]+):w(\\d+)(?:g(\\d+))?(?:a(\\d+))?(sym|fmin)?");
    private static final Pattern KV = Pattern.compile("kv(\\d+)");

    /** Every check of a spec, whether parsed or built: an IllegalArgumentException saying what is wrong. */
    public QuantSpec {
        if (rotation == null) throw new IllegalArgumentException("a rotation is required (Rotation.NONE for none)");
        if (method != null) {
            if (!METHODS.contains(method)) throw new IllegalArgumentException("unknown method '" + method + "' (known: " + String.join(", ", METHODS) + ")");
            if (method.equals(BILLM)) {
                if (weightBits != 1) throw new IllegalArgumentException("billm binarizes: its weights are w1 (billm:w1g128), got w" + weightBits);
                if (groupSize == QuantConfig.PER_CHANNEL)
                    throw new IllegalArgumentException("billm needs its block size as g (billm:w1g128, the reference's 128)");
                if (symmetric) throw new IllegalArgumentException("billm has no sym option: its binarization is its own grid");
            } else if (weightBits == 1) {
                throw new IllegalArgumentException("1-bit weights are BiLLM's: billm:w1g128 (" + method + " takes 2..8 bits)");
            } else {
                checkBits(weightBits, "weight");
            }
            if (groupSize != QuantConfig.PER_CHANNEL && groupSize < 1)
                throw new IllegalArgumentException("group size must be 1.." + Integer.MAX_VALUE + " (or per-channel), got " + groupSize);
            if (activationBits != 0) checkBits(activationBits, "activation");
        } else if (weightBits != 0 || activationBits != 0 || symmetric || groupSize != QuantConfig.PER_CHANNEL) {
            throw new IllegalArgumentException("weight, group, activation and sym terms need a method (METHOD:wB...)");
        }
        if (kvBits != 0) checkBits(kvBits, "KV-cache");
        if (floatMin && symmetric) throw new IllegalArgumentException("fmin and sym exclude each other: a symmetric grid has no min");
        if (floatMin && (method == null || !(method.equals("rtn") || method.equals("gptq"))))
            throw new IllegalArgumentException("fmin (a float min, llama.cpp's Q4_1 grid) is a grid of rtn and gptq, not of "
                    + (method == null ? "a spec without weights" : method));
    }

    /** A spec without a float min. */
    public QuantSpec(String method, int weightBits, int groupSize, boolean symmetric, int activationBits, int kvBits,
                     Rotation rotation) {
        this(method, weightBits, groupSize, symmetric, activationBits, kvBits, rotation, false);
    }

    /** A spec without rotation. */
    public QuantSpec(String method, int weightBits, int groupSize, boolean symmetric, int activationBits, int kvBits) {
        this(method, weightBits, groupSize, symmetric, activationBits, kvBits, Rotation.NONE);
    }

    /** The spec of {@code method} on {@code weights}' bits, group size and symmetry (per-tensor grids have no spec). */
    public static QuantSpec of(String method, QuantConfig weights) {
        if (method == null) throw new IllegalArgumentException("a weight spec needs a method (one of " + String.join(", ", METHODS) + ")");
        if (weights.groupSize() == QuantConfig.PER_TENSOR)
            throw new IllegalArgumentException("the --quant grammar has no per-tensor grid: give a group size or per-channel");
        if (weights.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN && weights.scaleFormat() != QuantConfig.ScaleFormat.F16)
            throw new IllegalArgumentException("the --quant grammar's fmin grid stores fp16 scales and mins, not " + weights.scaleFormat());
        return new QuantSpec(method, weights.bits(), weights.groupSize(), weights.symmetric(), 0, 0, Rotation.NONE,
                weights.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN);
    }

    /** Only the KV cache, at {@code bits}. */
    public static QuantSpec kv(int bits) {
        return new QuantSpec(null, 0, QuantConfig.PER_CHANNEL, false, 0, bits);
    }

    /** This spec with aA activations (0: float). */
    public QuantSpec withActivations(int bits) {
        return new QuantSpec(method, weightBits, groupSize, symmetric, bits, kvBits, rotation, floatMin);
    }

    /** This spec with a kvB term (0: float cache). */
    public QuantSpec withKv(int bits) {
        return new QuantSpec(method, weightBits, groupSize, symmetric, activationBits, bits, rotation, floatMin);
    }

    /** This spec on a model rotated by {@code r} first (NONE: the model as loaded). */
    public QuantSpec withRotation(Rotation r) {
        return new QuantSpec(method, weightBits, groupSize, symmetric, activationBits, kvBits, r, floatMin);
    }

    public boolean rotates() {
        return rotation != Rotation.NONE;
    }

    /** The same grid and runtime terms under another weight method. */
    public QuantSpec withMethod(String m) {
        return new QuantSpec(m, weightBits, groupSize, symmetric, activationBits, kvBits, rotation, floatMin);
    }

    public static QuantSpec parse(String text) {
        if (text == null || text.isBlank()) throw bad(text, "it is empty");
        String t = text.trim().toLowerCase();
        if (t.equals("fp") || t.equals("none")) return FP;
        String method = null;
        int wbits = 0, group = QuantConfig.PER_CHANNEL, abits = 0, kv = 0;
        boolean sym = false, fmin = false;
        Rotation rotation = Rotation.NONE;
        for (String term : t.split("\\+", -1)) {
            Matcher m;
            if (term.equals(Rotation.QUAROT.term())) {
                if (rotation != Rotation.NONE) throw bad(text, "it has two rotation terms");
                rotation = Rotation.QUAROT;
            } else if ((m = WEIGHTS.matcher(term)).matches()) {
                if (method != null) throw bad(text, "it has two weight terms");
                method = m.group(1);
                wbits = m.group(1).equals(BILLM) ? number(text, m.group(2), "weight bits", "1 for billm") : bits(text, m.group(2), "weight");
                if (m.group(3) != null) group = number(text, m.group(3), "group size", "1.." + Integer.MAX_VALUE);
                if (m.group(4) != null) abits = bits(text, m.group(4), "activation");
                sym = "sym".equals(m.group(5));
                fmin = "fmin".equals(m.group(5));
            } else if ((m = KV.matcher(term)).matches()) {
                if (kv != 0) throw bad(text, "it has two kv terms");
                kv = bits(text, m.group(1), "KV-cache");
            } else {
                throw bad(text, "'" + term + "' is not a term");
            }
        }
        try {
            return new QuantSpec(method, wbits, group, sym, abits, kv, rotation, fmin);
        } catch (IllegalArgumentException e) {
            throw bad(text, e.getMessage());
        }
    }

    /** Digits as an int; a value past int's range is named with the range it should be in, not Java's parse error. */
    private static int number(String text, String digits, String what, String range) {
        String d = digits.replaceFirst("^0+(?=.)", "");
        if (d.length() > 10 || Long.parseLong(d) > Integer.MAX_VALUE) throw bad(text, what + " must be " + range + ", got " + digits);
        return Integer.parseInt(d);
    }

    /** A written bits term: 2..8 (0 is not "float" here, it is a mistake). */
    private static int bits(String text, String digits, String what) {
        int b = number(text, digits, what + " bits", "2..8");
        if (b < 2 || b > 8) throw bad(text, what + " bits must be 2..8, got " + b);
        return b;
    }

    private static void checkBits(int b, String what) {
        if (b < 2 || b > 8) throw new IllegalArgumentException(what + " bits must be 2..8, got " + b);
    }

    private static IllegalArgumentException bad(String text, String why) {
        return new IllegalArgumentException("bad --quant spec '" + text + "': " + why + ". Grammar: " + GRAMMAR);
    }

    /** The canonical text: [quarot+]METHOD:wB[gG][aA][sym|fmin] then +kvB, or kvB alone, or quarot alone, or fp. */
    public String text() {
        StringBuilder s = new StringBuilder();
        if (rotates()) s.append(rotation.term());
        if (method != null) {
            if (!s.isEmpty()) s.append('+');
            s.append(method).append(":w").append(weightBits);
            if (groupSize != QuantConfig.PER_CHANNEL) s.append('g').append(groupSize);
            if (activationBits != 0) s.append('a').append(activationBits);
            if (symmetric) s.append("sym");
            if (floatMin) s.append("fmin");
        }
        if (kvBits != 0) s.append(s.isEmpty() ? "" : "+").append("kv").append(kvBits);
        return s.isEmpty() ? "fp" : s.toString();
    }

    public boolean quantizesWeights() {
        return method != null;
    }
    /**
     * The weight grid this spec names, fp16 scales: the GPTQ reference's grid for rtn and gptq (asymmetric
     * with integer zero, or its symmetric grid with sym), llm-awq's own grid for awq, and SmoothQuant's
     * symmetric absmax grid for smoothquant (which is always symmetric); with fmin, the float-min grid.
     */
    public QuantConfig weightConfig() {
        if (method == null) throw new IllegalStateException("spec '" + text() + "' quantizes no weights");
        if (method.equals(BILLM)) throw new IllegalStateException("spec '" + text() + "': BiLLM's binarization is not a uniform grid");
        QuantConfig.ZeroPoint zero = switch (method) {
            case "awq" -> symmetric ? QuantConfig.ZeroPoint.INTEGER : QuantConfig.ZeroPoint.AWQ;
            case "smoothquant" -> QuantConfig.ZeroPoint.ABSMAX;
            default -> floatMin ? QuantConfig.ZeroPoint.FLOAT_MIN : QuantConfig.ZeroPoint.INTEGER;
        };
        return new QuantConfig(weightBits, symmetric || method.equals("smoothquant"), groupSize, zero,
                QuantConfig.ScaleFormat.F16, false);
    }

    @Override
    public String toString() {
        return text();
    }
}
