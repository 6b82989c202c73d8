package lowbit.eval.tasks;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import lowbit.eval.ContinuationScorer;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.FullForwardScorer;
import lowbit.eval.PrefixScorer;
import lowbit.io.Hashing;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.results.ResultStore;
import lowbit.results.Row;

/**
 * A task evaluated on a model, as one results-store row: the key is the configuration (the model's key), the task,
 * its data files' sha256, --limit and the shot count, so a re-run finds what is done; the row carries lm-eval's
 * metrics, the item count, truncation, timing and the model's provenance.
 */
public final class ZeroShot {
    /** The --scorer names: full (lm-eval's one forward pass per continuation) and prefix (the context once, its K/V reused). */
    public static final List<String> SCORERS = List.of("full", "prefix");

    /** The scorer ./lowbit eval uses unless told otherwise. */
    public static final String DEFAULT_SCORER = "prefix";

    /** The scorer called {@code name} (see {@link #SCORERS}). */
    public static Function<Transformer, ContinuationScorer> scorer(String name) {
        return switch (name) {
            case "full" -> FullForwardScorer::new;
            case "prefix" -> PrefixScorer::new;
            default -> throw new IllegalArgumentException("--scorer must be one of " + String.join(", ", SCORERS) + ", got '" + name + "'");
        };
    }

    /** The lm-eval release whose task definitions and request handling these reproduce. */
    public static final String LM_EVAL_VERSION = "0.4.13";

    private ZeroShot() {}

    /** The loaded items of one task with their data files' sha256, read before any model time is spent. */
    public record Prepared(Task task, List<Item> items, Map<String, String> dataSha256, int limit) {
        public static Prepared of(Task task, int limit) {
            if (limit < 0) throw new IllegalArgumentException("limit must be >= 1, or 0 for every item, got " + limit);
            List<Path> paths = task.paths();
            Map<String, String> sha = new LinkedHashMap<>();
            for (int i = 0; i < paths.size(); i++) sha.put(task.files().get(i), Hashing.sha256(paths.get(i)));
            return new Prepared(task, TaskEvaluator.limit(task.load(), limit), sha, limit);
        }
    }

    /** What identifies a task's result for a configuration: the row key's parameters. */
    public static Map<String, Object> params(EvaluatedModel model, Prepared p) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("evaluation", "zero-shot");
        m.put("task", p.task().name());
        m.put("configuration", model.key());
        m.put("data_sha256", p.dataSha256());
        m.put("limit", p.limit());
        m.put("num_fewshot", 0);
        m.put("lm_eval", LM_EVAL_VERSION);
        return m;
    }

    /** The stored row for this task and configuration, or a fresh evaluation appended to the store (when one is given). */
    public static Row run(EvaluatedModel model, Prepared p, ContinuationScorer scorer, ResultStore store, Progress progress) {
        return run(params(model, p), model, p, scorer, store, progress);
    }

    /**
     * As {@link #run(EvaluatedModel, Prepared, ContinuationScorer, ResultStore, Progress)}, with the row's identity
     * given by the caller: a study names a configuration by its plan's parameters, known before the model is quantized.
     */
    public static Row run(Map<String, Object> params, EvaluatedModel model, Prepared p, ContinuationScorer scorer, ResultStore store,
                          Progress progress) {
        String key = Row.key(params);
        if (store != null) {
            var done = store.get(key);
            if (done.isPresent()) return done.get();
        }
        TaskResult r = evaluate(model, p, scorer, progress);
        Row row = row(key, params, model, r, scorer);
        if (store != null && !store.tryAppend(row)) return store.get(key).orElseThrow();
        return row;
    }

    /** The task scored on the model, without a store: the figures {@link #run} puts into its row. */
    public static TaskResult evaluate(EvaluatedModel model, Prepared p, ContinuationScorer scorer, Progress progress) {
        RequestEncoder encoder = new RequestEncoder(model.tokenizer(), model.checkpoint().config().maxPositions());
        return new TaskEvaluator(scorer, encoder).evaluate(p.task(), p.items(), progress);
    }

    static Row row(String key, Map<String, Object> params, EvaluatedModel model, TaskResult r, ContinuationScorer scorer) {
        return Row.of(key).withAll(params)
                .with("metrics", r.metrics())
                .with("items", r.size())
                .with("truncated_items", r.truncatedItems())
                .with("seconds", r.seconds())
                .with("items_per_second", r.itemsPerSecond())
                .with("scorer", scorer.getClass().getSimpleName())
                .withAll(model.provenance())
                .withProvenance();
    }
}
