package lowbit.quant.gptq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.SplittableRandom;
import lowbit.cuda.Cuda;
import lowbit.cuda.DryRunExtents;
import lowbit.cuda.Kernel;
import lowbit.quant.QuantConfig;
import lowbit.tensor.Parallel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DeviceGptq's host code on the dry run ({@link Cuda#dryRun()}): addBatch and quantize pass every launch's PTX signature
 * and limits and launch the kernels of the path. The dry run computes nothing, so the Hessian it downloads is zeros
 * (GPTQ treats every column as dead) and the codes are zeros: the test asserts the launches and that a Result of the
 * right shape comes back, not the numbers.
 */
public class DeviceGptqDryRunTest {
    @ParameterizedTest
    @ValueSource(strings = {"perChannel", "group", "group-actorder", "group-static"})
    void addBatchAndQuantizeLaunchTheColumnLoop(String which) {
        int n = 200, rows = 24;   // 200 columns: a full block of 128 and a partial one, so the trailing update runs once
        QuantConfig cfg = which.equals("perChannel") ? QuantConfig.perChannel(4) : QuantConfig.group(4, 32);
        Gptq.Options opt = Gptq.Options.defaults().withActOrder(which.endsWith("actorder")).withStaticGroups(which.endsWith("static"));
        SplittableRandom r = new SplittableRandom(3);
        float[] x = new float[16 * n], w = new float[rows * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) r.nextGaussian();
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian();
        Cuda cuda = Cuda.dryRun();
        try (Parallel par = new Parallel(1); DeviceGptq g = new DeviceGptq(cuda, n)) {
            g.addBatch(x, 16);
            g.addBatch(x, 8);
            assertEquals(2, g.samples());
            Gptq.Result res = g.quantize("w", w, rows, cfg, opt, par);
            assertTrue(res != null);
        }
        DryRunExtents.assertFit(cuda.launches());
        List<String> kernels = cuda.launches().stream().map(Kernel.Launch::kernel).toList();
        // every batch first scales H by samples / (samples + 1), as gptq.py does (by 0 on the first, H being zeroed)
        assertEquals(List.of("gptq.gptq_hessian_scale", "gptq.gptq_hessian_add", "gptq.gptq_hessian_scale", "gptq.gptq_hessian_add"),
                kernels.subList(0, 4));
        assertEquals(0.5, cuda.launches().get(2).args().get(2), "the second batch keeps half of H");
        long blocks = kernels.stream().filter(k -> k.equals("gptq.gptq_block")).count();
        assertEquals(2, blocks, "two column blocks of 128");
        assertEquals(1, kernels.stream().filter(k -> k.equals("gptq.gptq_trailing")).count());
        boolean dynamicGroups = which.equals("group") || which.equals("group-actorder");
        assertEquals(dynamicGroups, kernels.contains("gptq.gptq_gather_columns"), "group fits gather their columns");
        assertEquals(0, cuda.allocatedBytes());
    }
}
