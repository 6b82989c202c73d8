package lowbit.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import lowbit.io.FormatException;

/**
 * Finds and builds the tokenizer that goes with a checkpoint. All of them are BPE: GPT-2-style byte-level
 * (OPT, SmolLM, Qwen, Llama-3) or sentencepiece-style with byte fallback (Llama-2, llama2.c stories).
 */
public final class Tokenizers {
    private Tokenizers() {}

    /** tokenizer.json, else vocab.json + merges.txt, in a Hugging Face model directory. */
    public static Tokenizer fromDirectory(Path dir) {
        Path json = dir.resolve("tokenizer.json");
        if (Files.isRegularFile(json)) return fromTokenizerJson(json);
        Path vocab = dir.resolve("vocab.json"), merges = dir.resolve("merges.txt");
        if (Files.isRegularFile(vocab) && Files.isRegularFile(merges)) return HfTokenizerLoader.fromVocabAndMerges(vocab, merges);
        throw new FormatException(dir, "no tokenizer.json, nor vocab.json + merges.txt");
    }

    /**
     * A Hugging Face tokenizer.json (model type BPE). BOS/EOS names are also looked up in a
     * tokenizer_config.json beside it; whether BOS is added comes from the post_processor.
     */
    public static Tokenizer fromTokenizerJson(Path file) {
        return HfTokenizerLoader.fromTokenizerJson(file);
    }

    /** The vocabulary embedded in a GGUF file's metadata (tokenizer.ggml.*). */
    public static Tokenizer fromGguf(Path file, Map<String, Object> metadata) {
        return GgufVocab.build(file, metadata);
    }

    /** llama2.c's tokenizer.bin format (scores + pieces), e.g. stories260K's tok512.bin. */
    public static Tokenizer fromLlama2c(Path tokenizerBin, int vocabSize) {
        return Llama2cVocab.read(tokenizerBin, vocabSize);
    }
}
