package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.Transformer;

/** stories260K (5 blocks of 7 linears, hidden 64, vocab 512): a real trained model small enough to measure exhaustively. */
final class MixedTestModel {
    private MixedTestModel() {}

    static Path bin() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        return bin;
    }

    static Checkpoint open() {
        return Checkpoints.open(bin());
    }

    static Transformer load(Checkpoint ckpt, int threads) {
        return Checkpoints.load(ckpt, threads);
    }

    /**
     * {@code n} windows of {@code seqlen} token ids drawn uniformly from the model's vocabulary with {@code seed}: what is
     * measured here (KL divergence between two models on the same tokens) is defined on any text, and tokenizing C4
     * with this tokenizer would cost the tests half a minute.
     */
    static int[][] windows(Checkpoint ckpt, int n, int seqlen, long seed) {
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        int vocab = ckpt.config().vocabSize();
        int[][] w = new int[n][seqlen];
        for (int[] row : w)
            for (int t = 0; t < seqlen; t++) row[t] = r.nextInt(vocab);
        return w;
    }
}
