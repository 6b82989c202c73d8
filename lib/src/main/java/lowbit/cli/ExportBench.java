package lowbit.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.gguf.GgufExport;
import lowbit.checkpoint.gguf.GgufPreset;
import lowbit.io.AtomicOutput;
import lowbit.progress.Progress;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * `bench export`: our GGUF export of a model to Q4_K_M (with an importance matrix when given) against
 * llama.cpp's llama-quantize on the same F32 GGUF and CPU. The F32 file is our own `export gguf --type F32`,
 * written to a scratch directory first (not timed).
 */
@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Times export gguf of the model to --type (default Q4_K_M) from an F32 GGUF, against llama.cpp's "
                + "llama-quantize on the same file and CPU when --llama-quantize is given.")
final class ExportBench implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--type", defaultValue = "Q4_K_M", paramLabel = "TYPE", description = "file type to export (default: ${DEFAULT-VALUE})")
    String type;

    @Option(names = "--imatrix", paramLabel = "FILE", description = "importance matrix for both (llama-imatrix's GGUF, or ./lowbit imatrix)")
    Path imatrix;

    @Option(names = "--llama-quantize", paramLabel = "PATH", description = "llama.cpp's llama-quantize binary to time on the same file")
    Path llamaQuantize;

    @Option(names = "--repeat", defaultValue = "3", paramLabel = "N", description = "runs of each, the fastest is reported (default: ${DEFAULT-VALUE})")
    int repeat;

    @Override
    public Integer call() throws Exception {
        modelOptions.cpuOnly("bench export");
        GgufPreset preset = GgufPreset.parse(type);
        if (repeat < 1) throw new IllegalArgumentException("--repeat must be >= 1, got " + repeat);
        if (llamaQuantize != null && !Files.isExecutable(llamaQuantize))
            throw new IllegalArgumentException("--llama-quantize " + llamaQuantize + " is not an executable file");
        int threads = modelOptions.threads();
        Path dir = Files.createTempDirectory("lowbit-bench-export");
        try {
            Path f32 = dir.resolve("f32.gguf");
            try (Checkpoint ckpt = modelOptions.open()) {
                GgufExport.of(ckpt, GgufExport.Options.of(GgufPreset.F32)).write(f32, Progress.NONE);
            }
            System.out.printf(Locale.ROOT, "export  model=%s type=%s imatrix=%s threads=%d code=%s%n", modelOptions.model, preset,
                    imatrix == null ? "none" : imatrix, threads, CodeVersion.current());
            double ours = Double.MAX_VALUE;
            try (Checkpoint src = Checkpoints.open(f32)) {
                var options = new GgufExport.Options(preset, List.of(), Map.of(), ExportGgufCommand.importance(imatrix, src));
                for (int i = 0; i < repeat; i++) {
                    Path out = dir.resolve("ours" + i + ".gguf");
                    long t0 = System.nanoTime();
                    GgufExport.of(src, options).write(out, Progress.NONE);
                    ours = Math.min(ours, (System.nanoTime() - t0) / 1e9);
                    Files.delete(out);
                }
            }
            System.out.printf(Locale.ROOT, "lowbit export gguf   %7.2f s (fastest of %d)%n", ours, repeat);
            if (llamaQuantize == null) {
                System.out.println("llama-quantize       not timed: give --llama-quantize PATH (llama.cpp's binary) to compare on this CPU");
            } else {
                double theirs = Double.MAX_VALUE;
                for (int i = 0; i < repeat; i++) {
                    Path out = dir.resolve("theirs" + i + ".gguf");
                    List<String> cmd = new ArrayList<>(List.of(llamaQuantize.toString()));
                    if (imatrix != null) cmd.addAll(List.of("--imatrix", imatrix.toString()));
                    cmd.addAll(List.of(f32.toString(), out.toString(), preset.name(), String.valueOf(threads)));
                    long t0 = System.nanoTime();
                    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("llama-quantize.log").toFile()).start();
                    if (!p.waitFor(600, TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                        throw new IllegalStateException("llama-quantize did not finish in 600 s");
                    }
                    double s = (System.nanoTime() - t0) / 1e9;
                    if (p.exitValue() != 0)
                        throw new IllegalStateException("llama-quantize exited with " + p.exitValue() + ": "
                                + lastLine(dir.resolve("llama-quantize.log")));
                    theirs = Math.min(theirs, s);
                    Files.delete(out);
                }
                System.out.printf(Locale.ROOT, "llama-quantize       %7.2f s (fastest of %d, %d threads, process wall time)%n", theirs, repeat, threads);
                System.out.printf(Locale.ROOT, "ratio lowbit/llama-quantize %.2f%n", ours / theirs);
            }
            System.out.printf(Locale.ROOT, "load average at the end %s%n", BenchCommand.Eval.loadAverage());
        } finally {
            AtomicOutput.delete(dir);
        }
        return 0;
    }

    private static String lastLine(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return lines.isEmpty() ? "(no output)" : lines.get(lines.size() - 1);
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
