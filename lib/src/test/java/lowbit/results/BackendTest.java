package lowbit.results;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jdk.incubator.vector.FloatVector;
import lowbit.cuda.Cuda;
import lowbit.cuda.CudaException;
import lowbit.cuda.Device;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Test;

/** The backend every result records, and the keys that keep results of different backends apart. */
class BackendTest {
    private static final String H200 = "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0)";

    @Test
    void cpuFp32KeepsTheLabelAndKeysOfEveryEarlierResult() {
        Backend cpu = Backend.of(Device.CPU, WeightFormat.FP32, 2);
        assertEquals("cpu-java-vector", cpu.label());
        assertEquals("cpu-java-vector fp32", cpu.text());
        assertEquals("java-vector 2 threads, " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors", cpu.description());
        assertTrue(cpu.isReference());
        // a journal key and a store key written before the GPU path are the same experiment's now
        assertEquals("abc|wikitext2|2048", cpu.key("abc|wikitext2|2048"));
        Map<String, Object> params = new LinkedHashMap<>(Map.of("method", "gptq", "bits", 4));
        assertEquals(Row.key(params), Row.key(cpu.parameters(params)));
        assertEquals("java-vector 1 thread, " + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors",
                Backend.of(Device.CPU, WeightFormat.FP32, 1).description());
    }

    @Test
    void otherBackendsAreOtherExperiments() {
        Backend cpuBf16 = Backend.of(Device.CPU, WeightFormat.BF16, 2);
        Backend gpu = new Backend(Device.CUDA, WeightFormat.FP32, H200);
        Backend gpuBf16 = new Backend(Device.CUDA, WeightFormat.BF16, H200);
        assertEquals("cpu-java-vector bf16", cpuBf16.text());
        assertEquals("cuda " + H200 + " fp32", gpu.text());
        assertEquals("cuda-jcuda", gpu.label());
        assertEquals("cpu-java-vector", cpuBf16.label());
        // the weights are in the model's key; the device is the backend's
        assertEquals("k", cpuBf16.key("k"));
        assertEquals("k|cuda", gpu.key("k"));
        assertEquals("k|cuda", gpuBf16.key("k"));
        Map<String, Object> params = Map.of("method", "rtn", "bits", 4);
        List<String> keys = List.of(Row.key(params), Row.key(cpuBf16.parameters(params)), Row.key(gpu.parameters(params)),
                Row.key(gpuBf16.parameters(params)));
        assertEquals(4, keys.stream().distinct().count(), keys.toString());
        assertEquals(Map.of("method", "rtn", "bits", 4, "device", "cuda", "weights", "bf16"), gpuBf16.parameters(params));
        // a device the parameters already name the same way is accepted, another one refused
        assertEquals(gpu.parameters(params), gpu.parameters(gpu.parameters(params)));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> gpu.parameters(Map.of("method", "rtn", "device", "cpu")));
        assertEquals("the experiment's parameter device=cpu contradicts the backend's cuda", e.getMessage());
    }

    @Test
    void provenanceFieldsAndTheNotebookLine() {
        Backend gpu = new Backend(Device.CUDA, WeightFormat.BF16, H200);
        Map<String, Object> expected = new LinkedHashMap<>();
        expected.put("backend", "cuda-jcuda");
        expected.put("device", "cuda");
        expected.put("weights", "bf16");
        expected.put("device_description", H200);
        assertEquals(expected, gpu.provenance());
        assertEquals(List.copyOf(expected.keySet()), List.copyOf(gpu.provenance().keySet()));
        assertEquals("cuda " + H200 + " bf16", gpu.toString());
    }

    @Test
    void aGpuBackendDescribesTheGpuOrSaysWhyThereIsNone() {
        String reason = Cuda.unavailableReason();
        if (reason == null) {
            Backend b = Backend.of(Device.CUDA, WeightFormat.FP32);
            assertEquals(Cuda.get().describe(), b.description());
            assertNotEquals(Backend.of(Device.CPU, WeightFormat.FP32).key("k"), b.key("k"));
        } else {
            assertEquals(reason, assertThrows(CudaException.class, () -> Backend.of(Device.CUDA, WeightFormat.FP32)).getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> Backend.of(Device.CPU, WeightFormat.FP32, 0));
    }
}
