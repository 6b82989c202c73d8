package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.TextDatasets;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.results.CodeVersion;
import lowbit.train.Loss;
import lowbit.train.Parameter;
import lowbit.train.TrainLinear;
import lowbit.train.TrainableModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * `bench train`: tokens/s of a training step (forward + backward of one window, next-token loss) against the runtime's
 * forward pass on the same window, and against PyTorch (transformers' model, float32, loss.backward()) on the same
 * weights, tokens and thread count when the chosen python has torch and transformers.
 *
 * <p>The window is the first L tokens of the C4 slice, QAT's training text. Each figure is the median of --repeats
 * timed runs after one untimed warm-up: on a shared machine the median resists another job's burst better than the
 * mean, and the load average printed beside the figures says how shared it was.
 */
@Command(name = "train", mixinStandardHelpOptions = true,
        description = "Tokens/s of a training step (forward + backward, next-token loss, one window of the C4 slice) with every "
                + "parameter trainable and with embeddings and lm_head frozen (QAT's setting), against the forward pass alone "
                + "(target: a step within 3.5 forward passes), and against PyTorch on the same weights, tokens and threads when "
                + "the python has torch and transformers (environment/bench_train.py; target: at least PyTorch's tokens/s).")
final class TrainBench implements Callable<Integer> {
    /** A training step may cost this many forward passes (the target: backward about twice the forward, plus recomputation). */
    static final double STEP_FORWARD_TARGET = 3.5;

    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--seqlens", defaultValue = "512,2048", paramLabel = "L,...",
            description = "window lengths, each timed on its own (default: ${DEFAULT-VALUE})")
    String seqlens;

    @Option(names = "--repeats", defaultValue = "3", paramLabel = "N",
            description = "timed runs of each figure after one warm-up run; the median is reported (default: ${DEFAULT-VALUE})")
    int repeats;

    @Option(names = "--baseline", defaultValue = "auto", paramLabel = "auto|none|torch",
            description = "PyTorch on the same weights and tokens; auto runs it when the python has torch, transformers and gguf "
                    + "(default: ${DEFAULT-VALUE})")
    String baseline;

    @Option(names = "--python", paramLabel = "PATH",
            description = "the interpreter that runs the PyTorch baseline (default: .venv/bin/python)")
    Path python;

    /** lowbit's figures for one window length. */
    record Figures(int seqlen, double forwardSeconds, double stepSeconds, double qatSeconds, double forwardLoss, double stepLoss,
                   long peakRssBytes) {
        double ratio() {
            return stepSeconds / forwardSeconds;
        }
    }

    @Override
    public Integer call() {
        modelOptions.cpuOnly("bench train");
        if (repeats < 1) throw new IllegalArgumentException("--repeats must be >= 1, got " + repeats);
        BenchCommand.checkBaseline(baseline, "torch");
        List<Integer> lengths = parseSeqlens(seqlens);
        String loadAtStart = BenchCommand.Eval.loadAverage();
        List<Figures> ours = new ArrayList<>();
        String modelPath;
        int threads;
        int[] tokens;
        try (Checkpoint ckpt = modelOptions.open()) {
            int most = ckpt.config().maxPositions();
            for (int L : lengths)
                if (L > most)
                    throw new IllegalArgumentException("--seqlens: " + L + " is more than the model's " + most + " positions (max_position_embeddings)");
            modelPath = ckpt.source();
            PythonBaseline py = baseline(modelPath);
            try (Transformer model = modelOptions.load(ckpt); TrainableModel train = TrainableModel.of(model, modelOptions.threads())) {
                tokens = window(ckpt, Collections.max(lengths));
                threads = model.threads();
                System.out.printf(Locale.ROOT, "train  model=%s seqlens=%s threads=%d repeats=%d (median after one warm-up) max heap %s code=%s "
                                + "load average at start %s%n", modelPath, lengths.stream().map(String::valueOf).collect(Collectors.joining(",")),
                        threads, repeats, gigabytes(Runtime.getRuntime().maxMemory()), CodeVersion.current(), loadAtStart);
                System.out.printf(Locale.ROOT, "%-7s %-7s %14s %14s %14s %13s %9s %9s %11s%n", "seqlen", "backend", "forward tok/s",
                        "step tok/s", "QAT step tok/s", "step/forward", "loss", "step loss", "peak RSS");
                for (int L : lengths) {
                    Figures f = measure(model, train, Arrays.copyOf(tokens, L));
                    ours.add(f);
                    System.out.println(lowbitRow(f));
                }
            }
            if (skipped != null) {
                System.out.println("skipped: " + skipped);
            } else if (py != null) {
                List<String> ratios = new ArrayList<>();
                for (Figures f : ours) {
                    JsonNode ref = torch(py, modelPath, Arrays.copyOf(tokens, f.seqlen()), threads);
                    System.out.println(torchRow(f.seqlen(), ref));
                    ratios.add(ratios(f, ref));
                }
                System.out.println("ratio lowbit/torch tokens/s (target >= 1 for the step): " + String.join("; ", ratios));
            }
        }
        System.out.printf(Locale.ROOT, "load average at the end %s%n", BenchCommand.Eval.loadAverage());
        return 0;
    }

    static String lowbitRow(Figures f) {
        int L = f.seqlen();
        return String.format(Locale.ROOT, "%-7d %-7s %14.1f %14.1f %14.1f %6.2f (<=%.1f) %9.4f %9.4f %11s", L, "lowbit",
                L / f.forwardSeconds(), L / f.stepSeconds(), L / f.qatSeconds(), f.ratio(), STEP_FORWARD_TARGET,
                f.forwardLoss(), f.stepLoss(), gigabytes(f.peakRssBytes()));
    }

    /** environment/bench_train.py's figures for a window of L tokens, in lowbit's columns. */
    static String torchRow(int L, JsonNode ref) {
        double fwd = ref.path("forward_seconds").asDouble(), step = ref.path("step_seconds").asDouble(),
                qat = ref.path("step_qat_seconds").asDouble();
        return String.format(Locale.ROOT, "%-7d %-7s %14.1f %14.1f %14.1f %6.2f         %9.4f %9.4f %11s   (torch %s, transformers %s, %s)",
                L, "torch", L / fwd, L / step, L / qat, step / fwd, ref.path("loss").asDouble(), ref.path("step_loss").asDouble(),
                gigabytes(ref.path("peak_rss_bytes").asLong(-1)), ref.path("torch").asText(), ref.path("transformers").asText(),
                ref.path("attn_implementation").asText());
    }

    /** lowbit's tokens/s over PyTorch's (above 1: lowbit is faster) for the step, the QAT step and the forward pass. */
    static String ratios(Figures ours, JsonNode ref) {
        return String.format(Locale.ROOT, "seqlen %d: step %.2f, QAT step %.2f, forward %.2f", ours.seqlen(),
                ref.path("step_seconds").asDouble() / ours.stepSeconds(), ref.path("step_qat_seconds").asDouble() / ours.qatSeconds(),
                ref.path("forward_seconds").asDouble() / ours.forwardSeconds());
    }

    /** The comma-separated window lengths, each at least 2 (one scored position); the model's limit is checked once it is open. */
    static List<Integer> parseSeqlens(String text) {
        List<Integer> out = new ArrayList<>();
        for (String part : text.split(",", -1)) {
            int L;
            try {
                L = Integer.parseInt(part.strip());
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--seqlens must be comma-separated window lengths, got '" + text + "'");
            }
            if (L < 2) throw new IllegalArgumentException("--seqlens: each window needs at least 2 tokens, got " + L);
            if (out.contains(L)) throw new IllegalArgumentException("--seqlens lists " + L + " twice");
            out.add(L);
        }
        return out;
    }

    /** Why --baseline auto runs no baseline, said after lowbit's figures. */
    private String skipped;

    /**
     * The baseline to run after lowbit's figures, found before anything is timed: null when none runs (--baseline none, or
     * auto and {@link #skipped} says why); for --baseline torch, one that can run or an error saying why not.
     */
    private PythonBaseline baseline(String modelPath) {
        if (baseline.equals("none")) return null;
        List<String> modules = List.of("torch", "transformers", "gguf");
        Path root = Path.of(System.getProperty("lowbit.root", "."));
        PythonBaseline py = python != null ? PythonBaseline.find("torch baseline", root, python, modules)
                : PythonBaseline.find("torch baseline", modules);
        boolean loadable = modelPath.endsWith(".gguf") || Files.isDirectory(Path.of(modelPath));
        if (baseline.equals("torch")) {
            if (!py.available()) throw new IllegalArgumentException(py.missing());
            if (!loadable)
                throw new IllegalArgumentException("the torch baseline loads a .gguf file or a Hugging Face directory; --model " + modelPath + " is neither");
        } else if (py.available() && !loadable) {
            skipped = "the torch baseline loads a .gguf file or a Hugging Face directory; --model " + modelPath + " is neither";
            return null;
        }
        if (!py.available()) {
            skipped = py.missing();
            return null;
        }
        return py;
    }

    /** The first {@code length} tokens of the C4 slice; tokenizes only a prefix of it, ample at any tokenizer's rate. */
    private static int[] window(Checkpoint ckpt, int length) {
        String text = TextDatasets.load("c4-train-slice").text();
        int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.substring(0, Math.min(text.length(), 16 * length)));
        if (ids.length < length)
            throw new IllegalArgumentException("the C4 slice has " + ids.length + " tokens in its first " + 16 * length
                    + " characters, too few for a window of " + length);
        return Arrays.copyOf(ids, length);
    }

    private Figures measure(Transformer model, TrainableModel train, int[] window) {
        int L = window.length;
        resetPeakRss();
        double[] forwardLoss = new double[1];
        double forward = median("forward " + L, L, () -> {
            double[] nll = model.nll(window);
            forwardLoss[0] = Arrays.stream(nll).sum() / nll.length;
        });
        List<int[]> batch = List.of(window);
        train.setTrainable(p -> true);
        double[] stepLoss = new double[1];
        double step = median("step " + L, L, () -> stepLoss[0] = train.gradient(batch, Loss.nextToken()));
        Set<Parameter> frozen = qatFrozen(train);
        train.setTrainable(p -> !frozen.contains(p));
        double qat = median("QAT step " + L, L, () -> train.gradient(batch, Loss.nextToken()));
        train.setTrainable(p -> true);
        return new Figures(L, forward, step, qat, forwardLoss[0], stepLoss[0], peakRss());
    }

    /** What QAT keeps in float by default: the token embeddings and lm_head (the same parameter when tied). */
    static Set<Parameter> qatFrozen(TrainableModel train) {
        Set<Parameter> frozen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (Parameter p : train.parameters()) if (p.name().startsWith("model.embed_tokens.")) frozen.add(p);
        for (TrainLinear l : train.linears())
            if (l.module().equals("lm_head")) {
                frozen.add(l.weight());
                if (l.bias() != null) frozen.add(l.bias());
            }
        return frozen;
    }

    /** Median seconds of {@link #repeats} runs of {@code run} on {@code tokens} tokens after one untimed warm-up, with progress in tokens. */
    private double median(String name, int tokens, Runnable run) {
        double[] seconds = new double[repeats];
        try (Progress.Task task = Progress.terminal().start(name, (repeats + 1L) * tokens, "tok")) {
            run.run();
            task.step(tokens);
            for (int i = 0; i < repeats; i++) {
                long t0 = System.nanoTime();
                run.run();
                seconds[i] = (System.nanoTime() - t0) / 1e9;
                task.step(tokens);
            }
        }
        Arrays.sort(seconds);
        return repeats % 2 == 1 ? seconds[repeats / 2] : (seconds[repeats / 2 - 1] + seconds[repeats / 2]) / 2;
    }

    private JsonNode torch(PythonBaseline py, String modelPath, int[] window, int threads) {
        try {
            Path ids = Files.createTempFile("lowbit-bench-train", ".ids");
            try {
                Files.writeString(ids, Arrays.stream(window).mapToObj(String::valueOf).collect(Collectors.joining(" ")) + "\n");
                return py.run("bench_train.py", List.of("--model", modelPath, "--ids", ids.toString(), "--threads", Integer.toString(threads),
                        "--repeats", Integer.toString(repeats)));
            } finally {
                Files.deleteIfExists(ids);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("bench train: cannot write the window's token ids for the torch baseline: " + e.getMessage(), e);
        }
    }

    // Peak resident memory of this process (VmHWM), reset per window length where Linux allows (clear_refs 5), so each
    // row's figure is that length's peak. It counts heap the collector let grow, not only live data: the JVM takes heap
    // up to its maximum (printed in the header) before it collects hard, and keeps what it once committed, so a shorter
    // window after a longer one can show the longer one's peak.

    private static void resetPeakRss() {
        try {
            Files.writeString(Path.of("/proc/self/clear_refs"), "5");
        } catch (IOException | RuntimeException e) {
            // not Linux, or not permitted: the figure is then the peak since the process started
        }
    }

    static long peakRss() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (IOException | RuntimeException e) {
            // off Linux: unknown
        }
        return -1;
    }

    static String gigabytes(long bytes) {
        return bytes < 0 ? "unknown" : String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }
}
