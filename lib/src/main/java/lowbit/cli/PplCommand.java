package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.NullNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.eval.Perplexity;
import lowbit.eval.PerplexityJournal;
import lowbit.eval.TextDatasets;
import lowbit.memory.MemoryEstimate;
import lowbit.memory.RunMarker;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
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

    @Override
    public Integer call() {
        // Before the model loads and quantizes: a journal that cannot be written must not cost the run.
        PerplexityJournal journaled = journal == null ? null : PerplexityJournal.open(journal);
        try (RunMarker marker = journal == null ? null
                : RunMarker.start(Path.of(journal + ".running"), "ppl --journal " + journal, "the windows in " + journal + " are kept")) {
            if (marker != null) marker.previousRunKilled().ifPresent(m -> System.err.println("lowbit: " + m));
            Run run = run(modelOptions, quantOptions.recipe(null, null), dataset, seqlen, windows, journaled, Progress.terminal(),
                    spec.commandLine().getErr());
            System.out.println(json ? run.json().toPrettyString() : run.summary());
        }
        return 0;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return MemoryEstimate.of("ppl", ckpt.config(), quantOptions.recipe(null, null), seqlen);
        }
    }

    /** One evaluated perplexity with everything needed to reproduce it. */
    record Run(Perplexity.Result result, String dataset, TextDatasets.Text text, String model, String modelSha256,
               String modelType, int threads,
               int datasetTokens, boolean bos, JsonNode quantization) {
        ObjectNode json() {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("ppl", result.ppl());
            o.put("protocol", "gptq");
            o.put("dataset", dataset);
            o.put("dataset_sha256", text.sha256());
            o.put("dataset_tokens", datasetTokens);
            o.put("bos_prepended", bos);
            o.put("tokens", result.tokens());
            o.put("predicted_tokens", result.predicted());
            o.put("nll_sum", result.nllSum());
            o.put("windows", result.windows());
            o.put("seqlen", result.seqlen());
            o.put("context_length", result.contextLength());
            o.put("beyond_context", result.beyondContext());
            o.put("seconds", result.seconds());
            o.put("tokens_per_second", result.tokensPerSecond());
            o.put("resumed_windows", result.resumedWindows());
            o.put("model", model);
            o.put("model_sha256", modelSha256);
            o.put("model_type", modelType);
            o.put("threads", threads);
            o.put("backend", "cpu-java-vector");
            o.put("java", Runtime.version().toString());
            o.put("code_version", CodeVersion.current().toString());
            o.set("quantization", quantization);
            return o;
        }

        String summary() {
            return String.format(Locale.ROOT,
                    "%s perplexity (GPTQ protocol, seqlen %d, %d windows, %d tokens): %.4f%n"
                            + "model %s (sha256 %s)%n%.1f s, %.1f tokens/s on %d threads",
                    dataset, result.seqlen(), result.windows(), result.tokens(), result.ppl(), model,
                    modelSha256.substring(0, 12), result.seconds(), result.tokensPerSecond(), threads)
                    + (result.beyondContext() ? String.format(Locale.ROOT, "%nwindows longer than the model's declared context of %d tokens",
                    result.contextLength()) : "")
                    + (quantization.isNull() ? "" : String.format(Locale.ROOT, "%nquantized: %s, %.3f bits/weight",
                    quantization.path("spec").asText(quantization.path("method").asText()), quantization.path("bits_per_weight").asDouble()));
        }
    }

    /** Perplexity of the model, quantized first by {@code recipe} when it is not null. */
    static Run run(ModelOptions modelOptions, QuantizationRecipe recipe, String dataset, int seqlen, int windows,
                   PerplexityJournal journaled, Progress progress, PrintWriter warnings) {
        Perplexity.checkSeqlen(seqlen);
        if (windows < 0) throw new IllegalArgumentException("--windows must be >= 0, got " + windows);
        TextDatasets.Text text = TextDatasets.load(dataset);
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            Perplexity.checkSeqlen(ckpt.config(), seqlen);
            var tok = Checkpoints.tokenizer(ckpt);
            JsonNode quantization = NullNode.getInstance();
            String modelKey = ckpt.sha256();
            if (recipe != null) {
                QuantizationRecipe.Outcome q = recipe.apply(model, tok, progress);
                quantization = new ObjectMapper().valueToTree(q.provenance());
                // The journal must never mix windows of differently quantized models.
                modelKey += "|" + q.recipe() + "|" + (q.calibration() == null ? "" : q.calibration().windowsSha256());
            } else if (ckpt instanceof QuantizedCheckpoint qc) {
                quantization = qc.manifest().path("quantization").deepCopy();
                RuntimeQuantization.fromJson(quantization.path("runtime")).attach(model);
            }
            int[] ids = tok.encodeWithSpecials(text.text());
            int cap = TextDatasets.protocolWindowCap(dataset);
            int limit = cap == 0 ? windows : windows == 0 ? cap : Math.min(cap, windows);
            String key = String.join("|", modelKey, dataset, text.sha256(), Integer.toString(seqlen));
            int context = ckpt.config().maxPositions();
            // transformers runs such windows too, with a warning; the result records it as beyond_context
            if (Perplexity.beyondContext(context, seqlen))
                warnings.printf(Locale.ROOT, "lowbit: warning: --seqlen %d is longer than the model's declared context of %d tokens;"
                        + " positions past it are extrapolated (recorded as beyond_context)%n", seqlen, context);
            Perplexity.Result r = Perplexity.evaluate(model, ids, seqlen, limit, progress, journaled, key);
            boolean bos = ids.length > 0 && tok.addsBos() && tok.bosId().isPresent() && ids[0] == tok.bosId().getAsInt();
            return new Run(r, dataset, text, ckpt.source(), ckpt.sha256(), ckpt.config().modelType(), model.threads(),
                    ids.length, bos, quantization);
        }
    }
}
