package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.Perplexity;
import lowbit.eval.TextDatasets;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks: forward (tokens/s of the perplexity forward pass, against transformers), gptq (GPTQ on one "
                + "2048x2048 layer against the PyTorch reference algorithm, and on the whole model) and awq (AWQ against GPTQ "
                + "on the same calibration windows). ./lowbit bench WHAT --help lists each one's options.",
        subcommands = {BenchCommand.Forward.class, GptqBench.class, BenchCommand.Awq.class})
final class BenchCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new IllegalArgumentException("bench needs a benchmark: forward, gptq or awq (./lowbit bench --help)");
    }

    /** The baseline options: auto runs it when .venv can, none skips it, the baseline's own name requires it. */
    static void checkBaseline(String baseline, String required) {
        if (!List.of("auto", "none", required).contains(baseline))
            throw new IllegalArgumentException("--baseline must be auto, none or " + required + ", got '" + baseline + "'");
    }

    @Command(name = "forward", mixinStandardHelpOptions = true,
            description = "Tokens/s of the perplexity forward pass on WikiText-2, and the same windows through transformers on "
                    + "the CPU when torch and transformers are installed in .venv.")
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

        @Override
        public Integer call() {
            if (windows < 1) throw new IllegalArgumentException("--windows must be >= 1, got " + windows);
            if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be >= 2, got " + seqlen);
            checkBaseline(baseline, "transformers");
            TextDatasets.Text text = TextDatasets.load("wikitext2");
            double ours, oursNll;
            String modelPath;
            int threads;
            try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
                modelPath = ckpt.source();
                threads = model.threads();
                int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.text());
                if (ids.length < windows * seqlen)
                    throw new IllegalArgumentException("WikiText-2 has " + ids.length + " tokens, too few for " + windows + " windows of " + seqlen);
                System.err.printf(Locale.ROOT, "lowbit: warm-up window (%d tokens)...%n", seqlen);
                model.nll(Arrays.copyOfRange(ids, 0, seqlen));
                Perplexity.Result r = Perplexity.evaluate(model, ids, seqlen, windows, Progress.terminal());
                ours = r.tokensPerSecond();
                oursNll = r.nllSum();
            }
            System.out.printf(Locale.ROOT, "forward  model=%s seqlen=%d windows=%d threads=%d code=%s%n", modelPath, seqlen,
                    windows, threads, CodeVersion.current());
            System.out.printf(Locale.ROOT, "%-14s %12.1f tokens/s   nll_sum %.4f%n", "lowbit", ours, oursNll);
            if (baseline.equals("none")) return 0;
            PythonBaseline py = PythonBaseline.find("transformers baseline", List.of("torch", "transformers", "gguf"));
            if (!py.available()) {
                if (baseline.equals("transformers")) throw new IllegalArgumentException(py.missing());
                System.out.println("skipped: " + py.missing());
                return 0;
            }
            if (!modelPath.endsWith(".gguf"))
                throw new IllegalArgumentException("the transformers baseline loads GGUF files; --model " + modelPath + " is not one");
            JsonNode ref = py.run("bench_transformers.py", List.of("--gguf", modelPath,
                    "--text", DataDir.require("wikitext-2-raw/wiki.test.raw").toString(), "--seqlen", Integer.toString(seqlen),
                    "--windows", Integer.toString(windows), "--threads", Integer.toString(threads)));
            double theirs = ref.path("tokens_per_second").asDouble();
            System.out.printf(Locale.ROOT, "%-14s %12.1f tokens/s   nll_sum %.4f   (torch %s)%n", "transformers", theirs,
                    ref.path("nll_sum").asDouble(), ref.path("torch").asText());
            System.out.printf(Locale.ROOT, "ratio lowbit/transformers: %.2f%n", ours / theirs);
            return 0;
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
            QuantSpec spec = quantOptions.quant == null ? QuantSpec.of("awq", QuantConfig.group(4, 128)) : quantOptions.spec();
            if (!"awq".equals(spec.method())) throw new IllegalArgumentException("bench awq times awq specs, got --quant " + spec);
            QuantizationRecipe awq = quantOptions.recipe(spec, null);
            QuantizationRecipe.Calibration c = awq.resolvedCalibration();
            awq = awq.withCalibration(c);
            QuantizationRecipe gptq = QuantizationRecipe.of(spec.withMethod("gptq")).withCalibration(c);
            System.out.printf(Locale.ROOT, "awq vs gptq  spec=%s nsamples=%d seqlen=%d threads=%d code=%s%n", awq.spec(), c.nsamples(),
                    c.seqlen(), modelOptions.threads(), CodeVersion.current());
            for (QuantizationRecipe r : List.of(awq, gptq)) {
                try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
                    long t0 = System.nanoTime();
                    QuantizationRecipe.Outcome o = r.apply(model, Checkpoints.tokenizer(ckpt), Progress.terminal());
                    double total = (System.nanoTime() - t0) / 1e9;
                    StringBuilder parts = new StringBuilder();
                    o.model().timings().forEach((k, v) -> parts.append(String.format(Locale.ROOT, "  %s %.1f", k.replace("_seconds", ""), v)));
                    System.out.printf(Locale.ROOT, "%-6s total %.1f s (sampling included):%s%n", o.model().method(), total, parts);
                }
            }
            return 0;
        }
    }
}
