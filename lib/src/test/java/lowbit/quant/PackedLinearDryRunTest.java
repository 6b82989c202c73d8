package lowbit.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.util.List;
import java.util.SplittableRandom;
import lowbit.cuda.Cuda;
import lowbit.cuda.DryRunExtents;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Kernel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PackedLinear's and DeviceRtn's host code on the dry run ({@link Cuda#dryRun()}): uploads, layouts and launches pass the
 * PTX signature checks and the dry run's bounds checks, and each row count takes the documented kernel. The dry run
 * computes nothing (DeviceRtn's codes come back as zeros), so only launches and shapes are asserted.
 */
public class PackedLinearDryRunTest {
    static float[] weights(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) w[i] = (float) r.nextGaussian();
        return w;
    }

    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4, 8})
    void everyRowCountLaunchesItsKernel(int bits) {
        int out = 40, in = 96;   // 96 columns: 3 groups of 32, no padding; 40 outputs: a partial tile and GEMV block
        QuantizedWeight g = Rtn.quantize("w", weights(out * in, bits), out, in, QuantConfig.group(bits, 32));
        int[] index = new int[in];
        for (int c = 0; c < in; c++) index[c] = (c * 7) % g.groups();
        QuantizedWeight withIndex = new QuantizedWeight(out, in, g.config(), g.packedCodes(), g.scales(), g.zeros(), index);
        QuantizedWeight odd = Rtn.quantize("odd", weights(out * 70, bits + 1), out, 70, QuantConfig.perChannel(bits));  // padded rows
        int[] rowCounts = {1, 4, 16, 17, 64};
        String[] expected = {"dq_gemv1_b", "dq_gemv4_b", "dq_gemv16_b", "dq_gemm_b", "dq_gemm_b"};
        for (QuantizedWeight w : new QuantizedWeight[] {g, withIndex, odd}) {
            Cuda cuda = Cuda.dryRun();
            try (PackedLinear l = PackedLinear.upload(cuda, "l", w, w == odd ? new float[out] : null)) {
                for (int rows : rowCounts)
                    try (DeviceBuffer x = cuda.floats((long) rows * w.columns(), "x"); DeviceBuffer y = cuda.floats((long) rows * out, "y")) {
                        l.apply(x.pointer(), rows, y.pointer());
                    }
            }
            List<Kernel.Launch> launches = cuda.launches();
            DryRunExtents.assertFit(launches);
            assertEquals(rowCounts.length, launches.size());
            for (int i = 0; i < rowCounts.length; i++) {
                assertEquals("dequant_gemm." + expected[i] + bits, launches.get(i).kernel());
                assertEquals(rowCounts[i], launches.get(i).args().get(12), "rows argument");
            }
            if (w == withIndex) assertNotNull(launches.get(0).args().get(3), "the group index is passed");
            assertEquals(0, cuda.allocatedBytes());
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"group4", "perChannel3", "perTensor8", "q4_1", "absmax4", "mse4"})
    void deviceRtnLaunchesOneFitPerGroup(String which) {
        QuantConfig cfg = switch (which) {
            case "group4" -> QuantConfig.group(4, 32);
            case "perChannel3" -> QuantConfig.perChannel(3);
            case "perTensor8" -> QuantConfig.perTensor(8);
            case "q4_1" -> QuantConfig.q4_1();
            case "absmax4" -> QuantConfig.absmaxPerChannel(4);
            default -> QuantConfig.group(4, 32).withMseClip(true);
        };
        int rows = 12, cols = 64;
        Cuda cuda = Cuda.dryRun();
        QuantizedWeight w = DeviceRtn.quantize(cuda, "w", weights(rows * cols, 1), rows, cols, cfg);
        assertEquals(rows, w.rows());
        List<Kernel.Launch> launches = cuda.launches();
        DryRunExtents.assertFit(launches);
        assertEquals(1, launches.size());
        assertEquals("quant.rtn_fit_codes", launches.get(0).kernel());
        int blocks = cfg.groupSize() == QuantConfig.PER_TENSOR ? 1 : rows * cfg.groupsPerRow(cols);
        assertEquals(blocks, launches.get(0).grid().gx());
        assertEquals(0, cuda.allocatedBytes());
    }
}
