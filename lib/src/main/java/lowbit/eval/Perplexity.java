package lowbit.eval;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * Perplexity under the GPTQ protocol (METHODS.md section 1): the token stream cut into non-overlapping
 * windows of seqlen tokens, remainder dropped, every position of every window scored, no context carried
 * across windows; PPL = exp(mean NLL over all predicted tokens).
 *
 * <p>With a journal file, each finished window's NLL is appended as it completes and an interrupted run
 * resumes from it: windows already in the journal for the same key are not recomputed.
 */
public final class Perplexity {
    private Perplexity() {}

    /**
     * @param tokens    windows x seqlen tokens processed
     * @param predicted tokens scored: windows x (seqlen - 1)
     * @param seconds   compute time of this run (windows taken from a journal cost nothing)
     */
    public record Result(double ppl, double nllSum, long tokens, long predicted, int windows, int seqlen,
                         double seconds, int resumedWindows) {
        public double tokensPerSecond() {
            long computed = (long) (windows - resumedWindows) * seqlen;
            return seconds > 0 ? computed / seconds : 0;
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
     * @param journal    file to append finished windows to and resume from, or null
     * @param journalKey identifies the experiment (model, data, seqlen, method...) inside the journal
     */
    public static Result evaluate(Transformer model, int[] ids, int seqlen, int maxWindows, Progress progress,
                                  Path journal, String journalKey) {
        if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be at least 2, got " + seqlen);
        int windows = windowCount(ids.length, seqlen, maxWindows);
        if (windows == 0)
            throw new IllegalArgumentException("the text has " + ids.length + " tokens, fewer than one window of " + seqlen);
        Map<Integer, Double> done = journal != null ? readJournal(journal, journalKey) : new HashMap<>();
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
                    for (double v : model.nll(window)) windowNll += v;
                    if (journal != null) appendJournal(journal, journalKey, w, windowNll);
                }
                nllSum += windowNll;
                task.step(seqlen);
                task.message(String.format(Locale.ROOT, "ppl %.3f", Math.exp(nllSum / ((long) (w + 1) * (seqlen - 1)))));
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        long predicted = (long) windows * (seqlen - 1);
        return new Result(Math.exp(nllSum / predicted), nllSum, (long) windows * seqlen, predicted, windows, seqlen,
                seconds, resumed);
    }

    private static Map<Integer, Double> readJournal(Path journal, String key) {
        Map<Integer, Double> done = new HashMap<>();
        if (!Files.exists(journal)) return done;
        try {
            for (String line : Files.readAllLines(journal, StandardCharsets.UTF_8)) {
                String[] f = line.split("\t");
                // a torn last line from a killed run is skipped, not fatal
                if (f.length != 3 || !f[0].equals(key)) continue;
                try {
                    done.put(Integer.parseInt(f[1]), Double.parseDouble(f[2]));
                } catch (NumberFormatException ignored) {
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading journal " + journal, e);
        }
        return done;
    }

    private static void appendJournal(Path journal, String key, int window, double nll) {
        try {
            if (journal.getParent() != null) Files.createDirectories(journal.getParent());
            Files.writeString(journal, key + "\t" + window + "\t" + Double.toString(nll) + "\n", StandardCharsets.UTF_8,
                    StandardOpenOption.CREATE, StandardOpenOption.APPEND, StandardOpenOption.SYNC);
        } catch (IOException e) {
            throw new UncheckedIOException("writing journal " + journal, e);
        }
    }
}
