package lowbit.eval.tasks;

/**
 * One item's outcome, as lm-eval's process_results computes it.
 *
 * @param index          the item's index in the task
 * @param logLikelihoods per request, the continuation's summed log-probability
 * @param greedy         per request, whether greedy decoding reproduces the whole continuation
 * @param pred           argmax of the log-likelihoods (the first on ties, as numpy's argmax)
 * @param predNorm       argmax of log-likelihood / the choice's length in characters (lm-eval's acc_norm)
 * @param acc            1 when the prediction is the gold answer; LAMBADA: 1 when greedy reproduces the word
 * @param accNorm        1 when predNorm is the gold answer
 * @param truncated      context tokens dropped from the left to fit the model, summed over the item's requests
 */
public record ItemScore(int index, double[] logLikelihoods, boolean[] greedy, int pred, int predNorm, double acc, double accNorm,
                        int truncated) {}
