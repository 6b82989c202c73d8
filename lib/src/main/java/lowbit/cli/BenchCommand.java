package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.model.cuda.DeviceModel;
import lowbit.eval.ContinuationScorer;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Perplexity;
import lowbit.eval.TextDatasets;
import lowbit.eval.tasks.RequestEncoder;
import lowbit.eval.tasks.TaskEvaluator;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.io.DataDir;
import lowbit.memory.MemoryBudget;
import lowbit.memory.MemoryEstimate;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
import lowbit.quant.rotation.QuaRot;
import lowbit.tensor.Hadamard;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks: forward (tokens/s of the perplexity forward pass, against transformers), gptq (GPTQ on one "
                + "2048x2048 layer against the PyTorch reference algorithm, and on the whole model), awq (AWQ against GPTQ "
                + "on the same calibration windows), billm (BiLLM against GPTQ W2 on the same windows), eval (zero-shot items/s against "
                + "lm-eval's HF backend) and rotate (QuaRot's fold + rotate, and the forward pass with its online Hadamards against the "
                + "plain one), export (export gguf to Q4_K_M against llama.cpp's llama-quantize on the same F32 file), train (tokens/s of "
                + "a training step against the forward pass and against PyTorch). "
                + "./lowbit bench WHAT --help lists each one's options.",
        subcommands = {BenchCommand.Forward.class, GptqBench.class, AllocateBench.class, BenchCommand.Awq.class, BillmBench.class, BenchCommand.Eval.class,
                BenchCommand.Rotate.class, ExportBench.class, TrainBench.class, DequantBench.class})
final class BenchCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new IllegalArgumentException("bench needs a benchmark: forward, gptq, allocate, awq, billm, eval, rotate, export or train (./lowbit bench --help)");
    }

    /** The baseline options: auto runs it when .venv can, none skips it, the baseline's own name requires it. */
    static void checkBaseline(String baseline, String required) {
        if (!List.of("auto", "none", required).contains(baseline))
            throw new IllegalArgumentException("--baseline must be auto, none or " + required + ", got '" + baseline + "'");
    }

    @Command(name = "forward", mixinStandardHelpOptions = true,
            description = "Tokens/s of the perplexity forward pass on WikiText-2 and the process's peak resident memory, and the same "
                    + "windows through transformers on the CPU when torch and transformers are installed in .venv. --weights bf16 "
                    + "times bf16 linears; --weights both times fp32 then bf16, each in a child JVM of its own (heap sized from its "
                    + "memory estimate) so that each peak RSS is that format's, and prints their ratio. On --device cuda the windows "
                    + "run through DeviceModel on the GPU, and transformers on torch CUDA in the same dtype (--model a GGUF file or a "
                    + "Hugging Face directory).")
    static final class Forward implements Callable<Integer> {
        @Mixin
        ModelOptions modelOptions;

        @Option(names = "--seqlen", defaultValue = "2048", paramLabel = "L", description = "window length (default: ${DEFAULT-VALUE})")
        int seqlen;

        @Option(names = "--windows", defaultValue = "2", paramLabel = "K", description = "timed windows, after one warm-up window (default: ${DEFAULT-VALUE})")
        int windows;

        @Option(names = "--baseline", defaultValue = "auto", paramLabel = "auto|none|transformers",
                description = "transformers on the same windows; auto runs it when .venv has torch and transformers (default: ${DEFAULT-VALUE})")
        String baseline;

        @Option(names = "--quarot", description = "rotate the model first (QuaRot, seed 0) and time the forward pass with its online "
                + "Hadamards on down_proj's input and on queries and keys; the transformers baseline runs the plain model")
        boolean quarot;

        /** Set on the child JVMs of --weights both: print the figures as one JSON line for the parent. */
        @Option(names = "--child-json", hidden = true)
        boolean childJson;

        /** One format's figures: tokens/s and NLL sum of the timed windows, peak RSS of the process (-1: unknown). */
        record Figures(String model, String label, int threads, double tokensPerSecond, double nllSum, long peakRssBytes) {}

        @Override
        public Integer call() {
            if (windows < 1) throw new IllegalArgumentException("--windows must be >= 1, got " + windows);
            if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be >= 2, got " + seqlen);
            checkBaseline(baseline, "transformers");
            boolean both = "both".equalsIgnoreCase(modelOptions.weightsOption.strip());
            if (both && quarot) throw new IllegalArgumentException("--quarot rotates the weights, which needs --weights fp32; --weights both times bf16 too");
            WeightFormat weights = both ? WeightFormat.FP32 : modelOptions.weights();
            if (quarot && weights != WeightFormat.FP32)
                throw new IllegalArgumentException("--quarot rotates the weights, which needs --weights fp32 (a rotated weight is not exact in bf16)");
            String loadAtStart = Eval.loadAverage();
            List<Figures> runs = new ArrayList<>();
            if (both) {
                for (WeightFormat f : WeightFormat.values()) runs.add(inChildJvm(f));
            } else {
                runs.add(modelOptions.device() == Device.CUDA ? timeOnGpu(weights) : time(weights));
            }
            Figures first = runs.get(0);
            if (childJson) {
                System.out.println(new ObjectMapper().valueToTree(first));
                return 0;
            }
            System.out.printf(Locale.ROOT, "forward  model=%s seqlen=%d windows=%d threads=%d device=%s weights=%s code=%s%n", first.model(),
                    seqlen, windows, first.threads(), modelOptions.deviceOption, both ? "fp32,bf16" : weights.label(), CodeVersion.current());
            System.out.printf(Locale.ROOT, "load average at the start %s%n", loadAtStart);
            for (Figures f : runs)
                System.out.printf(Locale.ROOT, "%-14s %12.1f tokens/s   nll_sum %.4f   peak RSS %s%n", f.label(), f.tokensPerSecond(), f.nllSum(),
                        TrainBench.gigabytes(f.peakRssBytes()));
            if (both) {
                Figures fp32 = runs.get(0), bf16 = runs.get(1);
                System.out.printf(Locale.ROOT, "ratio bf16/fp32: tokens/s %.2f, peak RSS %s%n", bf16.tokensPerSecond() / fp32.tokensPerSecond(),
                        fp32.peakRssBytes() > 0 && bf16.peakRssBytes() > 0
                                ? String.format(Locale.ROOT, "%.2f", (double) bf16.peakRssBytes() / fp32.peakRssBytes()) : "unknown");
            }
            baseline(first);
            System.out.printf(Locale.ROOT, "load average at the end %s%n", Eval.loadAverage());
            return 0;
        }

        /** Loads the model with {@code weights}, runs a warm-up window, then times the windows. */
        private Figures time(WeightFormat weights) {
            TextDatasets.Text text = TextDatasets.load("wikitext2");
            try (Checkpoint ckpt = modelOptions.open(); Transformer model = Checkpoints.load(ckpt, modelOptions.threads(), weights)) {
                int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.text());
                if (ids.length < windows * seqlen)
                    throw new IllegalArgumentException("WikiText-2 has " + ids.length + " tokens, too few for " + windows + " windows of " + seqlen);
                if (quarot) QuaRot.rotate(model, 0, true, Progress.terminal());
                System.err.printf(Locale.ROOT, "lowbit: warm-up window (%d tokens)...%n", seqlen);
                model.nll(Arrays.copyOfRange(ids, 0, seqlen));
                Perplexity.Result r = Perplexity.evaluate(model, ids, seqlen, windows, Progress.terminal());
                String label = quarot ? "lowbit quarot" : weights == WeightFormat.FP32 ? "lowbit" : "lowbit " + weights.label();
                return new Figures(ckpt.source(), label, model.threads(), r.tokensPerSecond(), r.nllSum(), TrainBench.peakRss());
            }
        }

        /**
         * This benchmark with {@code weights} in a child JVM: the same JVM options (the heap sized from the format's memory
         * estimate, as ./lowbit sizes ppl's, unless -Xmx was given), the same model, windows and threads; its figures come
         * back as the last line of its output.
         */
        private Figures inChildJvm(WeightFormat weights) {
            long heap;
            try (Checkpoint ckpt = modelOptions.open()) {
                heap = MemoryBudget.current().plan(MemoryEstimate.of("bench forward", ckpt.config(), null, seqlen, weights)).heapBytes();
            }
            List<String> cmd = new ArrayList<>();
            cmd.add(ProcessHandle.current().info().command().orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
            for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments())
                if (heap == 0 || !(a.startsWith("-Xmx") || a.startsWith("-XX:MaxHeapSize"))) cmd.add(a);
            String xmx = new MemoryBudget.Plan(heap, null).javaOption();
            if (heap > 0) cmd.add(xmx);
            cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(), "bench", "forward",
                    "--model", modelOptions.model, "--seqlen", Integer.toString(seqlen), "--windows", Integer.toString(windows),
                    "--threads", Integer.toString(modelOptions.threads()), "--device", modelOptions.deviceOption,
                    "--weights", weights.label(), "--baseline", "none", "--child-json"));
            System.err.println("lowbit: timing " + weights.label() + " in a child JVM" + (heap > 0 ? " (" + xmx + ")" : ""));
            Process p;
            try {
                p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            } catch (IOException e) {
                throw new UncheckedIOException("bench forward: cannot start a child JVM (" + cmd.get(0) + "): " + e.getMessage(), e);
            }
            Thread reaper = new Thread(p::destroy);
            Runtime.getRuntime().addShutdownHook(reaper);
            try {
                List<String> out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip().lines().toList();
                int exit = p.waitFor();
                if (exit != 0 || out.isEmpty())
                    throw new IllegalStateException("bench forward: the " + weights.label() + " child JVM exited with status " + exit
                            + " (its error is above)");
                return new ObjectMapper().readValue(out.get(out.size() - 1), Figures.class);
            } catch (IOException e) {
                throw new UncheckedIOException("bench forward: cannot read the " + weights.label() + " child JVM's figures: " + e.getMessage(), e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("bench forward: interrupted while the " + weights.label() + " child JVM ran");
            } finally {
                p.destroy();
                try {
                    Runtime.getRuntime().removeShutdownHook(reaper);
                } catch (IllegalStateException shuttingDown) {
                    // the hook runs anyway
                }
            }
        }

        /**
         * {@link #time} on the GPU: the model loaded with {@code weights} and uploaded as DeviceModel, a warm-up window, then
         * the same windows scored by DeviceModel.nll (which returns after the device is done with the window).
         */
        private Figures timeOnGpu(WeightFormat weights) {
            if (quarot) throw new IllegalArgumentException("--quarot has no GPU path (DeviceModel refuses online Hadamards): give --device cpu");
            TextDatasets.Text text = TextDatasets.load("wikitext2");
            Cuda cuda = Cuda.get();
            try (Checkpoint ckpt = modelOptions.open(); Transformer model = Checkpoints.load(ckpt, modelOptions.threads(), weights)) {
                int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.text());
                if (ids.length < windows * seqlen)
                    throw new IllegalArgumentException("WikiText-2 has " + ids.length + " tokens, too few for " + windows + " windows of " + seqlen);
                cuda.require(DeviceModel.bytesNeeded(model.config(), null, weights, seqlen), "bench forward of " + ckpt.source());
                try (DeviceModel gpu = DeviceModel.upload(cuda, model, null, RuntimeQuantization.NONE, weights)) {
                    System.err.printf(Locale.ROOT, "lowbit: %s; warm-up window (%d tokens)...%n", gpu.describe(), seqlen);
                    gpu.nll(Arrays.copyOfRange(ids, 0, seqlen));
                    double sum = 0;
                    long t0 = System.nanoTime();
                    for (int w = 0; w < windows; w++)
                        for (double v : gpu.nll(Arrays.copyOfRange(ids, w * seqlen, (w + 1) * seqlen))) sum += v;
                    double seconds = (System.nanoTime() - t0) / 1e9;
                    return new Figures(ckpt.source(), "lowbit cuda " + weights.label(), model.threads(), (double) windows * seqlen / seconds, sum,
                            TrainBench.peakRss());
                }
            }
        }

        /** transformers on the same windows as the baseline option says: fp32 on the CPU, or in our format on the GPU. */
        private void baseline(Figures ours) {
            if (baseline.equals("none")) return;
            PythonBaseline py = PythonBaseline.find("transformers baseline", List.of("torch", "transformers", "gguf"));
            if (!py.available()) {
                if (baseline.equals("transformers")) throw new IllegalArgumentException(py.missing());
                System.out.println("skipped: " + py.missing());
                return;
            }
            boolean gpu = ours.label().startsWith("lowbit cuda");
            JsonNode ref = py.run("bench_transformers.py", baselineArgs(ours.model(), gpu ? "cuda" : "cpu",
                    gpu ? modelOptions.weights().label() : "float32", ours.threads()));
            double theirs = ref.path("tokens_per_second").asDouble();
            System.out.printf(Locale.ROOT, "%-14s %12.1f tokens/s   nll_sum %.4f   (torch %s, %s %s)%n", "transformers", theirs,
                    ref.path("nll_sum").asDouble(), ref.path("torch").asText(), ref.path("device").asText("cpu"), ref.path("dtype").asText());
            System.out.printf(Locale.ROOT, "ratio %s/transformers: %.2f%n", ours.label(), ours.tokensPerSecond() / theirs);
        }

        /** bench_transformers.py's arguments: the model as a GGUF file (--gguf) or a Hugging Face directory (--hf). */
        private List<String> baselineArgs(String modelPath, String device, String dtype, int threads) {
            Path model = Path.of(modelPath);
            String kind;
            if (modelPath.endsWith(".gguf")) kind = "--gguf";
            else if (Files.isDirectory(model) && Files.exists(model.resolve("config.json"))) kind = "--hf";
            else throw new IllegalArgumentException("the transformers baseline loads a GGUF file or a Hugging Face directory; --model "
                        + modelPath + " is neither");
            return List.of(kind, modelPath, "--text", DataDir.require("wikitext-2-raw/wiki.test.raw").toString(),
                    "--seqlen", Integer.toString(seqlen), "--windows", Integer.toString(windows), "--threads", Integer.toString(threads),
                    "--device", device, "--dtype", dtype);
        }
    }

    @Command(name = "awq", mixinStandardHelpOptions = true,
            description = "AWQ on the whole model split into statistics, scale search, clip search and quantization, then GPTQ "
                    + "on the same calibration windows (a fresh copy of the model) in the same run; --quant picks the AWQ spec "
                    + "(default awq:w4g128) and GPTQ runs its grid.")
    static final class Awq implements Callable<Integer> {
        @Mixin
        ModelOptions modelOptions;

        @Mixin
        QuantOptions quantOptions;

        @Override
        public Integer call() {
            modelOptions.cpuOnly("bench awq");
            QuantSpec spec = quantOptions.quant == null ? QuantSpec.of("awq", QuantConfig.group(4, 128)) : quantOptions.spec();
            if (!"awq".equals(spec.method())) throw new IllegalArgumentException("bench awq times awq specs, got --quant " + spec);
            QuantizationRecipe awq = quantOptions.recipe(spec, null);
            QuantizationRecipe.Calibration c = awq.resolvedCalibration();
            awq = awq.withCalibration(c);
            QuantizationRecipe gptq = QuantizationRecipe.of(spec.withMethod("gptq")).withCalibration(c);
            System.out.printf(Locale.ROOT, "awq vs gptq  spec=%s nsamples=%d seqlen=%d threads=%d code=%s%n", awq.spec(), c.nsamples(),
                    c.seqlen(), modelOptions.threads(), CodeVersion.current());
            for (QuantizationRecipe r : List.of(awq, gptq)) {
                Timed t = Timed.apply(modelOptions, r);
                System.out.printf(Locale.ROOT, "%-6s total %.1f s (sampling included):%s%n", t.outcome().model().method(), t.seconds(), t.phases());
            }
            return 0;
        }
    }

    /** A recipe applied to a freshly loaded model and timed, calibration sampling included; for the method benchmarks. */
    record Timed(QuantizationRecipe.Outcome outcome, double seconds, int layers) {
        static Timed apply(ModelOptions modelOptions, QuantizationRecipe r) {
            try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
                r.validate(model);
                long t0 = System.nanoTime();
                QuantizationRecipe.Outcome o = r.apply(model, Checkpoints.tokenizer(ckpt), Progress.terminal());
                return new Timed(o, (System.nanoTime() - t0) / 1e9, model.config().numLayers());
            }
        }

        /** The method's own timings, "  phase seconds" each. */
        String phases() {
            StringBuilder parts = new StringBuilder();
            outcome.model().timings().forEach((k, v) -> parts.append(String.format(Locale.ROOT, "  %s %.1f", k.replace("_seconds", ""), v)));
            return parts.toString();
        }
    }

    @Command(name = "rotate", mixinStandardHelpOptions = true,
            description = "QuaRot on the model: the time of fold + rotate, then tokens/s of the perplexity forward pass on the same "
                    + "WikiText-2 windows plain, rotated (online Hadamard on down_proj's input) and rotated with the online "
                    + "query/key Hadamard a quantized KV cache adds, and the online transforms alone on those windows' shapes.")
    static final class Rotate implements Callable<Integer> {
        @Mixin
        ModelOptions modelOptions;

        @Option(names = "--seqlen", defaultValue = "2048", paramLabel = "L", description = "window length (default: ${DEFAULT-VALUE})")
        int seqlen;

        @Option(names = "--windows", defaultValue = "2", paramLabel = "K", description = "timed windows per pass, after one warm-up window (default: ${DEFAULT-VALUE})")
        int windows;

        @Option(names = "--rotation-seed", defaultValue = "0", paramLabel = "S", description = "seed of the rotation's signs (default: ${DEFAULT-VALUE})")
        long seed;

        @Override
        public Integer call() {
            modelOptions.cpuOnly("bench rotate");
            if (windows < 1) throw new IllegalArgumentException("--windows must be >= 1, got " + windows);
            if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be >= 2, got " + seqlen);
            TextDatasets.Text text = TextDatasets.load("wikitext2");
            String loadAtStart = Eval.loadAverage();
            try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
                QuaRot.check(model.config());
                int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.text());
                if (ids.length < windows * seqlen)
                    throw new IllegalArgumentException("WikiText-2 has " + ids.length + " tokens, too few for " + windows + " windows of " + seqlen);
                System.err.printf(Locale.ROOT, "lowbit: warm-up window (%d tokens)...%n", seqlen);
                model.nll(Arrays.copyOfRange(ids, 0, seqlen));
                Perplexity.Result plain = Perplexity.evaluate(model, ids, seqlen, windows, Progress.terminal());
                QuaRot.Applied a = QuaRot.rotate(model, seed, false, Progress.terminal());
                Perplexity.Result rotated = Perplexity.evaluate(model, ids, seqlen, windows, Progress.terminal());
                model.setOnlineHadamards(true, true);
                Perplexity.Result rotatedQk = Perplexity.evaluate(model, ids, seqlen, windows, Progress.terminal());
                var c = model.config();
                double transforms = onlineTransformSeconds(c, seqlen, windows, model.threads());
                System.out.printf(Locale.ROOT, "rotate  model=%s seqlen=%d windows=%d threads=%d seed=%d code=%s load average at start %s%n",
                        ckpt.source(), seqlen, windows, model.threads(), seed, CodeVersion.current(), loadAtStart);
                System.out.printf(Locale.ROOT, "fold + rotate (hidden %d, head_dim %d, intermediate %d, %d layers): %.2f s%n",
                        c.hiddenSize(), c.headDim(), c.intermediateSize(), c.numLayers(), a.seconds());
                System.out.printf(Locale.ROOT, "%-30s %10.1f tokens/s   nll_sum %.4f%n", "plain", plain.tokensPerSecond(), plain.nllSum());
                System.out.printf(Locale.ROOT, "%-30s %10.1f tokens/s   nll_sum %.4f   (%.3fx plain)%n", "rotated, online down_proj",
                        rotated.tokensPerSecond(), rotated.nllSum(), rotated.tokensPerSecond() / plain.tokensPerSecond());
                System.out.printf(Locale.ROOT, "%-30s %10.1f tokens/s   nll_sum %.4f   (%.3fx plain)%n", "rotated, online down_proj + q/k",
                        rotatedQk.tokensPerSecond(), rotatedQk.nllSum(), rotatedQk.tokensPerSecond() / plain.tokensPerSecond());
                System.out.printf(Locale.ROOT, "online transforms alone (down_proj input and q/k, every layer, %d windows): %.3f s, "
                        + "%.1f%% of the plain pass%n", windows, transforms, 100 * transforms / (plain.tokens() / plain.tokensPerSecond()));
            }
            System.out.printf(Locale.ROOT, "load average at the end %s%n", Eval.loadAverage());
            return 0;
        }

        /** The online Hadamards of {@code windows} windows on buffers of the forward pass's shapes, without the rest of it. */
        private static double onlineTransformSeconds(lowbit.model.ModelConfig c, int seqlen, int windows, int threads) {
            Hadamard down = Hadamard.of(c.intermediateSize(), "intermediate_size"), head = Hadamard.of(c.headDim(), "head_dim");
            float[] act = new float[seqlen * c.intermediateSize()], q = new float[seqlen * c.qDim()], k = new float[seqlen * c.kvDim()];
            java.util.SplittableRandom r = new java.util.SplittableRandom(1);
            for (float[] a : List.of(act, q, k)) for (int i = 0; i < a.length; i++) a[i] = (float) r.nextGaussian();
            try (Parallel par = new Parallel(threads)) {
                long t0 = System.nanoTime();
                for (int w = 0; w < windows; w++)
                    for (int l = 0; l < c.numLayers(); l++) {
                        down.transformRows(act, seqlen, par);
                        head.transformRows(q, seqlen * c.numHeads(), par);
                        head.transformRows(k, seqlen * c.numKvHeads(), par);
                    }
                return (System.nanoTime() - t0) / 1e9;
            }
        }
    }

    @Command(name = "eval", mixinStandardHelpOptions = true,
            description = "Items/s of zero-shot scoring (piqa and hellaswag, first 200 items) through lowbit and, when .venv has "
                    + "torch, transformers and lm_eval, through lm-eval's HF backend on the same items, model and thread count "
                    + "(environment/bench_lm_eval.py).")
    static final class Eval implements Callable<Integer> {
        @Mixin
        ModelOptions modelOptions;

        @Option(names = "--tasks", defaultValue = "piqa,hellaswag", paramLabel = "NAME,...",
                description = "tasks to time (default: ${DEFAULT-VALUE})")
        String tasks;

        @Option(names = "--limit", defaultValue = "200", paramLabel = "N", description = "the first N items of each task (default: ${DEFAULT-VALUE})")
        int limit;

        @Option(names = "--baseline", defaultValue = "auto", paramLabel = "auto|none|lm-eval",
                description = "lm-eval on the same items; auto runs it when .venv has torch, transformers and lm_eval (default: ${DEFAULT-VALUE})")
        String baseline;

        @Option(names = "--scorer", defaultValue = ZeroShot.DEFAULT_SCORER, paramLabel = "full|prefix",
                description = "lowbit's scorer (default: ${DEFAULT-VALUE}); see ./lowbit eval --help")
        String scorerName;

        @Option(names = "--python", paramLabel = "PATH",
                description = "the interpreter that runs the lm-eval baseline (default: .venv/bin/python)")
        java.nio.file.Path python;

        @Override
        public Integer call() {
            modelOptions.cpuOnly("bench eval");
            if (limit < 1) throw new IllegalArgumentException("--limit must be >= 1, got " + limit);
            checkBaseline(baseline, "lm-eval");
            List<String> names = Tasks.parse(tasks, List.of());
            List<ZeroShot.Prepared> prepared = names.stream().map(n -> ZeroShot.Prepared.of(Tasks.get(n), limit)).toList();
            String loadAtStart = loadAverage();
            Map<String, Double> ours = new LinkedHashMap<>();
            String modelPath;
            ZeroShot.scorer(scorerName);
            int threads;
            try (EvaluatedModel model = EvaluatedModel.load(modelOptions.open(), modelOptions.threads())) {
                modelPath = model.checkpoint().source();
                threads = model.transformer().threads();
                ContinuationScorer scorer = ZeroShot.scorer(scorerName).apply(model.transformer());
                TaskEvaluator ev = new TaskEvaluator(scorer, new RequestEncoder(model.tokenizer(), model.checkpoint().config().maxPositions()));
                System.err.println("lowbit: warm-up (the first 5 items of " + names.get(0) + ")...");
                ev.evaluate(prepared.get(0).task(), TaskEvaluator.limit(prepared.get(0).items(), 5), Progress.NONE);
                for (ZeroShot.Prepared p : prepared)
                    ours.put(p.task().name(), ev.evaluate(p.task(), p.items(), Progress.terminal()).itemsPerSecond());
            }
            System.out.printf(Locale.ROOT, "eval  model=%s limit=%d threads=%d scorer=%s code=%s load average at start %s%n", modelPath,
                    limit, threads, scorerName, CodeVersion.current(), loadAtStart);
            PythonBaseline py = baseline.equals("none") ? null
                    : python != null
                    ? PythonBaseline.find("lm-eval baseline", java.nio.file.Path.of(System.getProperty("lowbit.root", ".")), python,
                            List.of("torch", "transformers", "gguf", "lm_eval"))
                    : PythonBaseline.find("lm-eval baseline", List.of("torch", "transformers", "gguf", "lm_eval"));
            if (py != null && !py.available() && baseline.equals("lm-eval")) throw new IllegalArgumentException(py.missing());
            if (py != null && py.available() && !modelPath.endsWith(".gguf"))
                throw new IllegalArgumentException("the lm-eval baseline loads GGUF files; --model " + modelPath + " is not one");
            // the baselines print their own progress: the table comes after all of them, each line whole
            Map<String, Double> theirs = new LinkedHashMap<>();
            if (py != null && py.available())
                for (String name : names)
                    theirs.put(name, py.run("bench_lm_eval.py", List.of("--gguf", modelPath, "--tasks", name, "--limit", Integer.toString(limit),
                            "--threads", Integer.toString(threads), "--data-dir", DataDir.root().toString())).path("items_per_second").asDouble());
            for (String name : names) {
                System.out.printf(Locale.ROOT, "%-14s lowbit %8.2f items/s", name, ours.get(name));
                if (theirs.containsKey(name))
                    System.out.printf(Locale.ROOT, "   lm-eval %8.2f items/s   ratio lowbit/lm-eval %.2f", theirs.get(name),
                            ours.get(name) / theirs.get(name));
                System.out.println();
            }
            if (py != null && !py.available()) System.out.println("skipped: " + py.missing());
            System.out.printf(Locale.ROOT, "load average at the end %s%n", loadAverage());
            return 0;
        }

        /** The 1, 5 and 15 minute load averages (uptime's), or "unknown" off Linux: a shared machine's load moves these figures. */
        static String loadAverage() {
            try {
                String[] f = java.nio.file.Files.readString(java.nio.file.Path.of("/proc/loadavg")).strip().split("\\s+");
                return f[0] + " " + f[1] + " " + f[2];
            } catch (java.io.IOException | RuntimeException e) {
                return "unknown";
            }
        }
    }
}
