package lowbit.notebook;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.eval.Perplexity;
import lowbit.eval.TextDatasets;
import lowbit.eval.tasks.MmluTask;
import lowbit.eval.tasks.TaskResult;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.eval.tasks.mmlu.MmluData;
import lowbit.eval.tasks.mmlu.MmluPrompt;
import lowbit.results.Row;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.tensor.Parallel;
import lowbit.quant.QuantizationRecipe;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;

/**
 * A checkpoint loaded for a notebook: an {@link EvaluatedModel} (checkpoint, transformer, tokenizer, quantization)
 * with the few operations cells use, all reporting progress to {@link Lab#progress()}. Quantizing changes this model
 * in place; load another one to compare.
 */
public final class Model implements AutoCloseable {
    private final String name;
    private final EvaluatedModel model;
    private final WeightFormat weights;

    private Model(String name, EvaluatedModel model, WeightFormat weights) {
        this.name = name;
        this.model = model;
        this.weights = weights;
    }

    /**
     * Loads {@code name} (see {@link #resolve}) on every core, its weights held as the session says ({@link Lab#weights()});
     * a quantized directory's runtime quantization is re-attached.
     */
    public static Model load(String name) {
        WeightFormat w = Lab.weights();
        return new Model(name, EvaluatedModel.load(Checkpoints.open(resolve(name), null), Parallel.defaultThreads(), w), w);
    }

    /**
     * What {@link Checkpoints#open(String, lowbit.io.hub.HubClient.Progress)} should open for a name a notebook
     * uses: "default" and "hf:ORG/NAME" as they are; an existing path as it is; otherwise a model under the data
     * directory's models/ folder: {@code models/NAME} itself when it is a file or a Hugging Face directory
     * (config.json), else {@code models/NAME/NAME.bin} (a llama2.c model such as stories260K).
     */
    public static String resolve(String name) {
        if (name == null || name.isBlank()) throw new IllegalArgumentException("no model name given");
        if (name.equals(Checkpoints.DEFAULT) || name.startsWith(Checkpoints.HUB_PREFIX)) return name;
        if (Files.exists(Path.of(name))) return name;
        Path p = DataDir.root().resolve("models").resolve(name);
        if (Files.isRegularFile(p) || Files.isRegularFile(p.resolve("config.json"))) return p.toString();
        Path bin = p.resolve(name + ".bin");
        if (Files.isRegularFile(bin)) return bin.toString();
        throw new IllegalArgumentException("no model '" + name + "': not 'default', not hf:ORG/NAME, not a path, and "
                + p + " is neither a model file, a Hugging Face directory (config.json) nor holds " + name + ".bin");
    }

    /** Whether {@link #load} would find {@code name} without downloading (hf: names count as not available). */
    public static boolean available(String name) {
        if (name.startsWith(Checkpoints.HUB_PREFIX)) return false;
        try {
            resolve(name);
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    public String name() {
        return name;
    }

    public Checkpoint checkpoint() {
        return model.checkpoint();
    }

    public Transformer transformer() {
        return model.transformer();
    }

    public Tokenizer tokenizer() {
        return model.tokenizer();
    }

    /** A dataset of {@link TextDatasets} ("wikitext2", "c4-train-slice") tokenized as the perplexity protocol does, once per model and text in this JVM. */
    public int[] tokens(String dataset) {
        return Evaluator.tokens(model.checkpoint(), model.tokenizer(), TextDatasets.load(dataset));
    }

    /**
     * Perplexity on the first {@code windows} non-overlapping windows of {@code seqlen} tokens (0: all), capped as
     * the protocol caps the dataset (c4-train-slice: 256 windows), as {@code ./lowbit ppl} and studies measure it, on the
     * session's device ({@link Lab#device()}).
     */
    public Perplexity.Result perplexity(String dataset, int seqlen, int windows) {
        return evaluate(dataset, seqlen, windows, null).perplexity();
    }

    /**
     * The whole evaluation: perplexity, with KL divergence to the float model when {@code kldCache} is a directory.
     * Evaluate the float model first (that writes its log-probabilities there), then quantize and evaluate again.
     */
    public Evaluator.Report evaluate(String dataset, int seqlen, int windows, Path kldCache) {
        Evaluator.Options options = Evaluator.Options.of(Lab.progress()).withKld(kldCache).withDevice(Lab.device(), weights);
        return Evaluator.perplexity(model, new Evaluator.Request(dataset, seqlen, windows), options);
    }

    /** This model as the evaluation runner sees it. */
    public EvaluatedModel evaluated() {
        return model;
    }

    /**
     * Zero-shot task {@code task} (one of {@link Tasks#names()}) on its first {@code limit} items (0: all), as
     * {@code ./lowbit eval --tasks TASK --limit N} scores it (lm-eval 0.4.13's requests and metrics, the default
     * scorer), without a results store: acc, acc_norm and their standard errors are on the result. Scored on the CPU,
     * whatever the session's device.
     */
    public TaskResult zeroShot(String task, int limit) {
        return zeroShot(ZeroShot.Prepared.of(Tasks.get(task), limit));
    }

    /** {@link #zeroShot(String, int)} on items read once ({@code ZeroShot.Prepared.of}), to score several models on them. */
    public TaskResult zeroShot(ZeroShot.Prepared task) {
        return ZeroShot.evaluate(model, task, ZeroShot.scorer(ZeroShot.DEFAULT_SCORER).apply(model.transformer()), Lab.progress());
    }

    /**
     * MMLU 5-shot on each subject's first {@code limit} test items (0: all), as {@code ./lowbit eval --tasks mmlu}
     * does, as its row (metrics.acc, metrics.acc_stderr, groups, subjects); needs data/mmlu: check
     * {@link Lab#mmluAbsence()} first.
     */
    public Row mmlu(int limit) {
        MmluTask.Prepared p = MmluTask.Prepared.of(MmluData.fromDataDir(), MmluPrompt.SHOTS, limit);
        return MmluTask.run(model, p, ZeroShot.scorer(ZeroShot.DEFAULT_SCORER).apply(model.transformer()), null, Lab.progress());
    }

    /**
     * Quantizes this model in place with {@code recipe} on the session's device ({@link Lab#device()}) and attaches its
     * runtime hooks (once: load again to quantize another way).
     */
    public QuantizationRecipe.Outcome quantize(QuantizationRecipe recipe) {
        return model.quantize(recipe, Lab.progress(), Lab.device());
    }

    /** How this model holds its linear weights: the session's {@link Lab#weights()} when it was loaded. */
    public WeightFormat weights() {
        return weights;
    }

    /** Calibration windows drawn as GPTQ draws them (documents mode) from "c4" or a text file. */
    public CalibrationSet calibration(String source, int nsamples, int seqlen, long seed) {
        return CalibrationSampler.of(model.tokenizer()).source(source).nsamples(nsamples).seqlen(seqlen).seed(seed).sample();
    }

    @Override
    public void close() {
        model.close();
    }

    @Override
    public String toString() {
        var c = model.transformer().config();
        return name + " (" + c.modelType() + ", " + c.numLayers() + " layers, hidden " + c.hiddenSize() + ", vocab "
                + c.vocabSize() + ", " + shown(model.checkpoint().source()) + ")";
    }

    /**
     * A checkpoint source as a notebook shows it: under the data directory as "data/...", so that committed
     * outputs name no machine's paths; anything else (the user's own path, hf:...) as it is.
     */
    static String shown(String source) {
        try {
            Path p = Path.of(source).toAbsolutePath().normalize();
            Path data = DataDir.root();
            if (p.startsWith(data)) return Path.of("data").resolve(data.relativize(p)).toString();
        } catch (java.nio.file.InvalidPathException e) {
            // not a path (hf:ORG/NAME): shown as it is
        }
        return source;
    }
}
