package lowbit.plots;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Arrays;
import java.util.Locale;

/**
 * Numbers as a reader wants them: a few significant digits, not the 17 of a double's round-trip form (the
 * store keeps every digit; a report or table shows what is meaningful).
 */
public final class Numbers {
    private Numbers() {}

    /** Significant digits a table column shows at its median magnitude. */
    static final int TABLE_DIGITS = 4;
    private static final int MAX_DECIMALS = 6;

    /** {@code v} to {@code digits} significant digits: plain between 1e-3 and 1e6, else scientific ("6.313e5"). */
    public static String significant(double v, int digits) {
        if (!Double.isFinite(v)) return Double.toString(v);
        if (v == 0) return "0";
        double a = Math.abs(v);
        if (a >= 1e6 || a < 1e-3) return scientific(v, digits);
        return new BigDecimal(v).round(new MathContext(digits)).stripTrailingZeros().toPlainString();
    }

    /**
     * Decimals for a column: enough for {@link #TABLE_DIGITS} significant digits at the median magnitude of its
     * non-zero finite values, between 0 and 6, so that a column lines up and its typical value keeps 4 digits.
     */
    public static int decimals(double[] column) {
        double[] mags = Arrays.stream(column).filter(v -> Double.isFinite(v) && v != 0).map(Math::abs).sorted().toArray();
        if (mags.length == 0) return 0;
        double median = mags[mags.length / 2];
        int d = TABLE_DIGITS - 1 - (int) Math.floor(Math.log10(median));
        return Math.max(0, Math.min(MAX_DECIMALS, d));
    }

    /**
     * One cell of a column formatted with {@code decimals}; values that would show as all zeros at that precision,
     * or that are 1e7 or more, in scientific notation so that nothing small or huge is hidden.
     */
    public static String fixed(double v, int decimals) {
        if (!Double.isFinite(v)) return Double.toString(v);
        double a = Math.abs(v);
        if (v != 0 && (a >= 1e7 || a < 0.5 * Math.pow(10, -decimals))) return scientific(v, TABLE_DIGITS);
        return String.format(Locale.ROOT, "%." + decimals + "f", v);
    }

    private static String scientific(double v, int digits) {
        String s = String.format(Locale.ROOT, "%." + Math.max(0, digits - 1) + "e", v);
        int e = s.indexOf('e');
        String mantissa = s.substring(0, e);
        if (mantissa.contains(".")) mantissa = mantissa.replaceAll("0+$", "").replaceAll("\\.$", "");
        return mantissa + "e" + Integer.parseInt(s.substring(e + 1));
    }
}
