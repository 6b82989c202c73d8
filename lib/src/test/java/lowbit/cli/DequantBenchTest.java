package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import lowbit.cuda.Cuda;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import org.junit.jupiter.api.Test;

/** `bench dequant` without a GPU, and its arithmetic: the peak-bandwidth formula on hand-computed cases. */
class DequantBenchTest {
    @Test
    void peakBandwidthIsDoubleDataRateTimesTheBus() {
        // H100 SXM's driver reports 2,619,000 kHz and 5120 bits: 2 x 2.619e9 x 640 bytes = 3.35232e12 B/s
        assertEquals(3.35232e12, DequantBench.peakBytesPerSecond(2_619_000, 5120), 1);
        // 1000 kHz on a 64-bit bus: 2 x 1e6 x 8 = 1.6e7 B/s
        assertEquals(1.6e7, DequantBench.peakBytesPerSecond(1000, 64), 1e-6);
    }

    @Test
    void randomWeightsAreValidOnTheGrid() {
        QuantizedWeight w = DequantBench.randomWeight(3, 300, QuantConfig.group(3, 128), new Random(1));
        assertEquals(9, w.scales().length);
        for (float z : w.zeros()) assertTrue(z >= 0 && z <= 7 && z == Math.rint(z), "zero " + z);
        for (float s : w.scales()) assertEquals(s, Float.float16ToFloat(Float.floatToFloat16(s)), "scale " + s + " is fp16");
    }

    @Test
    void withoutAGpuItExits2WithOneLine() {
        String reason = Cuda.unavailableReason();
        CliRun bad = CliRun.of("bench", "dequant", "--bits", "5");
        assertEquals("lowbit: --bits takes 2, 3, 4 or 8, got 5", bad.err().strip());
        if (reason != null) {
            CliRun run = CliRun.of("bench", "dequant", "--rows", "1");
            assertEquals(2, run.exit());
            assertEquals("lowbit: " + reason, run.err().strip());
        }
    }
}
