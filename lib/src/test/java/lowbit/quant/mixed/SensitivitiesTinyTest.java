package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

/** The sensitivity the study reports ({@link Sensitivities}): hand-computed cases and the tiny model. */
class SensitivitiesTinyTest {
    @Test
    void rankCorrelationByHand() {
        assertEquals(1.0, Sensitivities.spearman(new double[] {1, 2, 3}, new double[] {10, 20, 300}), 1e-12);
        assertEquals(-1.0, Sensitivities.spearman(new double[] {1, 2, 3}, new double[] {3, 2, 1}), 1e-12);
        // ranks (1,2,3,4) vs (2,1,4,3): d^2 = 1+1+1+1 = 4, rho = 1 - 6*4/(4*15) = 0.6
        assertEquals(0.6, Sensitivities.spearman(new double[] {1, 2, 3, 4}, new double[] {2, 1, 4, 3}), 1e-12);
    }

    @Test
    void hessianErrorIsTheQuadraticForm() {
        // one row, d = w - q = (1, -1); H = [[2, 1], [1, 3]]: d^T H d = 2 - 1 - 1 + 3 = 3
        try (Parallel par = new Parallel(1)) {
            assertEquals(3.0, Sensitivities.hessianError(new float[] {1, 0}, new float[] {0, 1}, new double[] {2, 1, 1, 3}, 1, 2, par), 1e-12);
        }
    }

    @Test
    void measuredAndProxiesOnTheTinyModel() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        SplittableRandom rnd = new SplittableRandom(4);
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[][] windows = new int[4][32];
            for (int[] w : windows) for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(model.config().vocabSize());
            double[] before = model.nll(windows[0]);
            Candidates c = Candidates.rtn(model, QuantConfig.perChannel(2), List.of(2, 4));
            KldProbe probe = KldProbe.of(model, windows, Progress.NONE);
            Sensitivities s = Sensitivities.measure(c, model, windows, probe, List.of(2), Progress.NONE);
            assertArrayEquals(before, model.nll(windows[0]), "every linear is restored");
            Table t = s.table();
            assertEquals(14, t.rowCount());
            assertEquals(4 * 31, s.positions(), "each linear scored on every window's 31 next tokens");
            for (int i = 0; i < 14; i++) {
                assertTrue(t.doubleColumn("kld").get(i) > 0, "2-bit RTN moves the distribution: " + t.row(i));
                // the mean over 4 windows is the mean of the even and the odd pair's means
                assertEquals(t.doubleColumn("kld").get(i), (t.doubleColumn("kld_even").get(i) + t.doubleColumn("kld_odd").get(i)) / 2, 1e-12);
                assertTrue(t.doubleColumn("hessian_w2").get(i) > t.doubleColumn("hessian_w4").get(i), "fewer bits, more error: " + t.row(i));
            }
            Linear q0 = model.linear("model.layers.0.self_attn.q_proj");
            assertEquals(lowbit.stats.Moments.of(q0.weight()).pearsonKurtosis(), t.doubleColumn("weight_kurtosis").get(0), 1e-12);
            double rho = s.splitHalfCorrelation();
            assertTrue(rho >= -1 && rho <= 1, "split-half Spearman " + rho);
            assertEquals(rho, s.correlations().doubleColumn("spearman").get(0), 0);
        }
    }
}
