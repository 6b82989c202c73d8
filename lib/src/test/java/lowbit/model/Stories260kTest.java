package lowbit.model;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;

/**
 * A real trained model end to end: llama2.c's stories260K, greedy from BOS. The shared data's provenance
 * records the text an independent NumPy forward pass produced: "Once upon a time, there was a little girl
 * named Lily. She loved to play outside in the park..."
 */
class Stories260kTest {
    @Test
    void greedyDecodingTellsTheKnownStory() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        try (Checkpoint ckpt = Checkpoints.open(bin); Transformer model = Checkpoints.load(ckpt, 2)) {
            int[] tokens = {ckpt.config().bosTokenId()};
            for (int step = 0; step < 40; step++) {
                float[][] lp = model.logProbs(tokens);
                float[] last = lp[tokens.length - 1];
                int best = 0;
                for (int t = 1; t < last.length; t++) if (last[t] > last[best]) best = t;
                tokens = Arrays.copyOf(tokens, tokens.length + 1);
                tokens[tokens.length - 1] = best;
            }
            String text = ckpt.tokenizer().decode(Arrays.copyOfRange(tokens, 1, tokens.length)).strip();
            assertTrue(text.startsWith("Once upon a time, there was a little girl named Lily. She loved to play outside in the park"),
                    text);
        }
    }
}
