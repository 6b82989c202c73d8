package lowbit.model;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Folding per-channel scales into a norm or linear and out of the next linears leaves the model's outputs unchanged. */
class ScaleFoldingTest {
    @ParameterizedTest
    @ValueSource(strings = {"llama", "opt", "qwen2", "qwen3"})
    void foldedModelComputesTheSameFunction(String name) throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + name).toURI());
        SplittableRandom rnd = new SplittableRandom(5);
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] ids = new int[24];
            for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(model.config().vocabSize());
            float[][] before = model.logProbs(ids);
            float[] q0 = model.blockLinears(0).get(0).weight();
            int h = model.config().hiddenSize();
            for (int l = 0; l < model.config().numLayers(); l++) {
                var lin = model.blockLinears(l);
                float[] s = scales(h, rnd);
                model.divideNorm(l, "attn", s);
                for (Linear x : lin.subList(0, 3)) x.scaleInputs(s);
                s = scales(h, rnd);
                model.divideNorm(l, "mlp", s);
                for (Linear x : lin) if (x.module().equals("gate_proj") || x.module().equals("up_proj") || x.module().equals("fc1")) x.scaleInputs(s);
                // up -> down (OPT: fc1 -> ReLU -> fc2, which commutes with positive scales)
                Linear up = lin.get(lin.size() - 2), down = lin.get(lin.size() - 1);
                s = scales(up.outFeatures(), rnd);
                up.divideOutputs(s);
                down.scaleInputs(s);
                Linear v = lin.get(2), o = lin.get(3);
                if (v.outFeatures() == o.inFeatures()) {
                    s = scales(v.outFeatures(), rnd);
                    v.divideOutputs(s);
                    o.scaleInputs(s);
                }
            }
            float[][] after = model.logProbs(ids);
            double worst = 0;
            for (int t = 0; t < ids.length; t++)
                for (int j = 0; j < after[t].length; j++) worst = Math.max(worst, Math.abs(after[t][j] - before[t][j]));
            assertTrue(worst < 1e-5, name + ": log-probs moved by " + worst);
            assertFalse(java.util.Arrays.equals(q0, model.blockLinears(0).get(0).weight()), "the weights did change");
        }
    }

    private static float[] scales(int n, SplittableRandom rnd) {
        float[] s = new float[n];
        for (int i = 0; i < n; i++) s[i] = (float) Math.exp(rnd.nextDouble(-1.5, 1.5));
        return s;
    }
}
