package lowbit.quant.awq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import lowbit.cuda.Cuda;
import lowbit.cuda.DryRunExtents;
import lowbit.cuda.Kernel;
import org.junit.jupiter.api.Test;

/**
 * DeviceAwq's host code on the dry run ({@link Cuda#dryRun()}): the stacked windows fit their buffers and the loss kernel's
 * launch passes its PTX signature (tokens are 64-bit). The partial sums come back as zeros, so the loss is not asserted.
 */
public class DeviceAwqDryRunTest {
    @Test
    void lossLaunchesOneBlockPerTile() {
        int in = 48, out = 80;
        float[][] x = {new float[30 * in], new float[50 * in]}, ref = {new float[30 * out], new float[50 * out]};
        Cuda cuda = Cuda.dryRun();
        for (float[] bias : new float[][] {null, new float[out]})
            try (DeviceAwq a = DeviceAwq.upload(cuda, "l", x, in, ref, out, bias)) {
                assertEquals(80, a.tokens());
                a.loss(new float[out * in]);
            }
        List<Kernel.Launch> l = cuda.launches();
        DryRunExtents.assertFit(l);
        assertEquals(2, l.size());
        for (Kernel.Launch launch : l) {
            assertEquals("awq.awq_loss", launch.kernel());
            assertEquals(80L, launch.args().get(1));
            assertEquals(2, launch.grid().gx(), "80 outputs in tiles of 64");
            assertEquals(2, launch.grid().gy(), "80 tokens in tiles of 64");
        }
        assertEquals(0, cuda.allocatedBytes());
    }
}
