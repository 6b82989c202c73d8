package lowbit.quant.observer;

import java.math.BigDecimal;

/**
 * Which observer sets a static activation range ({@code --observer}): {@code minmax}, {@code ema} (torch.ao's moving
 * average, constant 0.01, one update per calibration window), {@code kl} (TensorRT's entropy calibration) or
 * {@code percentile:P} (P-th percentile of |x|, P in (0, 100]). Every choice gives a symmetric range for the symmetric
 * signed activation grid: a one-sided range [lo, hi] becomes max(|lo|, |hi|).
 *
 * @param percentile P for {@link Kind#PERCENTILE}, else 0
 */
public record ObserverSpec(Kind kind, double percentile) {
    public static final String GRAMMAR = "minmax | ema | kl | percentile:P (P in (0, 100], e.g. percentile:99.99)";

    public enum Kind { MINMAX, EMA, KL, PERCENTILE }

    public static final ObserverSpec MINMAX = new ObserverSpec(Kind.MINMAX, 0);
    public static final ObserverSpec EMA = new ObserverSpec(Kind.EMA, 0);
    public static final ObserverSpec KL = new ObserverSpec(Kind.KL, 0);

    public ObserverSpec {
        if (kind == null) throw new IllegalArgumentException("an observer kind is required");
        if (kind == Kind.PERCENTILE ? !(percentile > 0 && percentile <= 100) : percentile != 0)
            throw new IllegalArgumentException("--observer percentile:P needs P in (0, 100], got " + percentile);
    }

    public static ObserverSpec percentile(double p) {
        return new ObserverSpec(Kind.PERCENTILE, p);
    }

    /** Parses {@link #GRAMMAR}; errors name --observer and the accepted forms. */
    public static ObserverSpec parse(String text) {
        if (text == null) throw new IllegalArgumentException("--observer needs a value: " + GRAMMAR);
        String t = text.trim().toLowerCase();
        switch (t) {
            case "minmax": return MINMAX;
            case "ema": return EMA;
            case "kl": return KL;
            default: break;
        }
        if (t.startsWith("percentile:")) {
            String p = t.substring("percentile:".length());
            double v;
            try {
                v = Double.parseDouble(p);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--observer percentile:P needs a number P in (0, 100], got '" + p + "'");
            }
            if (!(v > 0 && v <= 100))
                throw new IllegalArgumentException("--observer percentile:P needs P in (0, 100], got " + p);
            return percentile(v);
        }
        throw new IllegalArgumentException("unknown --observer '" + text + "'; expected " + GRAMMAR);
    }

    /** The canonical text {@link #parse} reads back: "minmax", "ema", "kl", "percentile:99.99". */
    public String text() {
        return switch (kind) {
            case MINMAX -> "minmax";
            case EMA -> "ema";
            case KL -> "kl";
            case PERCENTILE -> "percentile:" + BigDecimal.valueOf(percentile).stripTrailingZeros().toPlainString();
        };
    }

    @Override
    public String toString() {
        return text();
    }

    /**
     * A fresh observer for one tensor quantized to a symmetric signed grid of {@code bits} bits, which will see at most
     * {@code maxCount} values (the percentile observer keeps only what its percentile of that many values needs).
     */
    public Observer create(int bits, long maxCount) {
        return switch (kind) {
            case MINMAX -> new MinMaxObserver();
            case EMA -> new MovingAverageMinMaxObserver();
            case KL -> new EntropyObserver(bits, false);
            case PERCENTILE -> PercentileObserver.forCount(percentile, PercentileObserver.Tails.ABS, maxCount);
        };
    }
}
