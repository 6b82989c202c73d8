package lowbit.eval;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.ObjIntConsumer;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.model.cuda.DeviceModel;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
import lowbit.results.Backend;
import lowbit.results.Row;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;

/**
 * The one evaluation runner: the CLI ({@code ppl}), studies and notebooks all measure an {@link EvaluatedModel}
 * through it, so the protocol is the same everywhere: the text tokenized once (cached per tokenizer and text in
 * this JVM), the protocol's window cap applied ({@link TextDatasets#protocolWindowCap}: c4-train-slice scores at
 * most 256 windows), the beyond-context warning, journal and resume, and a result whose {@link Report#fields()}
 * are the store row's fields with the model's provenance.
 *
 * <p>With a KL-divergence cache directory ({@link Options#kldCache}), a float model's run also writes its
 * next-token log-probabilities there ({@link FloatReference}, once per model and window set), and a quantized
 * model's run compares with them in the same forward pass that gives its perplexity ({@link KlDivergence}).
 *
 * <p>With {@link Options#withDevice} CUDA, the windows are scored by the model's copy on the GPU ({@link #onGpu}: the
 * recipe's codes kept packed, its runtime quantization as kernels), made once per run; the protocol, the journal and the
 * KL divergence are the same, and the report's fields say the device.
 */
public final class Evaluator {
    private Evaluator() {}

    public static final String KLD_WITH_JOURNAL = "--kld cannot be combined with --journal: per-position KL values are not journaled,"
            + " so a resumed run could not report them";

    /** Perplexity on {@code dataset} ({@link TextDatasets#NAMES}), windows of {@code seqlen}, the first {@code windows} (0: all). */
    public record Request(String dataset, int seqlen, int windows) {
        public Request {
            if (!TextDatasets.NAMES.contains(dataset))
                throw new IllegalArgumentException("unknown dataset '" + dataset + "' (known: " + TextDatasets.NAMES + ")");
            Perplexity.checkSeqlen(seqlen);
            if (windows < 0) throw new IllegalArgumentException("--windows must be >= 0, got " + windows);
        }

        /** The windows asked for, capped by the protocol (0: all windows, when the protocol has no cap). */
        public int cappedWindows() {
            int cap = TextDatasets.protocolWindowCap(dataset);
            return cap == 0 ? windows : windows == 0 ? cap : Math.min(cap, windows);
        }
    }

    /**
     * @param progress progress of the windows
     * @param journal  where finished windows are appended and resumed from, or null
     * @param warnings where warnings go (one line each, without the "lowbit: warning: " prefix)
     * @param kldCache the float references' directory, or null for no KL divergence
     * @param device   where the windows are scored: the model's CPU forward pass, or its copy on the GPU ({@link DeviceModel})
     * @param weights  how the GPU holds the dense weights (on the CPU the loaded model decides)
     */
    public record Options(Progress progress, PerplexityJournal journal, Consumer<String> warnings, Path kldCache, Device device,
                          WeightFormat weights) {
        public Options {
            if (journal != null && kldCache != null) throw new IllegalArgumentException(KLD_WITH_JOURNAL);
            if (device == null) device = Device.CPU;
            if (weights == null) weights = WeightFormat.FP32;
        }

        /** On the CPU. */
        public Options(Progress progress, PerplexityJournal journal, Consumer<String> warnings, Path kldCache) {
            this(progress, journal, warnings, kldCache, Device.CPU, WeightFormat.FP32);
        }

        public static Options of(Progress progress) {
            return new Options(progress, null, w -> {}, null);
        }

        public Options withKld(Path cache) {
            return new Options(progress, journal, warnings, cache, device, weights);
        }

        public Options withWarnings(Consumer<String> sink) {
            return new Options(progress, journal, sink, kldCache, device, weights);
        }

        public Options withJournal(PerplexityJournal j) {
            return new Options(progress, j, warnings, kldCache, device, weights);
        }

        /** Scores the windows on {@code device}, the GPU holding dense weights in {@code weights}. */
        public Options withDevice(Device d, WeightFormat w) {
            return new Options(progress, journal, warnings, kldCache, d, w);
        }
    }

    /**
     * One evaluated perplexity with what is needed to reproduce it.
     *
     * @param windowCap the protocol's cap on windows (0: none)
     * @param kld       the comparison with the float model, or null (a float model, or no KL divergence asked)
     * @param reference the float reference written or read, or null
     */
    public record Report(Perplexity.Result perplexity, String dataset, String datasetSha256, String protocol, int datasetTokens,
                         boolean bos, int windowCap, KlDivergence.Stats kld, Path reference, Map<String, Object> model) {

        public double ppl() {
            return perplexity.ppl();
        }

        /** Every field of a result row: the metrics, the data and window set, and the model's provenance. */
        public Map<String, Object> fields() {
            Perplexity.Result r = perplexity;
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("ppl", r.ppl());
            m.put("protocol", "gptq");
            m.put("dataset", dataset);
            m.put("dataset_sha256", datasetSha256);
            m.put("dataset_protocol", protocol);
            m.put("dataset_tokens", datasetTokens);
            m.put("bos_prepended", bos);
            m.put("tokens", r.tokens());
            m.put("predicted_tokens", r.predicted());
            m.put("nll_sum", r.nllSum());
            m.put("windows", r.windows());
            m.put("seqlen", r.seqlen());
            m.put("window_cap", windowCap);
            m.put("context_length", r.contextLength());
            m.put("beyond_context", r.beyondContext());
            m.put("seconds", r.seconds());
            m.put("tokens_per_second", r.tokensPerSecond());
            m.put("resumed_windows", r.resumedWindows());
            m.putAll(model);
            if (kld != null) m.put("kld", kld.fields());
            return m;
        }

        /**
         * The store row of experiment {@code params}: its key, the parameters, {@link #fields()} (where a parameter
         * has the same name, the parameter) and the standard provenance.
         */
        public Row row(Map<String, ?> params) {
            // the parameters asked for ("model": "default") stay as asked; the resolved source is in model_sha256
            Map<String, Object> measured = fields();
            measured.keySet().removeAll(params.keySet());
            Backend backend = backend();
            Map<String, Object> keyed = backend.parameters(params);
            return Row.of(Row.key(keyed)).withAll(keyed).withAll(measured).withProvenance(backend);
        }

        /** Where the windows were scored, as the model's fields record it (device, weights, device_description). */
        public Backend backend() {
            Device device = Device.CUDA.label().equals(model.get("device")) ? Device.CUDA : Device.CPU;
            WeightFormat weights = model.get("weights") instanceof String w ? WeightFormat.parse(w) : WeightFormat.FP32;
            return model.get("device_description") instanceof String d ? new Backend(device, weights, d)
                    : Backend.of(device, weights, model.get("threads") instanceof Number n ? n.intValue() : Parallel.defaultThreads());
        }
    }

    /** The backend an evaluation of {@code model} under {@code options} runs on. */
    static Backend backend(EvaluatedModel model, Options options) {
        return options.device() == Device.CPU ? Backend.of(Device.CPU, model.transformer().weightFormat(), model.transformer().threads())
                : Backend.of(Device.CUDA, options.weights());
    }

    private static final Map<String, int[]> TOKENS = new ConcurrentHashMap<>();

    /** The text's tokens under the checkpoint's tokenizer, tokenized once per (checkpoint, text) in this JVM: WikiText-2 costs seconds. */
    public static int[] tokens(Checkpoint ckpt, Tokenizer tok, TextDatasets.Text text) {
        return TOKENS.computeIfAbsent(ckpt.sha256() + "|" + text.sha256(), k -> tok.encodeWithSpecials(text.text()));
    }

    /** The sha256 of the float checkpoint a model's weights come from: a quantized directory's base model, else its own. */
    public static String floatSha256(EvaluatedModel model) {
        if (model.checkpoint() instanceof QuantizedCheckpoint qc) return qc.manifest().path("base_model").path("sha256").asText();
        return model.checkpoint().sha256();
    }

    /**
     * Refuses a KL divergence that means nothing: {@code other} against itself (a float model) and two models whose
     * vocabularies differ (their distributions are over different tokens).
     */
    public static void checkComparable(EvaluatedModel floatModel, EvaluatedModel other) {
        if (!other.quantized() || other.key().equals(floatModel.key()))
            throw new IllegalArgumentException("KL divergence of " + other.checkpoint().source()
                    + " against itself is 0 by definition: --kld compares a quantized model (--quant SPEC, or a quantized directory) with its float model");
        checkSameVocabulary(floatModel.checkpoint(), other.checkpoint());
    }

    /** Refuses two checkpoints whose vocabularies differ: their next-token distributions are over different tokens. */
    public static void checkSameVocabulary(Checkpoint floatModel, Checkpoint other) {
        int a = floatModel.config().vocabSize(), b = other.config().vocabSize();
        if (a != b)
            throw new IllegalArgumentException("KL divergence needs one vocabulary: the float model " + floatModel.source()
                    + " has " + a + " tokens, " + other.source() + " has " + b);
    }

    /** Perplexity of {@code model} as {@code request} asks, with KL divergence to its float model when {@code options} has a cache. */
    public static Report perplexity(EvaluatedModel model, Request request, Options options) {
        return run(model, request, options, options.kldCache() != null && model.quantized() ? floatSha256(model) : null);
    }

    /**
     * Perplexity and KL divergence to another float model's reference in {@code options}' cache, the model with sha256
     * {@code floatSha256} (made first by {@link #ensureReference}): for a checkpoint that does not record its float
     * model, such as a GGUF file exported or published elsewhere.
     */
    public static Report compareWith(EvaluatedModel model, String floatSha256, Request request, Options options) {
        if (options.kldCache() == null) throw new IllegalArgumentException("a KL-divergence comparison needs the float reference's directory");
        return run(model, request, options, floatSha256);
    }

    /**
     * Perplexity and KL divergence to the float reference in {@code options}' cache for a model changed in place
     * without a recipe (sensitivity quantizes one linear of the float model at a time), which {@link #perplexity}
     * would take for the float model itself.
     */
    public static Report compare(EvaluatedModel model, Request request, Options options) {
        if (options.kldCache() == null) throw new IllegalArgumentException("a KL-divergence comparison needs the float reference's directory");
        return run(model, request, options, floatSha256(model));
    }

    /** {@code compareTo}: the sha256 of the float model whose reference the model is compared with, or null to write or check its own. */
    private static Report run(EvaluatedModel model, Request request, Options options, String compareTo) {
        TextDatasets.Text text = TextDatasets.load(request.dataset());
        var cfg = model.transformer().config();
        Perplexity.checkSeqlen(cfg, request.seqlen());
        Tokenizer tok = model.tokenizer();
        int[] ids = tokens(model.checkpoint(), tok, text);
        int seqlen = request.seqlen();
        int context = cfg.maxPositions();
        // transformers runs such windows too, with a warning; the result records it as beyond_context
        if (Perplexity.beyondContext(context, seqlen))
            options.warnings().accept(String.format(Locale.ROOT, "--seqlen %d is longer than the model's declared context of %d tokens;"
                    + " positions past it are extrapolated (recorded as beyond_context)", seqlen, context));
        String journalKey = backend(model, options).key(String.join("|", model.key(), request.dataset(), text.sha256(), Integer.toString(seqlen)));
        int limit = request.cappedWindows();
        int windows = Perplexity.windowCount(ids.length, seqlen, limit);
        Perplexity.Result r;
        KlDivergence.Stats stats = null;
        Path referenceFile = null;
        Map<String, Object> provenance = new LinkedHashMap<>(model.provenance());
        try (Forward forward = Forward.open(model, options, seqlen)) {
            provenance.putAll(forward.provenance());
            if (options.kldCache() == null || windows == 0) {
                r = Perplexity.evaluate(model.transformer(), ids, seqlen, limit, options.progress(), options.journal(), journalKey,
                        (w, window) -> forward.nll(window));
            } else {
                FloatReference.Key key = FloatReference.Key.of(compareTo != null ? compareTo : floatSha256(model), cfg.vocabSize(), ids, seqlen, windows);
                referenceFile = FloatReference.file(options.kldCache(), key);
                if (compareTo == null) {
                    if (FloatReference.exists(options.kldCache(), key)) {
                        try (FloatReference ignored = FloatReference.open(options.kldCache(), key)) {
                            // opened only to check it: a stale or foreign file is an error now, not after the quantized runs
                        }
                        r = Perplexity.evaluate(model.transformer(), ids, seqlen, limit, options.progress(), null, journalKey,
                                (w, window) -> forward.nll(window));
                    } else {
                        r = writeReference(model, forward, ids, seqlen, limit, options, journalKey, key);
                    }
                } else {
                    if (!FloatReference.exists(options.kldCache(), key))
                        throw new IllegalArgumentException("no float reference for the KL divergence of " + model.checkpoint().source()
                                + " in " + options.kldCache() + ": evaluate its float model (sha256 " + key.modelSha256() + ") on the same "
                                + windows + " windows first");
                    Compared c = compare(model, forward, ids, seqlen, limit, options, journalKey, key);
                    r = c.result;
                    stats = c.stats;
                }
            }
        }
        boolean bos = ids.length > 0 && tok.addsBos() && tok.bosId().isPresent() && ids[0] == tok.bosId().getAsInt();
        return new Report(r, request.dataset(), text.sha256(), text.protocol(), ids.length, bos,
                TextDatasets.protocolWindowCap(request.dataset()), stats, referenceFile, provenance);
    }

    /**
     * Makes sure {@code floatModel}'s reference for {@code request} is in {@code cache}, computing it (one forward pass
     * over the windows) when it is not; returns the float model's report when it ran, else null.
     */
    public static Report ensureReference(EvaluatedModel floatModel, Request request, Path cache, Progress progress) {
        return ensureReference(floatModel, request, new Options(progress, null, w -> {}, cache));
    }

    /** As above, in {@code options}' cache, on its device. */
    public static Report ensureReference(EvaluatedModel floatModel, Request request, Options options) {
        if (floatModel.quantized())
            throw new IllegalArgumentException(floatModel.checkpoint().source() + " is quantized: the float reference must come from a float model");
        FloatReference.Key key = referenceKey(floatModel, request);
        if (key != null && FloatReference.exists(options.kldCache(), key)) return null;
        return perplexity(floatModel, request, new Options(options.progress(), null, w -> {}, options.kldCache(), options.device(), options.weights()));
    }

    /**
     * Why {@code model}'s float reference for {@code request} cannot be kept in {@code cache} (too large for the limit or
     * the disk), or null when it can: a study measures KL divergence only where it fits instead of failing.
     */
    public static String referenceTooLarge(EvaluatedModel model, Request request, Path cache) {
        FloatReference.Key key = referenceKey(model, request);
        return key == null ? null : FloatReference.tooLarge(cache, key);
    }

    /** The key of {@code model}'s float reference for the windows {@code request} scores, or null when the text has no whole window. */
    private static FloatReference.Key referenceKey(EvaluatedModel model, Request request) {
        int[] ids = tokens(model.checkpoint(), model.tokenizer(), TextDatasets.load(request.dataset()));
        int windows = Perplexity.windowCount(ids.length, request.seqlen(), request.cappedWindows());
        return windows == 0 ? null
                : FloatReference.Key.of(floatSha256(model), model.transformer().config().vocabSize(), ids, request.seqlen(), windows);
    }

    // Both passes below take each position's NLL from the float32 log-prob row they stream, so their perplexity is
    // within float rounding (about 1e-7 relative) of Transformer.nll's, which subtracts in double.
    private static Perplexity.Result writeReference(EvaluatedModel model, Forward forward, int[] ids, int seqlen, int limit, Options options,
                                                    String journalKey, FloatReference.Key key) {
        try (FloatReference.Writer writer = FloatReference.create(options.kldCache(), key)) {
            Perplexity.Result r = Perplexity.evaluate(model.transformer(), ids, seqlen, limit, options.progress(), null, journalKey,
                    (w, window) -> {
                        double[] nll = new double[window.length - 1];
                        forward.nextTokenLogProbs(window, (lp, t) -> {
                            nll[t] = -lp[window[t + 1]];
                            writer.row(w, t, lp);
                        });
                        return nll;
                    });
            writer.commit();
            return r;
        }
    }

    private record Compared(Perplexity.Result result, KlDivergence.Stats stats) {}

    private static Compared compare(EvaluatedModel model, Forward forward, int[] ids, int seqlen, int limit, Options options, String journalKey,
                                    FloatReference.Key key) {
        int positions = key.windows() * (seqlen - 1), vocab = key.vocab();
        double[] kld = new double[positions], nllQ = new double[positions], nllF = new double[positions];
        boolean[] same = new boolean[positions];
        ThreadLocal<float[][]> scratch = ThreadLocal.withInitial(() -> new float[][] {new float[vocab], new float[vocab]});
        Perplexity.Result r;
        try (FloatReference ref = FloatReference.open(options.kldCache(), key)) {
            r = Perplexity.evaluate(model.transformer(), ids, seqlen, limit, options.progress(), null, journalKey, (w, window) -> {
                double[] nll = new double[window.length - 1];
                forward.nextTokenLogProbs(window, (lp, t) -> {
                    float[][] s = scratch.get();
                    ref.row(w, t, s[0]);
                    int i = w * (seqlen - 1) + t, target = window[t + 1];
                    KlDivergence.Position p = KlDivergence.compare(s[0], lp, vocab, s[1]);
                    nll[t] = -lp[target];
                    nllQ[i] = nll[t];
                    nllF[i] = -s[0][target];
                    kld[i] = p.kld();
                    same[i] = p.sameTop();
                });
                return nll;
            });
        }
        return new Compared(r, KlDivergence.of(kld, nllQ, nllF, same));
    }

    /**
     * {@code model} copied to the GPU as it is evaluated: the packed codes of the recipe that quantized it (dense weights in
     * {@code weights} for everything else) and its runtime quantization, the recipe's or a quantized directory's. Refused
     * in one line, before any upload, when the GPU path does not run the model or it does not fit with windows of
     * {@code seqlen} tokens.
     */
    public static DeviceModel onGpu(EvaluatedModel model, WeightFormat weights, int seqlen) {
        Transformer t = model.transformer();
        QuantizationRecipe.Outcome outcome = model.outcome();
        var codes = outcome == null ? null : outcome.model();
        RuntimeQuantization runtime = outcome != null ? outcome.runtime()
                : model.checkpoint() instanceof QuantizedCheckpoint qc ? RuntimeQuantization.fromJson(qc.manifest().path("quantization").path("runtime"))
                : RuntimeQuantization.NONE;
        DeviceModel.checkSupported(t);
        Cuda cuda = Cuda.get();
        cuda.require(DeviceModel.bytesNeeded(t.config(), codes, weights, seqlen), String.format(Locale.ROOT,
                "%s with %s weights and windows of %d tokens", model.checkpoint().source(), weights.label(), seqlen));
        return DeviceModel.upload(cuda, t, codes, runtime, weights);
    }

    /**
     * Where windows are scored: the model's own forward pass on the CPU, or its copy on the GPU (a {@link DeviceModel} made
     * once per evaluation, with the recipe's packed codes and runtime quantization, or a quantized directory's runtime).
     */
    private interface Forward extends AutoCloseable {
        double[] nll(int[] window);

        /** Rows 0..T-2 of the window's next-token log-softmax, as {@link Transformer#nextTokenLogProbs}. */
        void nextTokenLogProbs(int[] window, ObjIntConsumer<float[]> row);

        /** device (and on the GPU: weights, device_description) for the report's fields. */
        Map<String, Object> provenance();

        @Override
        void close();

        static Forward open(EvaluatedModel model, Options options, int seqlen) {
            Transformer t = model.transformer();
            if (options.device() == Device.CPU)
                return new Forward() {
                    public double[] nll(int[] window) {
                        return t.nll(window);
                    }

                    public void nextTokenLogProbs(int[] window, ObjIntConsumer<float[]> row) {
                        t.nextTokenLogProbs(window, row);
                    }

                    public Map<String, Object> provenance() {
                        return backend(model, options).provenance();
                    }

                    public void close() {}
                };
            DeviceModel dm = onGpu(model, options.weights(), seqlen);
            Map<String, Object> p = new LinkedHashMap<>(backend(model, options).provenance());
            p.put("device_model", dm.describe());
            return new Forward() {
                public double[] nll(int[] window) {
                    return dm.nll(window);
                }

                public void nextTokenLogProbs(int[] window, ObjIntConsumer<float[]> row) {
                    int last = window.length - 1;
                    dm.logProbs(window, (lp, r) -> {
                        if (r < last) row.accept(lp, r);
                    });
                }

                public Map<String, Object> provenance() {
                    return p;
                }

                public void close() {
                    dm.close();
                }
            };
        }
    }
}
