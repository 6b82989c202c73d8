package lowbit.model.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.cuda.Cuda;
import lowbit.cuda.DryRunExtents;
import lowbit.cuda.Kernel;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * DeviceModel's host code on the dry run ({@link Cuda#dryRun()}): upload, nll and logProbs of the tiny checkpoints
 * (resources/tiny: GQA, tied and untied, Qwen2's biases, Qwen3's q/k norms) in fp32 and bf16, and with RTN codes kept
 * packed plus runtime activation and KV quantization. Every launch passes its kernel's PTX signature and limits, and
 * every pointer falls in a live buffer. The dry run computes nothing, so the log-probs are zeros: the test asserts that
 * no launch was refused, that every kernel of the path was launched, and the counts that follow from the model's shape.
 */
public class DeviceModelDryRunTest {
    @ParameterizedTest
    @CsvSource({"llama,FP32", "llama,BF16", "llama-tied-bf16,FP32", "smollm-like-f16,BF16", "qwen2,FP32", "qwen2,BF16", "qwen3,FP32",
            "qwen3,BF16"})
    void forwardPassLaunchesEveryKernel(String name, WeightFormat format) throws Exception {
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny(name)); Transformer cpu = Checkpoints.load(c, 1)) {
            Cuda cuda = Cuda.dryRun();
            int T = 64, layers = cpu.config().numLayers();
            int[] w = DeviceModelGpuTest.window(T, cpu.config().vocabSize(), 5);
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, null, RuntimeQuantization.NONE, format)) {
                assertTrue(gpu.describe().contains("dry run"), gpu.describe());
                assertEquals(T - 1, gpu.nll(w).length);
                List<Kernel.Launch> nll = cuda.launches();
                float[][] lp = gpu.logProbs(w);
                assertEquals(T, lp.length);
                assertEquals(cpu.config().vocabSize(), lp[0].length);
                List<Kernel.Launch> all = cuda.launches();
                DryRunExtents.assertFit(all);
                String gemm = format == WeightFormat.FP32 ? "gemm.gemm_f32" : "gemm_tc.gemm_bf16_tc";   // 64 rows: tensor cores in bf16
                Set<String> expected = new TreeSet<>(Set.of(format == WeightFormat.FP32 ? "forward.embed_rows" : "forward.embed_rows_bf16",
                        "forward.rms_norm_rows", "forward.rope_rows", "forward.silu_mul", "elementwise.add_inplace", "attention.attention_causal",
                        "logits.nll_rows", "logits.log_softmax_rows", gemm));
                if (format == WeightFormat.BF16) expected.add("gemm.gemm_bf16");   // lm_head on 63 rows of the nll
                assertEquals(expected, kernels(all));
                int norms = layers * (cpu.config().qkNorm() ? 4 : 2) + 1;
                assertEquals(norms, count(nll, "forward.rms_norm_rows"), "norms of one forward pass");
                assertEquals(layers, count(nll, "attention.attention_causal"));
                assertEquals(2 * layers, count(nll, "forward.rope_rows"), "queries and keys");
                assertEquals(7 * layers + 1, count(nll, "gemm"), "7 linears a block and lm_head");
                if (cpu.config().attentionBias())
                    for (Kernel.Launch l : all)
                        if (l.kernel().startsWith("gemm") && l.args().get(5).equals(cpu.config().kvDim())) assertNotNull(l.args().get(2),
                                "k and v carry their biases");
            }
            assertEquals(0, cuda.allocatedBytes(), "everything freed");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"rtn:w4g32a8+kv4", "rtn:w4g32"})
    void packedCodesAndRuntimeQuantization(String spec) throws Exception {
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny("llama")); Transformer cpu = Checkpoints.load(c, 1)) {
            QuantizationRecipe.Outcome o = QuantizationRecipe.of(spec).apply(cpu, null, Progress.NONE);
            Cuda cuda = Cuda.dryRun();
            int layers = cpu.config().numLayers();
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, o.model(), o.runtime(), WeightFormat.FP32)) {
                assertTrue(gpu.describe().contains((7 * layers) + " linears as packed codes"), gpu.describe());
                gpu.nll(DeviceModelGpuTest.window(64, cpu.config().vocabSize(), 1));
                gpu.logProbs(DeviceModelGpuTest.window(3, cpu.config().vocabSize(), 2));   // 3 rows: the GEMV kernel
            }
            List<Kernel.Launch> all = cuda.launches();
            DryRunExtents.assertFit(all);
            Set<String> k = kernels(all);
            assertTrue(k.contains("dequant_gemm.dq_gemm_b4"), k.toString());
            assertTrue(k.contains("dequant_gemm.dq_gemv4_b4"), k.toString());
            assertTrue(k.contains("gemm.gemm_f32"), "lm_head stays dense: " + k);
            boolean runtime = spec.contains("a8");
            assertEquals(runtime ? 2 * 7 * layers : 0, count(all, "quant.act_per_token"), "every block linear's input, two passes");
            assertEquals(runtime ? 2 * 2 * layers : 0, count(all, "quant.kv_groups"), "keys and values, two passes");
            assertEquals(0, cuda.allocatedBytes());
        }
    }

    /**
     * A window longer than {@link DeviceModel#LOGIT_ROWS} makes logits in chunks, at offsets into the targets and NLL
     * buffers (checked against their bounds by the dry run), after the workspace grew from a shorter window.
     */
    @ParameterizedTest
    @CsvSource({"qwen3,FP32", "llama,BF16"})
    void longWindowsMakeLogitsInChunks(String name, WeightFormat format) throws Exception {
        try (Checkpoint c = Checkpoints.open(DeviceModelRefusalTest.tiny(name)); Transformer cpu = Checkpoints.load(c, 1)) {
            Cuda cuda = Cuda.dryRun();
            int V = cpu.config().vocabSize(), T = 2 * DeviceModel.LOGIT_ROWS + 88;
            try (DeviceModel gpu = DeviceModel.upload(cuda, cpu, null, RuntimeQuantization.NONE, format)) {
                gpu.nll(DeviceModelGpuTest.window(16, V, 3));
                int before = cuda.launches().size();
                assertEquals(T - 1, gpu.nll(DeviceModelGpuTest.window(T, V, 4)).length);
                gpu.logProbs(DeviceModelGpuTest.window(T, V, 5), (row, t) -> {});
                DryRunExtents.assertFit(cuda.launches());
                List<Kernel.Launch> l = cuda.launches().subList(before, cuda.launches().size());
                assertEquals(List.of(256, 256, 87), l.stream().filter(x -> x.kernel().equals("logits.nll_rows")).map(x -> x.args().get(3)).toList());
                assertEquals(List.of(256, 256, 88),
                        l.stream().filter(x -> x.kernel().equals("logits.log_softmax_rows")).map(x -> x.args().get(1)).toList());
                assertEquals((T + ForwardKernels.ATT_Q - 1) / ForwardKernels.ATT_Q,
                        l.stream().filter(x -> x.kernel().equals("attention.attention_causal")).findFirst().orElseThrow().grid().gx());
            }
            assertEquals(0, cuda.allocatedBytes());
        }
    }

    private static Set<String> kernels(List<Kernel.Launch> launches) {
        return launches.stream().map(Kernel.Launch::kernel).collect(Collectors.toCollection(TreeSet::new));
    }

    private static long count(List<Kernel.Launch> launches, String prefix) {
        return launches.stream().filter(l -> l.kernel().startsWith(prefix)).count();
    }
}
