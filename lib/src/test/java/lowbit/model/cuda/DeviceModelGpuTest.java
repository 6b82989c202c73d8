package lowbit.model.cuda;

import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.cuda.GpuAvailable;
import lowbit.quant.PackedLinear;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.Evaluator;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The whole forward pass on the GPU ({@link DeviceModel}) against the CPU's {@link Transformer} on the same weights: the
 * tiny checkpoints of every Llama-family shape (resources/tiny/README.md: GQA, tied and untied lm_head, Qwen2's q/k/v
 * biases, Qwen3's q/k norms and head_dim apart from hidden/heads) and the real stories260K. Log-probs to 1e-4 in fp32
 * and within 2e-2 relative (of max(1, |log-prob|)) with bf16 weights; NLL to 1e-4 relative per token; perplexity through
 * the evaluator to 1e-4 relative.
 */
@Tag("gpu")
public class DeviceModelGpuTest {
    public static int[] window(int length, int vocab, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] w = new int[length];
        for (int i = 0; i < length; i++) w[i] = r.nextInt(vocab);
        return w;
    }

    /** Largest |CPU - GPU| over every log-prob of the window, each divided by max(1, |CPU|) when {@code relative}. */
    public static double logProbError(Transformer cpu, DeviceModel gpu, int[] window, boolean relative) {
        float[][] expected = cpu.logProbs(window);
        double[] worst = {0};
        gpu.logProbs(window, (row, t) -> {
            for (int j = 0; j < row.length; j++) {
                double e = Math.abs(expected[t][j] - row[j]);
                worst[0] = Math.max(worst[0], relative ? e / Math.max(1, Math.abs(expected[t][j])) : e);
            }
        });
        return worst[0];
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama-tied-bf16", "smollm-like-f16", "qwen2", "qwen3"})
    void tinyCheckpointsMatchTheCpu(String name) throws Exception {
        Cuda cuda = GpuAvailable.require();
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny(name)); Transformer cpu = Checkpoints.load(c, 1)) {
            int[] w = window(64, cpu.config().vocabSize(), name.hashCode());
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, null, RuntimeQuantization.NONE, WeightFormat.FP32)) {
                double err = logProbError(cpu, gpu, w, false);
                assertTrue(err <= 1e-4, name + " fp32: log-probs differ from the CPU's by up to " + err);
                double[] expected = cpu.nll(w), got = gpu.nll(w);
                for (int t = 0; t < expected.length; t++)
                    assertEquals(expected[t], got[t], 1e-4 * Math.max(1, expected[t]), name + " fp32: NLL at position " + t);
            }
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, null, RuntimeQuantization.NONE, WeightFormat.BF16)) {
                double err = logProbError(cpu, gpu, w, true);
                assertTrue(err <= 2e-2, name + " bf16: log-probs differ from the CPU's fp32 by up to " + err + " relative");
            }
        }
    }

    private static String stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        return bin.toString();
    }

    /** 300 tokens: several 32-query and 64-key attention tiles, two chunks of 256 logit rows. */
    @Test
    void stories260kMatchesTheCpu() {
        Cuda cuda = GpuAvailable.require();
        try (Checkpoint c = Checkpoints.open(stories(), null); Transformer cpu = Checkpoints.load(c, 2);
             DeviceModel gpu = DeviceModel.upload(cuda, cpu, null, RuntimeQuantization.NONE, WeightFormat.FP32)) {
            int[] w = window(300, cpu.config().vocabSize(), 5);
            double err = logProbError(cpu, gpu, w, false);
            assertTrue(err <= 1e-4, "stories260K fp32: log-probs differ from the CPU's by up to " + err);
        }
    }

    @Test
    void perplexityThroughTheEvaluatorEqualsTheCpus() {
        GpuAvailable.require();
        try (EvaluatedModel m = EvaluatedModel.load(Checkpoints.open(stories(), null), 2)) {
            Evaluator.Request req = new Evaluator.Request("wikitext2", 256, 4);
            Evaluator.Report cpu = Evaluator.perplexity(m, req, Evaluator.Options.of(Progress.NONE));
            Evaluator.Report gpu = Evaluator.perplexity(m, req, Evaluator.Options.of(Progress.NONE).withDevice(Device.CUDA, WeightFormat.FP32));
            assertEquals(cpu.ppl(), gpu.ppl(), 1e-4 * cpu.ppl(), "wikitext2 perplexity, 4 windows of 256");
            assertEquals("cuda", gpu.fields().get("device"));
            assertEquals("fp32", gpu.fields().get("weights"));
        }
    }

    /**
     * RTN codes kept packed on the GPU (gpuquant's PackedLinear) against the CPU's dequantized weights, which are the same
     * numbers: 1e-4. With per-token 8-bit activations and a 4-bit KV cache, a value that lands on a rounding tie may round
     * the other way when the GPU's float scale differs from the CPU's double one by an ulp, moving that one value a step;
     * such flips are rare and small, hence 1e-3 there.
     */
    @ParameterizedTest
    @ValueSource(strings = {"rtn:w4g32", "rtn:w4g32a8+kv4"})
    void quantizedModelsMatchTheCpu(String spec) throws Exception {
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny("llama")); Transformer cpu = Checkpoints.load(c, 1)) {
            QuantizationRecipe.Outcome o = QuantizationRecipe.of(spec).apply(cpu, null, Progress.NONE);
            assertEquals(spec.contains("a8"), o.runtime().any(), spec + ": the runtime quantization the GPU must apply");
            Cuda cuda = GpuAvailable.require();
            int[] w = window(64, cpu.config().vocabSize(), 9);
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, o.model(), o.runtime(), WeightFormat.FP32)) {
                assertTrue(gpu.describe().contains("packed codes"), gpu.describe());
                double err = logProbError(cpu, gpu, w, false);
                double tol = o.runtime().any() ? 1e-3 : 1e-4;
                assertTrue(err <= tol, spec + ": log-probs differ from the CPU's by up to " + err);
            }
        }
    }
}
