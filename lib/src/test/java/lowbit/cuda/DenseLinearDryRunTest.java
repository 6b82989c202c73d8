package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.List;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * DenseLinear's host code on the dry run ({@link Cuda#dryRun()}): every launch passes the PTX signature and launch-limit
 * checks, and the kernel each row count and format takes is the one documented (bf16 from 64 rows on the tensor cores).
 * Nothing is computed, so only the launches are asserted.
 */
public class DenseLinearDryRunTest {
    @ParameterizedTest
    @CsvSource({"FP32,1,gemm.gemm_f32", "FP32,63,gemm.gemm_f32", "FP32,64,gemm.gemm_f32", "FP32,2048,gemm.gemm_f32",
            "BF16,1,gemm.gemm_bf16", "BF16,63,gemm.gemm_bf16", "BF16,64,gemm_tc.gemm_bf16_tc", "BF16,2048,gemm_tc.gemm_bf16_tc"})
    void launchesTheDocumentedKernel(WeightFormat format, int rows, String kernel) {
        Cuda cuda = Cuda.dryRun();
        int out = 96, in = 80;
        for (boolean withBias : new boolean[] {false, true}) {
            try (DenseLinear l = DenseLinear.upload(cuda, "l", new float[out * in], out, in, withBias ? new float[out] : null, format);
                 DeviceBuffer x = cuda.floats((long) rows * in, "x"); DeviceBuffer y = cuda.floats((long) rows * out, "y")) {
                l.apply(x.pointer(), rows, y.pointer());
            }
        }
        List<Kernel.Launch> launches = cuda.launches();
        DryRunExtents.assertFit(launches);
        assertEquals(2, launches.size());
        for (Kernel.Launch l : launches) {
            assertEquals(kernel, l.kernel());
            Kernel.Grid g = l.grid();
            // every output and row is covered by the tiles (64 x 64 in gemm.cu; 64 outputs x 128 rows in gemm_tc.cu)
            int tileRows = kernel.startsWith("gemm_tc") ? 128 : 64;
            assertEquals((out + 63) / 64, g.gx());
            assertEquals((rows + tileRows - 1) / tileRows, g.gy());
        }
        assertEquals(0, cuda.allocatedBytes());
    }

    /** The extents check sees an output one row short, and a slice that starts too late in its buffer. */
    @org.junit.jupiter.api.Test
    void aTooSmallOutputIsFound() {
        Cuda cuda = Cuda.dryRun();
        try (DenseLinear l = DenseLinear.upload(cuda, "l", new float[12], 3, 4, null, WeightFormat.FP32);
             DeviceBuffer x = cuda.floats(8, "x"); DeviceBuffer y = cuda.floats(5, "y")) {
            l.apply(x.pointer(), 2, y.pointer());
            l.apply(x.at(4), 2, y.pointer());
        }
        assertEquals(List.of("gemm.gemm_f32 argument 3: needs 24 bytes, its buffer has 20 from there",
                "gemm.gemm_f32 argument 0: needs 32 bytes, its buffer has 28 from there",
                "gemm.gemm_f32 argument 3: needs 24 bytes, its buffer has 20 from there"), DryRunExtents.violations(cuda.launches()));
    }
}
