package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.cuda.Device;
import lowbit.model.cuda.DeviceModel;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.eval.KlDivergence;
import lowbit.eval.Perplexity;
import lowbit.eval.PerplexityJournal;
import lowbit.memory.MemoryEstimate;
import lowbit.memory.RunMarker;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "ppl", mixinStandardHelpOptions = true,
        description = "Perplexity under the GPTQ protocol (non-overlapping windows, every position scored).")
final class PplCommand implements Callable<Integer>, MemoryEstimated {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--dataset", defaultValue = "wikitext2", paramLabel = "NAME",
            description = "wikitext2 or c4-train-slice (default: ${DEFAULT-VALUE})")
    String dataset;

    @Option(names = "--seqlen", defaultValue = "2048",
            description = "window length in tokens, at least 2; past the model's declared context it runs with a warning, "
                    + "recorded as beyond_context (default: ${DEFAULT-VALUE})")
    int seqlen;

    @Option(names = "--windows", defaultValue = "0", paramLabel = "K", description = "evaluate only the first K windows (0: all)")
    int windows;

    @Option(names = "--journal", paramLabel = "FILE",
            description = "append each finished window here and resume from it after an interruption")
    Path journal;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @Option(names = "--kld", description = "also the KL divergence of the quantized model's next-token distributions from its float "
            + "model's on the same windows (llama.cpp's --kl-divergence statistics), in the same forward pass; needs --quant SPEC "
            + "or a quantized directory whose manifest names its float model")
    boolean kld;

    @Option(names = "--kld-reference", paramLabel = "MODEL",
            description = "with --kld: the float model to compare with (default, hf:ORG/NAME, a directory or a .gguf file), for a model that "
                    + "does not record its own, such as an exported or published GGUF file")
    String kldReference;

    @Option(names = "--kld-cache", defaultValue = "results/kld-cache", paramLabel = "DIR",
            description = "where the float model's log-probabilities are kept for --kld, once per model and window set (default: ${DEFAULT-VALUE})")
    Path kldCache;

    @Override
    public Integer call() {
        if (quantOptions.quant != null) modelOptions.requireFp32Weights("--quant");
        // Before the model loads and quantizes: a journal that cannot be written must not cost the run.
        if (kld && journal != null) throw new IllegalArgumentException(Evaluator.KLD_WITH_JOURNAL);
        if (kldReference != null && !kld) throw new IllegalArgumentException("--kld-reference names the float model of --kld: give --kld too");
        PerplexityJournal journaled = journal == null ? null : PerplexityJournal.open(journal);
        try (RunMarker marker = journal == null ? null
                : RunMarker.start(Path.of(journal + ".running"), "ppl --journal " + journal, "the windows in " + journal + " are kept")) {
            if (marker != null) marker.previousRunKilled().ifPresent(m -> System.err.println("lowbit: " + m));
            PrintWriter err = spec.commandLine().getErr();
            Evaluator.Options options = new Evaluator.Options(Progress.terminal(), journaled,
                    w -> err.println("lowbit: warning: " + w), kld ? kldCache : null).withDevice(modelOptions.device(), modelOptions.weights());
            Evaluator.Report report = run(modelOptions, quantOptions.recipe(null, null), new Evaluator.Request(dataset, seqlen, windows),
                    options, kldReference);
            System.out.println(json ? json(report).toPrettyString() : summary(report));
        }
        return 0;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return MemoryEstimate.of("ppl", ckpt.config(), quantOptions.recipe(null, null), seqlen, modelOptions.weights());
        }
    }

    /** The report's fields with the run's environment: the --json object (keys in the README). */
    static ObjectNode json(Evaluator.Report report) {
        ObjectNode o = new ObjectMapper().valueToTree(report.fields());
        report.backend().provenance().forEach((k, v) -> o.put(k, String.valueOf(v)));
        o.put("java", Runtime.version().toString());
        o.put("code_version", CodeVersion.current().toString());
        return o;
    }

    static String summary(Evaluator.Report report) {
        Perplexity.Result result = report.perplexity();
        Map<String, Object> model = report.model();
        String sha = (String) model.get("model_sha256");
        StringBuilder s = new StringBuilder(String.format(Locale.ROOT,
                "%s perplexity (GPTQ protocol, seqlen %d, %d windows, %d tokens): %.4f%n"
                        + "model %s (sha256 %s)%n%.1f s, %.1f tokens/s on %s",
                report.dataset(), result.seqlen(), result.windows(), result.tokens(), result.ppl(), model.get("model"),
                sha.substring(0, 12), result.seconds(), result.tokensPerSecond(),
                report.backend().description() + ", " + report.backend().weights().label() + " weights"));
        if (result.beyondContext())
            s.append(String.format(Locale.ROOT, "%nwindows longer than the model's declared context of %d tokens", result.contextLength()));
        if (model.get("quantization") instanceof Map<?, ?> q)
            s.append(String.format(Locale.ROOT, "%nquantized: %s, %.3f bits/weight", q.get("spec") != null ? q.get("spec") : q.get("method"),
                    ((Number) model.get("bits_per_weight")).doubleValue()));
        KlDivergence.Stats k = report.kld();
        if (k != null)
            s.append(String.format(Locale.ROOT, "%nKL divergence to the float model over %d positions:"
                            + " mean %.6f +/- %.6f, median %.6f, p90 %.6f, p95 %.6f, p99 %.6f, max %.6f%n"
                            + "same top p %.3f +/- %.3f %%, RMS dp %.3f +/- %.3f %%, PPL(Q)/PPL(float) %.6f +/- %.6f"
                            + " (ln ratio %.6f +/- %.6f; float perplexity %.4f)",
                    k.positions(), k.mean(), k.meanStderr(), k.median(), k.p90(), k.p95(), k.p99(), k.max(), 100 * k.sameTop(),
                    100 * k.sameTopStderr(), 100 * k.rmsDp(), 100 * k.rmsDpStderr(), k.pplRatio(), k.pplRatioStderr(), k.lnPplRatio(),
                    k.lnPplRatioStderr(), k.pplFloat()));
        return s.toString();
    }

    /**
     * Perplexity of the model, quantized first by {@code recipe} when it is not null. With KL divergence, the float
     * reference is made first (from the model before it is quantized, or from the float model a quantized
     * directory's manifest names), unless it is already in the cache.
     */
    static Evaluator.Report run(ModelOptions modelOptions, QuantizationRecipe recipe, Evaluator.Request request, Evaluator.Options options) {
        return run(modelOptions, recipe, request, options, null);
    }

    /** As above; with {@code kldReference}, the KL divergence is to that float model rather than to the model's own. */
    static Evaluator.Report run(ModelOptions modelOptions, QuantizationRecipe recipe, Evaluator.Request request, Evaluator.Options options,
                                String kldReference) {
        Progress progress = options.progress();
        String referenceSha = null;
        if (kldReference != null) {
            try (EvaluatedModel reference = EvaluatedModel.load(Checkpoints.open(kldReference, null), modelOptions.threads())) {
                if (reference.quantized())
                    throw new IllegalArgumentException("--kld-reference " + kldReference + " is a quantized model: the reference must be a float model");
                try (Checkpoint ckpt = modelOptions.open()) {
                    Evaluator.checkSameVocabulary(reference.checkpoint(), ckpt);
                }
                Perplexity.checkSeqlen(reference.transformer().config(), request.seqlen());
                Evaluator.ensureReference(reference, request, onDevice(options, modelOptions, reference.transformer()));
                referenceSha = reference.checkpoint().sha256();
            }
        }
        Checkpoint ckpt = modelOptions.open();
        try {
            if (options.kldCache() != null && recipe == null && referenceSha == null) {
                if (!(ckpt instanceof QuantizedCheckpoint qc))
                    throw new IllegalArgumentException("--kld compares a quantized model with its float model: give --quant SPEC, or --model a "
                            + "quantized directory made by ./lowbit quantize (KL divergence of a model against itself is 0)");
                // the float model first, alone in memory, and only its reference is kept
                try (EvaluatedModel base = EvaluatedModel.load(baseModel(qc), modelOptions.threads())) {
                    Evaluator.checkSameVocabulary(base.checkpoint(), qc);
                    Perplexity.checkSeqlen(base.transformer().config(), request.seqlen());
                    Evaluator.ensureReference(base, request, onDevice(options, modelOptions, base.transformer()));
                }
            }
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
        try (EvaluatedModel model = EvaluatedModel.load(ckpt, modelOptions.threads(), modelOptions.weights())) {
            Perplexity.checkSeqlen(model.transformer().config(), request.seqlen());
            // before quantizing: the loaded model is the float reference
            Evaluator.Options here = onDevice(options, modelOptions, model.transformer());
            if (options.kldCache() != null && recipe != null && referenceSha == null)
                Evaluator.ensureReference(model, request, here);
            if (recipe != null) model.quantize(recipe, progress, recipe.device(options.device(), !modelOptions.deviceIsAuto()));
            here = onDevice(here, modelOptions, model.transformer());  // a rotating recipe makes the model one the GPU path refuses
            return referenceSha != null ? Evaluator.compareWith(model, referenceSha, request, here) : Evaluator.perplexity(model, request, here);
        }
    }

    /**
     * The options on the CPU where --device was left to auto and the GPU path does not run this model (OPT, a rotated
     * model), with a warning; an explicit --device cuda keeps the GPU and the evaluator refuses the model in one line.
     */
    static Evaluator.Options onDevice(Evaluator.Options options, ModelOptions modelOptions, Transformer model) {
        if (options.device() != Device.CUDA || !modelOptions.deviceIsAuto()) return options;
        try {
            DeviceModel.checkSupported(model);
            return options;
        } catch (IllegalArgumentException e) {
            options.warnings().accept("--device auto: running on the CPU: " + e.getMessage());
            return options.withDevice(Device.CPU, options.weights());
        }
    }

    /** The float checkpoint a quantized directory was made from, as its manifest names it, checked by sha256. */
    private static Checkpoint baseModel(QuantizedCheckpoint qc) {
        JsonNode base = qc.manifest().path("base_model");
        String spec = base.path("spec").asText(""), sha = base.path("sha256").asText("");
        if (spec.isEmpty())
            throw new IllegalArgumentException("--kld: " + qc.source() + " does not name the float model it was made from (base_model.spec in lowbit.json)");
        Checkpoint c = Checkpoints.open(spec, null);
        if (!c.sha256().equals(sha)) {
            c.close();
            throw new IllegalArgumentException("--kld: the float model " + spec + " named by " + qc.source() + " has sha256 " + c.sha256()
                    + ", not the recorded " + sha + " it was quantized from");
        }
        return c;
    }
}
