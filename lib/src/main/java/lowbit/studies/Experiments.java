package lowbit.studies;

import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.Perplexity;
import lowbit.eval.TextDatasets;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.Row;
import lowbit.tokenizer.Tokenizer;

/**
 * One experiment: a fresh copy of the model, quantized by a recipe, evaluated by perplexity; the result row
 * carries the parameters it was asked for, the metrics and the provenance (quantization with its calibration
 * draw, model and data sha256, code version, backend, threads, time).
 */
public final class Experiments {
    private Experiments() {}

    /** Where and how perplexity is measured. */
    public record Evaluation(String model, String dataset, int seqlen, int windows) {
        public Map<String, Object> parameters() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("model", model);
            m.put("dataset", dataset);
            m.put("eval_seqlen", seqlen);
            m.put("eval_windows", windows);
            return m;
        }
    }

    /** The evaluation text tokenized once per (tokenizer, dataset): tokenizing WikiText-2 costs seconds. */
    private static final Map<String, int[]> TOKENS = new java.util.concurrent.ConcurrentHashMap<>();

    /** The dataset's tokens under the checkpoint's tokenizer (cached by tokenizer source and dataset hash). */
    public static int[] tokens(Checkpoint ckpt, Tokenizer tok, TextDatasets.Text text) {
        return TOKENS.computeIfAbsent(ckpt.sha256() + "|" + text.sha256(), k -> tok.encodeWithSpecials(text.text()));
    }

    /** Runs the experiment whose identity is {@code params} (its key is {@link Row#key} of them). */
    public static Row run(Map<String, Object> params, Evaluation eval, QuantizationRecipe recipe, int threads) {
        String key = Row.key(params);
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = Checkpoints.open(eval.model(), null); Transformer model = Checkpoints.load(ckpt, threads)) {
            Tokenizer tok = Checkpoints.tokenizer(ckpt);
            QuantizationRecipe.Outcome outcome = recipe == null ? null : recipe.apply(model, tok, Progress.NONE);
            TextDatasets.Text text = TextDatasets.load(eval.dataset());
            Perplexity.Result r = Perplexity.evaluate(model, tokens(ckpt, tok, text), eval.seqlen(), eval.windows(), Progress.NONE);
            return Row.of(key).withAll(params)
                    .with("ppl", r.ppl())
                    .with("nll_sum", r.nllSum())
                    .with("tokens", r.tokens())
                    .with("bits_per_weight", outcome == null || outcome.model() == null ? 32.0 : outcome.model().bitsPerWeight())
                    .with("quantization", outcome == null ? null : outcome.provenance())
                    .with("model_sha256", ckpt.sha256())
                    .with("dataset_sha256", text.sha256())
                    .with("threads", threads)
                    .with("seconds", (System.nanoTime() - t0) / 1e9)
                    .withProvenance();
        }
    }
}
