package lowbit.quant.awq;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.smoothquant.SmoothQuant;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** AWQ's scaling groups and SmoothQuant's smoothing, folded by the methods' own code, leave the float model's function (lowbit.model.ScaleFoldingTest checks the folding primitives). */
class MethodFoldingTest {
    private static int[] tokens(Transformer model, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        int[] ids = new int[24];
        for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(model.config().vocabSize());
        return ids;
    }

    private static double worst(float[][] a, float[][] b) {
        double w = 0;
        for (int t = 0; t < a.length; t++) for (int j = 0; j < a[t].length; j++) w = Math.max(w, Math.abs(a[t][j] - b[t][j]));
        return w;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "opt"})
    void awqFoldsOfEveryScalingGroupLeaveTheOutputs(String family) throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + family).toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] ids = tokens(model, 1);
            float[][] before = model.logProbs(ids);
            SplittableRandom rnd = new SplittableRandom(7);
            int groups = 0;
            for (int l = 0; l < model.config().numLayers(); l++)
                for (Awq.ScaleGroup g : Awq.scaleGroups(model, l)) {
                    float[] s = new float[g.consumers().get(0).inFeatures()];
                    // AWQ's scales span orders of magnitude (mean|x|^alpha normalized): 0.1 .. 10
                    for (int j = 0; j < s.length; j++) s[j] = (float) Math.pow(10, rnd.nextDouble(-1, 1));
                    Awq.foldIntoModel(model, l, g, s);
                    groups++;
                }
            double w = worst(before, model.logProbs(ids));
            assertTrue(groups >= 3 * model.config().numLayers(), family + ": " + groups + " groups folded");
            assertTrue(w < 1e-5, family + ": folding moved log-probs by " + w);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2"})
    void smoothQuantSmoothingLeavesTheOutputs(String family) throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + family).toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] ids = tokens(model, 2);
            float[][] before = model.logProbs(ids);
            Map<String, float[]> act = SmoothQuant.activationMaxima(model, new int[][] {tokens(model, 3), tokens(model, 4)}, Progress.NONE);
            for (double alpha : new double[] {0.5, 0.8}) {
                SmoothQuant.smooth(model, act, alpha);
                double w = worst(before, model.logProbs(ids));
                assertTrue(w < 1e-5, family + " alpha " + alpha + ": smoothing moved log-probs by " + w);
            }
        }
    }
}
