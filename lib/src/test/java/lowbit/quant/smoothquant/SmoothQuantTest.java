package lowbit.quant.smoothquant;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import org.junit.jupiter.api.Test;

class SmoothQuantTest {
    @Test
    void smoothingFactorsByHand() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            List<Linear> consumers = SmoothQuant.groups(model, 0).get("attn");
            int n = model.config().hiddenSize();
            float[] act = new float[n];
            for (int j = 0; j < n; j++) act[j] = j == 3 ? 40f : 1f + j / 64f;
            // Channel 3: max|W| over q, k and v, by hand from the weights.
            double wMax = 0;
            for (Linear l : consumers) {
                float[] w = l.weight();
                for (int i = 0; i < l.outFeatures(); i++) wMax = Math.max(wMax, Math.abs(w[i * n + 3]));
            }
            float[] s = SmoothQuant.smoothingFactors(act, consumers, 0.5);
            assertEquals(Math.sqrt(40) / Math.sqrt(wMax), s[3], 1e-5 * s[3]);
            float[] s8 = SmoothQuant.smoothingFactors(act, consumers, 0.8);
            assertEquals(Math.pow(40, 0.8) / Math.pow(wMax, 0.2), s8[3], 1e-5 * s8[3]);
            assertEquals(1.0, SmoothQuant.smoothingFactors(new float[n], consumers, 1.0)[0] / 1e-5, 1e-6, "max|X| and s clamp at 1e-5");
            assertThrows(IllegalArgumentException.class, () -> SmoothQuant.smoothingFactors(act, consumers, 1.2));
        }
    }

    @Test
    void eightBitWeightsAfterSmoothingStayClose() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        SplittableRandom rnd = new SplittableRandom(2);
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[][] windows = new int[3][24];
            for (int[] w : windows) for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(model.config().vocabSize());
            float[][] before = model.logProbs(windows[0]);
            Map<String, float[]> act = SmoothQuant.activationMaxima(model, windows, Progress.NONE);
            // 8-bit weights barely move the model; with smoothing folded in, the function is the same before quantizing,
            // so the log-probs move only by the 8-bit weight error.
            SmoothQuant.quantize(model, act, 0.5, QuantConfig.absmaxPerChannel(8).withScaleFormat(QuantConfig.ScaleFormat.F32));
            float[][] after = model.logProbs(windows[0]);
            double worst = 0;
            for (int t = 0; t < before.length; t++) for (int j = 0; j < before[t].length; j++) worst = Math.max(worst, Math.abs(after[t][j] - before[t][j]));
            assertTrue(worst > 0 && worst < 0.3, "W8 after smoothing moved log-probs by " + worst);
        }
    }
}
