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
import lowbit.tensor.WeightFormat;
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

    /** The default model in bf16: its linears and lm_head's tied copy at 2 bytes, the embedding and norms at 4. */
    @Test
    void bf16CountsLinearsAtTwoBytesAndEmbeddingsAndNormsAtFour() {
        try (Checkpoint ckpt = Checkpoints.open("default", null)) {
            ModelConfig cfg = ckpt.config();
            long linear = 0, other = 0;
            for (TensorInfo t : ckpt.tensors().values()) {
                if (t.shape().length == 2 && !t.name().equals("model.embed_tokens.weight")) linear += t.elements();
                else other += t.elements();
            }
            linear += (long) cfg.vocabSize() * cfg.hiddenSize(); // lm_head's packed copy of the tied embedding
            long estimated = MemoryEstimate.of("ppl", cfg, null, 2, WeightFormat.BF16).parts()
                    .get("weights (bf16 linears, float32 embeddings and norms)");
            assertEquals(2.0 * linear + 4.0 * other, estimated, 1e-3 * estimated);
        }
    }

    /**
     * Qwen3-4B (config.json: vocab 151936, hidden 2560, intermediate 9728, 36 layers, 32 heads and 8 KV heads of 128, tied):
     * 3,633,315,840 linear weights and 388,956,160 embedding values. float32 holds 17.64 GB of weights and does not fit in
     * 24 GiB with the heap's headroom (the plan warns); bf16 holds 9.60 GB and fits.
     */
    @Test
    void qwen3FourBillionFitsIn24GbOnlyInBf16() {
        ModelConfig qwen3 = new ModelConfig(ModelConfig.Family.LLAMA, "qwen3", 151936, 2560, 9728, 36, 32, 8, 128, 40960, 1e6, 1e-6,
                true, false, true, "silu", true, 2560, 151643, 151645);
        long linear = 36L * (2 * 2560 * 4096 + 2 * 2560 * 1024 + 3 * 2560 * 9728), embed = 151936L * 2560, norms = 36L * (2 * 2560 + 2 * 128) + 2560;
        assertEquals(3_633_315_840L, linear);
        MemoryEstimate fp32 = MemoryEstimate.of("ppl", qwen3, null, 2048), bf16 = MemoryEstimate.of("ppl", qwen3, null, 2048, WeightFormat.BF16);
        long w32 = fp32.parts().get("weights (float32)"), w16 = bf16.parts().get("weights (bf16 linears, float32 embeddings and norms)");
        // the estimate counts 4 norm vectors of hidden per layer (q/k norms of head_dim are within its rounding)
        assertEquals(4.0 * (linear + 2 * embed + norms), w32, 4e-4 * w32);
        assertEquals(2.0 * (linear + embed) + 4.0 * (embed + norms), w16, 4e-4 * w16);
        MemoryBudget machine = new MemoryBudget(24L * GB, 0);
        assertTrue(machine.plan(fp32).warning() != null, "fp32 Qwen3-4B leaves the collector no headroom in 24 GiB: " + fp32.describe());
        MemoryBudget.Plan plan = machine.plan(bf16);
        assertNull(plan.warning(), "bf16 Qwen3-4B at seqlen 2048: " + bf16.describe());
        System.out.println("Qwen3-4B ppl at seqlen 2048: fp32 " + fp32.describe() + "; bf16 " + bf16.describe() + ", heap " + plan.javaOption());
    }
}
