package lowbit.eval;

import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.results.ResultStore;
import lowbit.results.Row;

/**
 * The journal of a perplexity run: each finished window's NLL, so that an interrupted run resumes where it
 * stopped. It is a {@link ResultStore} (one JSON line per window: experiment, window, nll), so it shares the
 * store's rules for a writer killed mid-line: a record counts only when its line is complete (newline-
 * terminated) and well-formed; a torn last line is reported and ignored, which makes that window run again;
 * the next append writes a newline first so its record starts on a fresh line, and the fragment stays on disk as
 * one unparsable line that later readers skip and report. Nothing is truncated or rewritten.
 *
 * <p>One file may hold many experiments (models, quantizations, datasets, window lengths); each is named by
 * the key the caller passes to {@link #finished} and {@link #record}.
 */
public final class PerplexityJournal {
    private final ResultStore store;

    private PerplexityJournal(ResultStore store) {
        this.store = store;
    }

    /**
     * Opens (creating if needed) the journal at {@code file} and checks it can be appended to, so that a run
     * that could not keep its windows fails before computing any.
     */
    public static PerplexityJournal open(Path file) {
        ResultStore store;
        try {
            store = ResultStore.open(file);
        } catch (UncheckedIOException e) {
            throw new UncheckedIOException("--journal " + file + ": cannot open it", e.getCause());
        }
        if (!Files.isWritable(store.file()))
            throw new UncheckedIOException("--journal " + file + ": cannot append to it",
                    new AccessDeniedException(store.file().toString()));
        return new PerplexityJournal(store);
    }

    public Path file() {
        return store.file();
    }

    /** The finite NLL of every window of {@code experiment} recorded so far, by window index. */
    public Map<Integer, Double> finished(String experiment) {
        Map<Integer, Double> done = new HashMap<>();
        for (Row row : store.rows()) {
            // A record is usable only whole: hand-edited or foreign lines with other shapes are not resumed from.
            if (experiment.equals(row.get("experiment")) && row.get("window") instanceof Long w && w >= 0 && w <= Integer.MAX_VALUE
                    && row.get("nll") instanceof Double nll && Double.isFinite(nll))
                done.putIfAbsent(w.intValue(), nll);
        }
        return done;
    }

    /** Appends window {@code window}'s NLL for {@code experiment}; on disk when this returns. */
    public void record(String experiment, int window, double nll) {
        Map<String, Object> id = new LinkedHashMap<>();
        id.put("experiment", experiment);
        id.put("window", window);
        // A second process that finished the same window first wrote the same number: keeping its line is right.
        try {
            store.tryAppend(Row.of(Row.key(id)).withAll(id).with("nll", nll));
        } catch (UncheckedIOException e) {
            throw new UncheckedIOException("--journal " + store.file() + ": cannot record window " + window, e.getCause());
        }
    }

    /** Lines that were not used: a torn last line, unparsable or duplicated lines. */
    public List<ResultStore.Problem> problems() {
        return store.problems();
    }
}
