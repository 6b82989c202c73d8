package lowbit.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "bench", mixinStandardHelpOptions = true,
        description = "Benchmarks. 'forward': tokens/s of the perplexity forward pass, and the same windows "
                + "through transformers on the CPU when torch and transformers are installed in .venv. 'gptq': GPTQ on one "
                + "2048x2048 layer (vs the PyTorch reference algorithm when .venv has torch) and on the whole model, "
                + "split into forward capture, Hessian, Cholesky and column loop. 'awq': AWQ on the whole model split into "
                + "statistics, scale search, clip search and quantization, then GPTQ on the same calibration windows.")
final class BenchCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "WHAT", description = "forward, gptq or awq")
    String what;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--part", defaultValue = "all", paramLabel = "all|layer|model", description = "gptq: which part to time (default: ${DEFAULT-VALUE})")
    String part;

    @Option(names = "--seqlen", defaultValue = "2048")
    int seqlen;

    @Option(names = "--windows", defaultValue = "2", description = "timed windows, after one warm-up window (default: ${DEFAULT-VALUE})")
    int windows;

    @Option(names = "--baseline", defaultValue = "auto", paramLabel = "auto|none|transformers|torch",
            description = "baseline in the same run: forward against transformers, gptq against the PyTorch reference"
                    + " algorithm; auto runs it when .venv has torch (and transformers)")
    String baseline;

    @Override
    public Integer call() throws Exception {
        if (what.equals("gptq")) {
            if (!List.of("all", "layer", "model").contains(part)) throw new IllegalArgumentException("--part must be all, layer or model");
            if (!List.of("auto", "none", "torch").contains(baseline))
                throw new IllegalArgumentException("--baseline for gptq must be auto, none or torch, got " + baseline);
            QuantizationRecipe recipe = quantOptions.recipe(quantOptions.quant == null ? "gptq:w4g128" : null, null);
            if (!"gptq".equals(recipe.spec().method())) throw new IllegalArgumentException("bench gptq times gptq specs, got " + recipe.spec());
            GptqBench.run(modelOptions, recipe, !part.equals("layer"), !part.equals("model"), baseline);
            return 0;
        }
        if (what.equals("awq")) {
            awqVersusGptq();
            return 0;
        }
        if (!what.equals("forward"))
            throw new IllegalArgumentException("unknown benchmark '" + what + "' (known: forward, gptq, awq)");
        if (windows < 1) throw new IllegalArgumentException("--windows must be >= 1");
        if (!List.of("auto", "none", "transformers").contains(baseline))
            throw new IllegalArgumentException("--baseline must be auto, none or transformers, got " + baseline);
        TextDatasets.Text text = TextDatasets.load("wikitext2");
        double ours, oursNll;
        String modelPath;
        int threads;
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            modelPath = ckpt.source();
            threads = model.threads();
            int[] ids = Checkpoints.tokenizer(ckpt).encodeWithSpecials(text.text());
            if (ids.length < windows * seqlen)
                throw new IllegalArgumentException("WikiText-2 has " + ids.length + " tokens, too few for "
                        + windows + " windows of " + seqlen);
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
        Path python = Path.of(System.getProperty("lowbit.root", ".")).resolve(".venv/bin/python");
        boolean available = Files.isExecutable(python) && exitCode(List.of(python.toString(), "-c", "import torch, transformers")) == 0;
        if (!available) {
            String why = "transformers baseline skipped: .venv has no torch/transformers (./lowbit setup --reference installs them)";
            if (baseline.equals("transformers")) throw new IllegalArgumentException(why);
            System.out.println(why);
            return 0;
        }
        if (!modelPath.endsWith(".gguf"))
            throw new IllegalArgumentException("the transformers baseline loads GGUF files; --model " + modelPath + " is not one");
        Path script = Path.of(System.getProperty("lowbit.root", ".")).resolve("environment/bench_transformers.py");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), script.toString(), "--gguf", modelPath,
                "--text", DataDir.require("wikitext-2-raw/wiki.test.raw").toString(), "--seqlen", Integer.toString(seqlen),
                "--windows", Integer.toString(windows), "--threads", Integer.toString(threads)));
        System.err.println("lowbit: running the transformers baseline: " + String.join(" ", cmd));
        Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) throw new IllegalStateException("the transformers baseline failed (exit " + p.exitValue() + ")");
        String last = out.strip().lines().reduce((a, b) -> b).orElse("{}");
        JsonNode ref = new ObjectMapper().readTree(last);
        double theirs = ref.path("tokens_per_second").asDouble();
        System.out.printf(Locale.ROOT, "%-14s %12.1f tokens/s   nll_sum %.4f   (torch %s)%n", "transformers", theirs,
                ref.path("nll_sum").asDouble(), ref.path("torch").asText());
        System.out.printf(Locale.ROOT, "ratio lowbit/transformers: %.2f%n", ours / theirs);
        return 0;
    }

    /**
     * AWQ on the model, split into statistics, scale search, clip search and quantization, then GPTQ on the
     * same calibration windows (a fresh copy of the model), in the same run.
     */
    private void awqVersusGptq() {
        QuantizationRecipe awq = quantOptions.recipe(quantOptions.quant == null ? "awq:w4g128" : null, null);
        if (!"awq".equals(awq.spec().method())) throw new IllegalArgumentException("bench awq times awq specs, got " + awq.spec());
        QuantizationRecipe.Calibration c = awq.resolvedCalibration();
        awq = awq.withCalibration(c);
        QuantizationRecipe gptq = QuantizationRecipe.of("gptq:" + awq.spec().text().substring("awq:".length())).withCalibration(c);
        System.out.printf(Locale.ROOT, "awq vs gptq  spec=%s nsamples=%d seqlen=%d threads=%d code=%s%n", awq.spec(), c.nsamples(), c.seqlen(),
                modelOptions.threads(), CodeVersion.current());
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
    }

    static int exitCode(List<String> cmd) {
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }
}
