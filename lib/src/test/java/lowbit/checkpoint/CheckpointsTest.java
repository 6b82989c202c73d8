package lowbit.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {
    private static Path tiny(String name) throws Exception {
        return Path.of(CheckpointsTest.class.getClassLoader().getResource("tiny/" + name).toURI());
    }

    @Test
    void opensEachFormatByWhatItIs() throws Exception {
        try (Checkpoint hf = Checkpoints.open(tiny("qwen2"))) {
            assertEquals("qwen2", hf.config().modelType());
        }
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded");
        try (Checkpoint g = Checkpoints.open(Checkpoints.DEFAULT, null)) {
            assertEquals(gguf.toString(), g.source());
            assertEquals(576, g.config().hiddenSize());
        }
    }

    @Test
    void refusesWhatIsNotACheckpoint(@TempDir Path tmp) throws Exception {
        Path text = Files.writeString(tmp.resolve("notes.txt"), "hello");
        FormatException e = assertThrows(FormatException.class, () -> Checkpoints.open(text));
        assertTrue(e.getMessage().contains("notes.txt") && e.getMessage().contains("GGUF"), e.getMessage());
        FormatException missing = assertThrows(FormatException.class, () -> Checkpoints.open(tmp.resolve("nope")));
        assertTrue(missing.getMessage().contains("no such file"), missing.getMessage());
        FormatException empty = assertThrows(FormatException.class, () -> Checkpoints.open(Files.createDirectory(tmp.resolve("empty"))));
        assertTrue(empty.getMessage().contains("config.json") || empty.getMessage().contains("safetensors"), empty.getMessage());
    }

    @Test
    void refusesATokenizerThatDoesNotBelongToTheModel(@TempDir Path tmp) throws Exception {
        // the tiny llama (vocab 128) given OPT's 50265-token GPT-2 tokenizer
        Path dir = Files.createDirectory(tmp.resolve("mismatch"));
        for (String f : new String[]{"config.json", "model.safetensors"}) Files.copy(tiny("llama").resolve(f), dir.resolve(f));
        Path opt = DataDir.root().resolve("models/opt-125m-tokenizer");
        assumeTrue(Files.exists(opt), "OPT tokenizer not in the data directory");
        for (String f : new String[]{"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"})
            Files.copy(opt.resolve(f), dir.resolve(f));
        try (Checkpoint ckpt = Checkpoints.open(dir)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Checkpoints.tokenizer(ckpt));
            assertTrue(e.getMessage().contains("50265") && e.getMessage().contains("128"), e.getMessage());
        }
    }
}
