package lowbit.tokenizer;

import java.nio.file.Path;
import java.util.Map;

/** Finds and builds the tokenizer that goes with a checkpoint. (Signatures fixed; bodies land with the tokenizer work.) */
public final class Tokenizers {
    private Tokenizers() {}

    /** tokenizer.json, else vocab.json + merges.txt, in a Hugging Face model directory. */
    public static Tokenizer fromDirectory(Path dir) {
        throw new UnsupportedOperationException("tokenizer work not merged yet");
    }

    /** The vocabulary embedded in a GGUF file's metadata (tokenizer.ggml.*). */
    public static Tokenizer fromGguf(Path file, Map<String, Object> metadata) {
        throw new UnsupportedOperationException("tokenizer work not merged yet");
    }

    /** llama2.c's tokenizer.bin format (scores + pieces), e.g. stories260K's tok512.bin. */
    public static Tokenizer fromLlama2c(Path tokenizerBin, int vocabSize) {
        throw new UnsupportedOperationException("tokenizer work not merged yet");
    }
}
