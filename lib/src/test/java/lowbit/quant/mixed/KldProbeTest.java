package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.eval.KlDivergence;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.Rtn;
import org.junit.jupiter.api.Test;

/**
 * The probe against the plain definition: full forward passes of the float and the changed model, log-softmax rows
 * compared position by position with {@link KlDivergence#compare}, and the NLL as {@link Transformer#nll} computes it.
 */
class KldProbeTest {
    private static final QuantConfig W3 = QuantConfig.group(3, 32);

    /** The mean KL and NLL per window by full forward passes, the model changed by the caller in between. */
    private static double[][] direct(Transformer model, int[][] windows, float[][][] floatLogProbs) {
        int V = model.config().vocabSize();
        double[][] out = new double[2][windows.length];
        for (int w = 0; w < windows.length; w++) {
            float[][] q = model.logProbs(windows[w]);
            double k = 0;
            for (int t = 0; t < windows[w].length - 1; t++) k += KlDivergence.compare(floatLogProbs[w][t], q[t], V, new float[V]).kld();
            out[0][w] = k / (windows[w].length - 1);
            out[1][w] = java.util.Arrays.stream(model.nll(windows[w])).average().orElseThrow();
        }
        return out;
    }

    @Test
    void measuresWhatFullForwardPassesGiveFromAnyFirstLayer() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            int[][] windows = MixedTestModel.windows(ckpt, 3, 64, 7);
            float[][][] floats = model.logProbs(windows);
            KldProbe probe = KldProbe.of(model, windows, Progress.NONE);
            for (double k : probe.current().kld()) assertEquals(0, k, 1e-6, "the float model against itself");

            int layers = model.config().numLayers();
            for (Linear lin : List.of(model.blockLinears(0).get(0), model.blockLinears(layers - 1).get(6), model.blockLinears(2).get(3))) {
                float[] w = lin.weight();
                float[] q = Rtn.quantize(lin.name(), w, lin.outFeatures(), lin.inFeatures(), W3).dequantize();
                KldProbe.Measurement m = probe.with(Map.of(lin, q));
                assertArrayEquals(w, lin.weight(), "restored after measuring");
                lin.setWeight(q);
                double[][] d = direct(model, windows, floats);
                lin.setWeight(w);
                for (int i = 0; i < windows.length; i++) {
                    assertTrue(m.kld()[i] > 1e-5, lin.name() + " at 3 bits changes the model");
                    assertEquals(d[0][i], m.kld()[i], 1e-6 + 1e-5 * d[0][i], lin.name() + " window " + i + " KL");
                    assertEquals(d[1][i], m.nll()[i], 1e-6, lin.name() + " window " + i + " NLL");
                }
            }
        }
    }

    @Test
    void recacheFollowsAPermanentChangeAndThreadsDoNotMoveABit() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer one = MixedTestModel.load(ckpt, 1); Transformer two = MixedTestModel.load(ckpt, 2)) {
            int[][] windows = MixedTestModel.windows(ckpt, 2, 48, 3);
            KldProbe a = KldProbe.of(one, windows, Progress.NONE), b = KldProbe.of(two, windows, Progress.NONE);
            Linear la = one.blockLinears(1).get(5), lb = two.blockLinears(1).get(5);
            float[] q = Rtn.quantize(la.name(), la.weight(), la.outFeatures(), la.inFeatures(), W3).dequantize();
            KldProbe.Measurement ma = a.with(Map.of(la, q)), mb = b.with(Map.of(lb, q));
            assertArrayEquals(ma.kld(), mb.kld(), 0, "1 and 2 threads");
            assertArrayEquals(ma.nll(), mb.nll(), 0);

            la.setWeight(q);
            KldProbe.Measurement after = a.recache(1);
            assertArrayEquals(ma.kld(), after.kld(), 0, "the permanent change measures as the temporary one did");
            assertArrayEquals(after.kld(), a.current().kld(), 0);
            // a later layer measured on top of the recached inputs equals measuring both changes from scratch
            Linear later = one.blockLinears(3).get(0);
            float[] q2 = Rtn.quantize(later.name(), later.weight(), later.outFeatures(), later.inFeatures(), W3).dequantize();
            KldProbe.Measurement both = a.with(Map.of(later, q2));
            Linear lb2 = two.blockLinears(3).get(0);
            KldProbe.Measurement scratch = b.with(Map.of(lb, q, lb2, q2));
            assertArrayEquals(scratch.kld(), both.kld(), 0);
        }
    }
}
