package lowbit.cli;

import lowbit.io.Checkpoint;
import lowbit.io.Checkpoints;
import lowbit.model.Transformer;
import lowbit.tensor.Parallel;
import picocli.CommandLine.Option;

/** --model and --threads, shared by every command that runs a model. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = "default", paramLabel = "PATH|default|hf:ORG/NAME[@REV]",
            description = "checkpoint: a Hugging Face directory, a .gguf file, a llama2.c .bin, 'default' "
                    + "(SmolLM2-135M-Instruct Q4_1) or hf:ORG/NAME to download from the Hub (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--threads", paramLabel = "N",
            description = "compute threads, 1 to 4 x the available processors (default: all cores)")
    Integer threads;

    /**
     * More threads than cores only time-slice the same cores, and each holds its own buffers; past four per
     * processor the number is a typo, not a plan.
     */
    int threads() {
        if (threads == null) return Parallel.defaultThreads();
        int most = 4 * Runtime.getRuntime().availableProcessors();
        if (threads < 1 || threads > most)
            throw new IllegalArgumentException("--threads must be between 1 and " + most + " (4 x the "
                    + Runtime.getRuntime().availableProcessors() + " available processors), got " + threads);
        return threads;
    }

    Checkpoint open() {
        return Checkpoints.open(model, DownloadCommand.terminalDownloadProgress());
    }

    Transformer load(Checkpoint ckpt) {
        return Transformer.load(ckpt, threads());
    }
}
