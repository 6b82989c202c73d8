package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import org.apache.commons.math3.stat.correlation.SpearmansCorrelation;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

class SensitivitiesTest {
    @Test
    void measuredLossesAreTheProbesAndTheRestIsCarriedByTheHessianRatio() {
        try (Checkpoint ckpt = MixedTestModel.open(); Transformer model = MixedTestModel.load(ckpt, 2)) {
            List<Integer> widths = List.of(2, 3, 4, 8);
            Candidates c = Candidates.rtn(model, QuantConfig.group(2, 32), widths);
            int[][] windows = MixedTestModel.windows(ckpt, 4, 48, 5);
            KldProbe probe = KldProbe.of(model, windows, Progress.NONE);
            Sensitivities s = Sensitivities.measure(c, model, windows, probe, List.of(3, 2), Progress.NONE);
            assertEquals(3, s.probeWidth(), "the first probe width is the reported one");
            double[][] kld = s.losses(Sensitivities.Predictor.KLD);
            assertTrue(s.losses(Sensitivities.Predictor.HESSIAN)[0][0] > 0, "every width computed");
            Table t = s.table();
            for (int i = 0; i < c.linears().size(); i++) {
                String name = c.linears().get(i);
                double at3 = probe.with(Map.of(model.linear(name), c.get(name, 3).dequantize())).meanKld();
                double at2 = probe.with(Map.of(model.linear(name), c.get(name, 2).dequantize())).meanKld();
                assertEquals(at3, t.doubleColumn("kld").get(i), 0, name);
                assertEquals(Math.max(at2, at3), kld[i][0], 0, name + ": 2 bits measured (never below 3 bits' cost)");
                assertEquals(at3, kld[i][1], 0, name);
                // 4 bits: nearest measured is 3; 8 bits: nearest is also 3 (4 is not measured); carried by the squared-error ratio
                double e2 = t.doubleColumn("rel_error_w4").get(i) / t.doubleColumn("rel_error_w3").get(i);
                double e3 = t.doubleColumn("rel_error_w8").get(i) / t.doubleColumn("rel_error_w3").get(i);
                assertEquals(Math.min(at3, at3 * e2), kld[i][2], 1e-15 * at3, name);
                assertEquals(Math.min(kld[i][2], at3 * e3), kld[i][3], 1e-15 * at3, name);
            }
            // split halves: windows 0 and 2 against 1 and 3
            int n = c.linears().size();
            double[] even = new double[n], odd = new double[n];
            for (int i = 0; i < n; i++) {
                double[] per = probe.with(Map.of(model.linear(c.linears().get(i)), c.get(c.linears().get(i), 3).dequantize())).kld();
                even[i] = (per[0] + per[2]) / 2;
                odd[i] = (per[1] + per[3]) / 2;
            }
            assertEquals(new SpearmansCorrelation().correlation(even, odd), s.splitHalfCorrelation(), 1e-12);
            Table rel = s.reliability();
            assertEquals(2, rel.rowCount(), "2 and 4 windows");
            assertEquals(s.splitHalfCorrelation(), rel.doubleColumn("split_half_spearman").get(1), 0);
            assertEquals(6, s.correlations().rowCount());
        }
    }
}
