package lowbit.studies;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.eval.PrefixScorer;
import lowbit.eval.tasks.ZeroShot;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.ResultStore;
import lowbit.results.Row;

/**
 * One experiment: a fresh copy of the model, quantized by a recipe, evaluated by {@link Evaluator} and, when asked,
 * on zero-shot tasks with the same quantized weights; each result row carries the parameters it was asked for, the
 * metrics and the provenance (quantization with its calibration draw, model and data sha256, code version, backend,
 * threads, time).
 */
public final class Experiments {
    private Experiments() {}

    /**
     * Where and how perplexity is measured; with {@code kldCache}, also the KL divergence to the float model, whose
     * log-probabilities are kept there (not a parameter: it changes what a row carries, not what it measures).
     */
    public record Evaluation(String model, String dataset, int seqlen, int windows, Path kldCache) {
        public Evaluation(String model, String dataset, int seqlen, int windows) {
            this(model, dataset, seqlen, windows, null);
        }

        public Evaluation withKld(Path cache) {
            return new Evaluation(model, dataset, seqlen, windows, cache);
        }

        public Map<String, Object> parameters() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", model);
            m.put("dataset", dataset);
            m.put("eval_seqlen", seqlen);
            m.put("eval_windows", windows);
            return m;
        }

        Evaluator.Request request() {
            return new Evaluator.Request(dataset, seqlen, windows);
        }
    }

    /** A zero-shot task scored on an experiment's model, stored under {@code params}. */
    public record TaskRun(Map<String, Object> params, ZeroShot.Prepared task) {}

    /**
     * Runs the experiment whose identity is {@code params} (its key is {@link Row#key} of them). With KL divergence,
     * the float model's run writes the reference and a quantized run makes it first from the model it loads, before
     * quantizing, when the cache does not hold it yet.
     */
    public static Row run(Map<String, Object> params, Evaluation eval, QuantizationRecipe recipe, int threads) {
        long t0 = System.nanoTime();
        try (EvaluatedModel model = prepare(eval, recipe, threads)) {
            return perplexityRow(model, params, eval, t0);
        }
    }

    /**
     * The perplexity row of {@code params} and a row per task, each taken from the store when it is there; the model
     * is loaded and quantized once, and only when a row is missing. Rows are appended as each finishes.
     */
    public static List<Row> run(ResultStore store, Map<String, Object> params, Evaluation eval, QuantizationRecipe recipe,
                                List<TaskRun> tasks, int threads, Progress progress) {
        List<Row> done = new ArrayList<>();
        done.add(store.get(Row.key(params)).orElse(null));
        for (TaskRun t : tasks) done.add(store.get(Row.key(t.params())).orElse(null));
        if (!done.contains(null)) return done;
        long t0 = System.nanoTime();
        try (EvaluatedModel model = prepare(eval, recipe, threads)) {
            if (done.get(0) == null) done.set(0, store.computeIfAbsent(Row.key(params), () -> perplexityRow(model, params, eval, t0)));
            PrefixScorer scorer = new PrefixScorer(model.transformer());
            for (int i = 0; i < tasks.size(); i++) {
                TaskRun t = tasks.get(i);
                if (done.get(i + 1) == null) done.set(i + 1, ZeroShot.run(t.params(), model, t.task(), scorer, store, progress));
            }
        }
        return done;
    }

    private static EvaluatedModel prepare(Evaluation eval, QuantizationRecipe recipe, int threads) {
        EvaluatedModel model = EvaluatedModel.load(Checkpoints.open(eval.model(), null), threads);
        try {
            if (recipe != null && eval.kldCache() != null) Evaluator.ensureReference(model, eval.request(), eval.kldCache(), Progress.NONE);
            if (recipe != null) model.quantize(recipe, Progress.NONE);
            return model;
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
    }

    private static Row perplexityRow(EvaluatedModel model, Map<String, Object> params, Evaluation eval, long t0) {
        Evaluator.Options options = Evaluator.Options.of(Progress.NONE).withKld(eval.kldCache());
        return Evaluator.perplexity(model, eval.request(), options).row(params).with("seconds", (System.nanoTime() - t0) / 1e9);
    }
}
