package lowbit.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;

@Command(name = "export", mixinStandardHelpOptions = true,
        description = "Writes a model in another tool's format: gguf (llama.cpp) or hf (quantized Hugging Face checkpoints "
                + "for transformers and vLLM). ./lowbit export FORMAT --help lists each one's options.",
        subcommands = {ExportGgufCommand.class, ExportHfCommand.class})
final class ExportCommand implements Callable<Integer> {
    @Override
    public Integer call() {
        throw new IllegalArgumentException("export needs a format: gguf or hf (./lowbit export --help)");
    }
}
