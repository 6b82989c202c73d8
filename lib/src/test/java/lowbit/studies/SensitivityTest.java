package lowbit.studies;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

class SensitivityTest {
    @Test
    void rankCorrelationByHand() {
        assertEquals(1.0, Sensitivity.rankCorrelation(new double[] {1, 2, 3}, new double[] {10, 20, 300}), 1e-12);
        assertEquals(-1.0, Sensitivity.rankCorrelation(new double[] {1, 2, 3}, new double[] {3, 2, 1}), 1e-12);
        // ranks (1,2,3,4) vs (2,1,4,3): d^2 = 1+1+1+1 = 4, rho = 1 - 6*4/(4*15) = 0.6
        assertEquals(0.6, Sensitivity.rankCorrelation(new double[] {1, 2, 3, 4}, new double[] {2, 1, 4, 3}), 1e-12);
    }

    @Test
    void hessianErrorIsTheQuadraticForm() {
        // one row, d = w - q = (1, -1); H = [[2, 1], [1, 3]]: d^T H d = 2 - 1 - 1 + 3 = 3
        assertEquals(3.0, Sensitivity.hessianError(new float[] {1, 0}, new float[] {0, 1}, new double[] {2, 1, 1, 3}, 1, 2), 1e-12);
    }

    @Test
    void measuredAndProxiesOnTheTinyModel() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        SplittableRandom rnd = new SplittableRandom(4);
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] ids = new int[4 * 32];
            for (int i = 0; i < ids.length; i++) ids[i] = rnd.nextInt(model.config().vocabSize());
            int[][] windows = new int[4][];
            for (int w = 0; w < 4; w++) windows[w] = java.util.Arrays.copyOfRange(ids, w * 32, (w + 1) * 32);
            double[] before = model.nll(windows[0]);
            QuantConfig cfg = QuantConfig.perChannel(2);
            Table m = Sensitivity.measured(model, ids, 32, 4, cfg, Progress.NONE);
            assertArrayEquals(before, model.nll(windows[0]), "every linear is restored");
            assertEquals(14, m.rowCount());
            assertTrue(m.doubleColumn("ppl_increase").max() > 0, "2-bit RTN hurts somewhere");
            Table p = Sensitivity.proxies(model, windows, cfg, Progress.NONE);
            assertEquals(14, p.rowCount());
            for (int i = 0; i < 14; i++) {
                assertEquals(m.stringColumn("name").get(i), p.stringColumn("name").get(i));
                assertTrue(p.doubleColumn("hessian_error").get(i) > 0);
            }
            Linear q0 = model.linear("model.layers.0.self_attn.q_proj");
            assertEquals(lowbit.stats.Moments.of(q0.weight()).pearsonKurtosis(), p.doubleColumn("kurtosis").get(0), 1e-12);
            assertArrayEquals(before, model.nll(windows[0]), "the proxies leave the model as it was");
            double rho = Sensitivity.rankCorrelation(p.doubleColumn("hessian_error").asDoubleArray(), m.doubleColumn("ppl_increase").asDoubleArray());
            assertTrue(Double.isFinite(rho), "rank correlation of the proxy with the measured increase: " + rho);
        }
    }
}
