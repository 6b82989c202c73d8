package lowbit.eval;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * Perplexity under the GPTQ protocol (METHODS.md section 1): the token stream cut into non-overlapping
 * windows of seqlen tokens, remainder dropped, every position of every window scored, no context carried
 * across windows; PPL = exp(mean NLL over all predicted tokens).
 *
 * <p>With a {@link PerplexityJournal}, each finished window's NLL is appended as it completes and an interrupted
 * run resumes from it: windows already in the journal for the same key are not recomputed.
 *
 * <p>A window whose NLL is NaN or infinite stops the evaluation with a {@link NonFiniteLossException} naming the
 * window and the first place in the forward pass where a non-finite value appeared: a perplexity of NaN is not a
 * result. A window longer than the model's declared context is evaluated (RoPE extrapolates, as transformers
 * does with a warning) and the result says so ({@link Result#beyondContext()}); models with learned positions
 * (OPT) have no position beyond them and are refused.
 */
public final class Perplexity {
    private Perplexity() {}

    /**
     * @param tokens        windows x seqlen tokens processed
     * @param predicted     tokens scored: windows x (seqlen - 1)
     * @param seconds       compute time of this run (windows taken from a journal cost nothing)
     * @param contextLength the model's declared context (max_position_embeddings, GGUF context_length, llama2.c seq_len)
     */
    public record Result(double ppl, double nllSum, long tokens, long predicted, int windows, int seqlen,
                         double seconds, int resumedWindows, int contextLength) {
        public double tokensPerSecond() {
            long computed = (long) (windows - resumedWindows) * seqlen;
            return seconds > 0 ? computed / seconds : 0;
        }

        /** Windows were longer than the context the model declares: positions past it are extrapolated. */
        public boolean beyondContext() {
            return Perplexity.beyondContext(contextLength, seqlen);
        }
    }

    public static int windowCount(int tokens, int seqlen, int maxWindows) {
        int n = tokens / seqlen;
        return maxWindows > 0 ? Math.min(n, maxWindows) : n;
    }

    public static Result evaluate(Transformer model, int[] ids, int seqlen, int maxWindows, Progress progress) {
        return evaluate(model, ids, seqlen, maxWindows, progress, null, null);
    }

    /**
     * @param journal    where to append finished windows and resume from, or null
     * @param journalKey identifies the experiment (model, data, seqlen, method...) inside the journal
     */
    public static Result evaluate(Transformer model, int[] ids, int seqlen, int maxWindows, Progress progress,
                                  PerplexityJournal journal, String journalKey) {
        return evaluate(model, ids, seqlen, maxWindows, progress, journal, journalKey, (w, window) -> model.nll(window));
    }

    /** Scores one window: element t is -log p(window[t+1] | window[0..t]). */
    @FunctionalInterface
    public interface WindowScorer {
        double[] nll(int index, int[] window);
    }

    /**
     * As above, each window scored by {@code scorer}: the seam through which one forward pass also yields other
     * per-position measures (KL divergence to the float model) next to the NLL.
     */
    public static Result evaluate(Transformer model, int[] ids, int seqlen, int maxWindows, Progress progress,
                                  PerplexityJournal journal, String journalKey, WindowScorer scorer) {
        checkSeqlen(model.config(), seqlen);
        int windows = windowCount(ids.length, seqlen, maxWindows);
        if (windows == 0)
            throw new IllegalArgumentException("the text has " + ids.length + " tokens, fewer than one window of " + seqlen);
        Map<Integer, Double> done = journal != null ? journal.finished(journalKey) : Map.of();
        double nllSum = 0;
        int resumed = 0;
        long start = System.nanoTime();
        try (Progress.Task task = progress.start("ppl", (long) windows * seqlen, "tok")) {
            for (int w = 0; w < windows; w++) {
                Double known = done.get(w);
                double windowNll;
                if (known != null) {
                    windowNll = known;
                    resumed++;
                } else {
                    int[] window = Arrays.copyOfRange(ids, w * seqlen, (w + 1) * seqlen);
                    windowNll = 0;
                    for (double v : scorer.nll(w, window)) windowNll += v;
                    if (!Double.isFinite(windowNll))
                        throw new NonFiniteLossException(w, seqlen, windowNll, NonFiniteProbe.locate(model, window));
                    if (journal != null) journal.record(journalKey, w, windowNll);
                }
                nllSum += windowNll;
                task.step(seqlen);
                task.message(String.format(Locale.ROOT, "ppl %.3f", Math.exp(nllSum / ((long) (w + 1) * (seqlen - 1)))));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long predicted = (long) windows * (seqlen - 1);
        return new Result(Math.exp(nllSum / predicted), nllSum, (long) windows * seqlen, predicted, windows, seqlen,
                seconds, resumed, model.config().maxPositions());
    }

    /** Whether windows of {@code seqlen} tokens go past a declared context of {@code contextLength} (0: none declared). */
    public static boolean beyondContext(int contextLength, int seqlen) {
        return contextLength > 0 && seqlen > contextLength;
    }

    /** Refuses a window length no model can score: below 2 there is nothing to predict. */
    public static void checkSeqlen(int seqlen) {
        if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be at least 2, got " + seqlen);
    }

    /**
     * Refuses a window length no model can score (below 2: nothing to predict) and one longer than the learned
     * positions of a model that has them; a RoPE model runs past its declared context, reported in the result.
     */
    public static void checkSeqlen(ModelConfig config, int seqlen) {
        checkSeqlen(seqlen);
        if (config.family() == ModelConfig.Family.OPT && seqlen > config.maxPositions())
            throw new IllegalArgumentException("--seqlen " + seqlen + " is longer than the " + config.maxPositions()
                    + " learned positions of this " + config.modelType() + " model");
    }
}
