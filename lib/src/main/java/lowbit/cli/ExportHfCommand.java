package lowbit.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.hf.HfExport;
import lowbit.progress.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "hf", mixinStandardHelpOptions = true,
        description = "Writes a lowbit quantized directory (./lowbit quantize --out DIR) as a quantized Hugging Face checkpoint "
                + "that transformers and vLLM load: compressed-tensors (pack-quantized), gptq or awq (GEMM). The codes are "
                + "written as they are; what a format cannot hold exactly is refused. --model DIR reads such checkpoints back.")
final class ExportHfCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "QUANTIZED_DIR", description = "a directory written by ./lowbit quantize")
    Path model;

    @Option(names = "--format", required = true, paramLabel = "compressed-tensors|gptq|awq", description = "the checkpoint layout")
    String format;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "new directory for the Hugging Face checkpoint")
    Path out;

    @Override
    public Integer call() {
        HfExport.Result r = HfExport.write(model, format, out, Progress.terminal());
        System.out.printf(Locale.ROOT, "wrote %s: %s, %d linears on %s%s%n", r.dir(), r.format(), r.linears(), r.grid().label(),
                r.actOrder() ? " (act-order g_idx)" : "");
        return 0;
    }
}
