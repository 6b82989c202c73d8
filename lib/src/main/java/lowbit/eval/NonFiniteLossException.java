package lowbit.eval;

/**
 * A window whose negative log-likelihood came out NaN or infinite: the perplexity would be meaningless, so the
 * evaluation stops and says which window, and where in the forward pass the first non-finite value appeared.
 */
public final class NonFiniteLossException extends IllegalStateException {
    private final int window;
    private final double nll;
    private final NonFiniteProbe.Origin origin;

    NonFiniteLossException(int window, int seqlen, double nll, NonFiniteProbe.Origin origin) {
        super("window " + window + " (tokens " + (long) window * seqlen + ".." + ((long) (window + 1) * seqlen - 1) + "): NLL is "
                + nll + "; " + (origin == null
                ? "every linear's input and output and every layer's keys and values were finite, so the loss itself overflowed"
                : "first non-finite value: " + origin));
        this.window = window;
        this.nll = nll;
        this.origin = origin;
    }

    public int window() {
        return window;
    }

    public double nll() {
        return nll;
    }

    /** Where the first non-finite value appeared on a re-run of the window, or null when none was seen. */
    public NonFiniteProbe.Origin origin() {
        return origin;
    }
}
