package lowbit.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantizationRecipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MemoryEstimateTest {
    private static final long GB = 1L << 30;

    /** SmolLM2-135M's shape: 30 layers, hidden 576, MLP 1536, 9 heads of 64 (3 KV heads), vocabulary 49152, tied. */
    private static ModelConfig smolLm2() {
        return new ModelConfig(ModelConfig.Family.LLAMA, "llama", 49152, 576, 1536, 30, 9, 3, 64, 8192, 100000, 1e-5,
                true, false, false, "silu", true, 576, 1, 2);
    }

    @Test
    void weightsAreEveryCheckpointTensorInFloat32PlusLmHeadsPackedCopyOfTheTiedEmbedding() {
        try (Checkpoint ckpt = Checkpoints.open("default", null)) {
            long floats = 0;
            for (TensorInfo t : ckpt.tensors().values()) floats += t.elements();
            ModelConfig cfg = ckpt.config();
            floats += (long) cfg.vocabSize() * cfg.hiddenSize();
            long estimated = MemoryEstimate.of("ppl", cfg, null, 2).parts().get("weights (float32)");
            // the estimate counts no biases and the norms by their shape: equal to 0.1%
            assertEquals(4.0 * floats, estimated, 4e-3 * floats, "float32 weights of " + ckpt.source());
        }
    }

    @Test
    void gptqKeepsEveryCalibrationWindowsBlockInputAndOneDoubleHessianPerDistinctInput() {
        MemoryEstimate e = MemoryEstimate.of("ppl", smolLm2(), QuantizationRecipe.of("gptq:w4g128"), 2048);
        // 128 windows x 2048 tokens x 576 floats, the GPTQ protocol's calibration
        assertEquals(128L * 2048 * 576 * 4, e.parts().get("calibration activations"));
        // attn_in and mlp_in 576^2, attn_out (9 x 64)^2, mlp_act 1536^2, in doubles
        assertEquals(8L * (576 * 576 + 576 * 576 + 576 * 576 + 1536 * 1536), e.parts().get("GPTQ Hessians (float64)"));
        assertEquals("a smaller --nsamples or --calib-seqlen", e.remedy());
    }

    @Test
    void awqKeepsFourHiddenAndTwoIntermediateFloatsPerCalibrationTokenAt512Tokens() {
        MemoryEstimate e = MemoryEstimate.of("ppl", smolLm2(), QuantizationRecipe.of("awq:w4g128"), 2048);
        assertEquals(128L * 512 * (4 * 576 + 2 * 1536) * 4, e.parts().get("AWQ block activations"));
    }

    @Test
    void rtnCalibratesNothing() {
        MemoryEstimate e = MemoryEstimate.of("ppl", smolLm2(), QuantizationRecipe.of("rtn:w4g128"), 2048);
        assertNull(e.parts().get("calibration activations"));
        assertEquals("a smaller --seqlen", e.remedy());
    }

    @Test
    void hundredThousandSamplesAreRefusedNamingTheEstimateAndTheAvailableMemory() {
        MemoryEstimate e = MemoryEstimate.of("ppl", smolLm2(),
                QuantizationRecipe.of("gptq:w4g128").withCalibration(new QuantizationRecipe.Calibration("c4", 100_000, 0, 0,
                        lowbit.calibration.CalibrationSampler.Mode.DOCUMENTS)), 2048);
        var err = assertThrows(MemoryBudget.DoesNotFit.class, () -> new MemoryBudget(16 * GB, 0).plan(e));
        // 100000 x 2048 x 576 x 4 bytes = 471.86 GB of block inputs alone
        assertTrue(err.getMessage().startsWith("ppl needs about 472."), err.getMessage());
        assertTrue(err.getMessage().contains("calibration activations 471.86 GB"), err.getMessage());
        assertTrue(err.getMessage().contains("17.18 GB is available: free memory"), err.getMessage());
        assertTrue(err.getMessage().endsWith("use a smaller --nsamples or --calib-seqlen"), err.getMessage());
    }

    @Test
    void heapIsTheEstimateWithHeadroomAndWarnsWhenOnlyTheEstimateFits() {
        MemoryEstimate oneGb = new MemoryEstimate("ppl", java.util.Map.of("weights (float32)", GB), "a smaller --seqlen");
        MemoryBudget.Plan roomy = new MemoryBudget(8 * GB, 0).plan(oneGb);
        assertEquals(GB + GB / 2 + 512L * 1024 * 1024, roomy.heapBytes());
        assertEquals("-Xmx2048m", roomy.javaOption());
        assertNull(roomy.warning());

        MemoryBudget.Plan tight = new MemoryBudget(GB + GB / 4, 0).plan(oneGb);
        assertEquals(GB + GB / 4, tight.heapBytes(), "capped at what is available");
        assertTrue(tight.warning().startsWith("warning: ppl needs about 1.07 GB of heap and 1.34 GB is available"), tight.warning());

        MemoryBudget.Plan fixed = new MemoryBudget(8 * GB, 4 * GB).plan(oneGb);
        assertEquals("", fixed.javaOption(), "the user's -Xmx stands");
        var err = assertThrows(MemoryBudget.DoesNotFit.class, () -> new MemoryBudget(8 * GB, GB / 2).plan(oneGb));
        assertTrue(err.getMessage().endsWith("-Xmx gives it 0.54 GB: raise -Xmx in LOWBIT_JAVA_OPTS or use a smaller --seqlen"),
                err.getMessage());
    }

    @Test
    void aContainersMemoryMaxLimitsWhatIsAvailable(@TempDir Path dir) throws Exception {
        Files.writeString(dir.resolve("memory.max"), "4294967296\n");
        Files.writeString(dir.resolve("memory.current"), "1073741824\n");
        assertEquals(3 * GB, MemoryBudget.cgroupRoom(dir));
        Files.writeString(dir.resolve("memory.max"), "max\n");
        assertEquals(Long.MAX_VALUE, MemoryBudget.cgroupRoom(dir));
        assertEquals(Long.MAX_VALUE, MemoryBudget.cgroupRoom(dir.resolve("absent")));
    }

    @Test
    void memAvailableIsReadInKilobytes(@TempDir Path dir) throws Exception {
        Path meminfo = dir.resolve("meminfo");
        Files.writeString(meminfo, "MemTotal:       24576000 kB\nMemFree:         1000000 kB\nMemAvailable:   12345678 kB\n");
        assertEquals(12345678L * 1024, MemoryBudget.memAvailable(meminfo));
        Files.writeString(meminfo, "MemTotal:       24576000 kB\n");
        var err = assertThrows(IllegalStateException.class, () -> MemoryBudget.memAvailable(meminfo));
        assertEquals(meminfo + ": no MemAvailable line", err.getMessage());
    }
}
