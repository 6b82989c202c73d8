package lowbit.quant.activation;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import lowbit.cuda.Cuda;
import lowbit.cuda.DryRunExtents;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;
import org.junit.jupiter.api.Test;

/**
 * DeviceFakeQuant's host code on the dry run ({@link Cuda#dryRun()}): each entry point's launch passes the PTX signature
 * (act_per_token takes a float floor, kv_groups a double one; counts of elements are 64-bit) and covers its elements.
 * Nothing runs, so only the launches are asserted.
 */
public class DeviceFakeQuantDryRunTest {
    @Test
    void everyEntryLaunchesItsKernel() {
        Cuda cuda = Cuda.dryRun();
        int rows = 37, kvHeads = 3, headDim = 64;
        try (DeviceBuffer x = cuda.floats((long) rows * kvHeads * headDim, "x")) {
            DeviceFakeQuant.perToken(cuda, x.pointer(), rows, kvHeads * headDim, 8);
            DeviceFakeQuant.perTensor(cuda, x.pointer(), rows, kvHeads * headDim, 4, 0.05f);
            DeviceFakeQuant.kv(cuda, x.pointer(), rows, kvHeads, headDim, 4, 32);
            DeviceFakeQuant.kv(cuda, x.pointer(), rows, kvHeads, headDim, 2, headDim);
            DeviceFakeQuant.perToken(cuda, x.pointer(), 0, kvHeads * headDim, 8);   // an empty window launches nothing
        }
        List<Kernel.Launch> l = cuda.launches();
        DryRunExtents.assertFit(l);
        assertEquals(List.of("quant.act_per_token", "quant.act_per_tensor", "quant.kv_groups", "quant.kv_groups"),
                l.stream().map(Kernel.Launch::kernel).toList());
        assertEquals(rows, l.get(0).grid().gx(), "one block per token");
        long n = (long) rows * kvHeads * headDim;
        assertEquals((n + 255) / 256, l.get(1).grid().gx(), "one thread per element");
        assertEquals(n, l.get(1).args().get(1));
        assertEquals((long) rows * kvHeads * 2, l.get(2).args().get(1), "groups of 32 of 64 head dimensions");
        assertEquals(15, l.get(2).args().get(3), "4-bit maxint");
        assertEquals((long) rows * kvHeads, l.get(3).args().get(1));
    }
}
