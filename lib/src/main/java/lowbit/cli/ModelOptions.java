package lowbit.cli;

import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.tensor.Parallel;
import picocli.CommandLine.Option;

/** --model and --threads, shared by every command that runs a model. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = "default", paramLabel = "PATH|default|hf:ORG/NAME[@REV]",
            description = "checkpoint: a Hugging Face directory, a .gguf file, a llama2.c .bin, 'default' "
                    + "(SmolLM2-135M-Instruct Q4_1) or hf:ORG/NAME to download from the Hub (default: ${DEFAULT-VALUE})")
    String model;

    @Option(names = "--threads", paramLabel = "N", description = "compute threads (default: all cores)")
    Integer threads;

    int threads() {
        return threads != null ? threads : Parallel.defaultThreads();
    }

    Checkpoint open() {
        return Checkpoints.open(model, DownloadCommand.terminalDownloadProgress());
    }

    Transformer load(Checkpoint ckpt) {
        return Checkpoints.load(ckpt, threads());
    }
}
