package lowbit.studies;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.Row;

/**
 * One experiment: a fresh copy of the model, quantized by a recipe, evaluated by {@link Evaluator}; the result row
 * carries the parameters it was asked for, the metrics and the provenance (quantization with its calibration
 * draw, model and data sha256, code version, backend, threads, time).
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

    /**
     * Runs the experiment whose identity is {@code params} (its key is {@link Row#key} of them). With KL divergence,
     * the float model's run writes the reference and a quantized run makes it first from the model it loads, before
     * quantizing, when the cache does not hold it yet.
     */
    public static Row run(Map<String, Object> params, Evaluation eval, QuantizationRecipe recipe, int threads) {
        long t0 = System.nanoTime();
        try (EvaluatedModel model = EvaluatedModel.load(Checkpoints.open(eval.model(), null), threads)) {
            if (recipe != null && eval.kldCache() != null) Evaluator.ensureReference(model, eval.request(), eval.kldCache(), Progress.NONE);
            if (recipe != null) model.quantize(recipe, Progress.NONE);
            Evaluator.Options options = Evaluator.Options.of(Progress.NONE).withKld(eval.kldCache());
            return Evaluator.perplexity(model, eval.request(), options).row(params)
                    .with("seconds", (System.nanoTime() - t0) / 1e9);
        }
    }
}
