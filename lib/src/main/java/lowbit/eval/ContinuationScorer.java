package lowbit.eval;

import java.util.List;

/**
 * Log-likelihood of continuations given a shared context, the one request of lm-evaluation-harness's
 * {@code loglikelihood}: for each continuation, the sum over its tokens of log p(token | context, earlier
 * continuation tokens), and whether greedy decoding would have produced every one of its tokens.
 *
 * <p>Every continuation of one call is scored against the same context, so an implementation may compute the
 * context once and reuse its keys and values for each continuation.
 */
public interface ContinuationScorer {
    /** One continuation's score: per-token log-probs (float32 log-softmax, summed in double), and greedy agreement. */
    record Scored(double[] tokenLogProbs, boolean greedy) {
        public double logLikelihood() {
            double s = 0;
            for (double v : tokenLogProbs) s += v;
            return s;
        }
    }

    /**
     * @param context       at least one token (lm-eval puts the prefix token there when the context string is empty)
     * @param continuations each at least one token; context.length + continuation.length must fit the model
     */
    List<Scored> score(int[] context, List<int[]> continuations);
}
