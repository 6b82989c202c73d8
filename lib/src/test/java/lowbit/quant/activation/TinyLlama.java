package lowbit.quant.activation;

import java.nio.file.Path;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;

/** The tiny random Llama test checkpoint (2 layers, 2 kv heads of 16) and random windows over its vocabulary. */
final class TinyLlama {
    private TinyLlama() {}

    static Checkpoint open() throws Exception {
        return Checkpoints.open(Path.of(TinyLlama.class.getClassLoader().getResource("tiny/llama").toURI()));
    }

    static int[][] windows(int count, int length, int vocab, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[][] w = new int[count][length];
        for (int[] row : w) for (int i = 0; i < length; i++) row[i] = rnd.nextInt(vocab);
        return w;
    }

    static double maxAbsDiff(float[][] a, float[][] b) {
        double m = 0;
        for (int t = 0; t < a.length; t++)
            for (int j = 0; j < a[t].length; j++) m = Math.max(m, Math.abs(a[t][j] - b[t][j]));
        return m;
    }
}
