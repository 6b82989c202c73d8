package lowbit.results;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.cuda.Device;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Test;

class RowTest {
    enum Method { GPTQ }

    @Test
    void keyIsSha256OfSortedCompactJson() {
        Map<String, Object> inner = new LinkedHashMap<>();
        inner.put("y", 2.5);
        inner.put("x", "s");
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("b", 1);
        params.put("a", inner);
        assertEquals("{\"a\":{\"x\":\"s\",\"y\":2.5},\"b\":1}", Row.canonicalJson(params));
        // printf '%s' '{"a":{"x":"s","y":2.5},"b":1}' | sha256sum
        assertEquals("9087fb455b856448b70248757ebd524e5933253521e350c434ad26c587844d57", Row.key(params));
    }

    @Test
    void keyIgnoresMapOrderAndIntVersusLongButNotIntVersusDouble() {
        Map<String, Object> a = new LinkedHashMap<>();
        a.put("bits", 4);
        a.put("method", "gptq");
        Map<String, Object> b = new LinkedHashMap<>();
        b.put("method", "gptq");
        b.put("bits", 4L);
        assertEquals(Row.key(a), Row.key(b));
        assertNotEquals(Row.key(a), Row.key(Map.of("method", "gptq", "bits", 4.0)));
        assertNotEquals(Row.key(a), Row.key(Map.of("method", "gptq", "bits", 3)));
    }

    @Test
    void valuesAreNormalized() {
        Row r = Row.of("k")
                .with("i", 3)
                .with("f", 0.5f)
                .with("m", Method.GPTQ)
                .with("arr", new int[] {1, 2})
                .with("d", new double[] {0.25})
                .with("nested", Map.of("s", (short) 7));
        assertEquals(3L, r.get("i"));
        assertEquals(0.5, r.get("f"));
        assertEquals("GPTQ", r.get("m"));
        assertEquals(List.of(1L, 2L), r.get("arr"));
        assertEquals(List.of(0.25), r.get("d"));
        assertEquals(7L, r.at("nested.s"));
        assertNull(r.at("nested.missing"));
        assertNull(r.at("i.deeper"));
    }

    @Test
    void refusesWhatJsonCannotHold() {
        Row r = Row.of("k");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> r.with("params", Map.of("when", new Object())));
        assertTrue(e.getMessage().contains("params.when"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> r.with("m", Map.of(1, "x")));
        assertThrows(IllegalArgumentException.class, () -> r.with("key", "x"));
        assertThrows(IllegalArgumentException.class, () -> r.with("", "x"));
        assertThrows(IllegalArgumentException.class, () -> Row.of(" "));
    }

    @Test
    void withReplacesAndKeepsOrder() {
        Row r = Row.of("k").with("a", 1).with("b", 2).with("a", 3);
        assertEquals(List.of("a", "b"), List.copyOf(r.fields().keySet()));
        assertEquals(3L, r.get("a"));
    }

    @Test
    void provenance() {
        Row r = Row.of("k").withProvenance();
        CodeVersion cv = CodeVersion.current();
        assertEquals(cv.commit(), r.at("code_version.commit"));
        assertEquals(cv.dirty(), r.at("code_version.dirty"));
        assertEquals(Runtime.version().toString(), r.get("java_version"));
        assertEquals("cpu-java-vector", r.get("backend"));
        assertEquals("cpu", r.get("device"));
        assertEquals("fp32", r.get("weights"));
        Instant t = Instant.parse((String) r.get("timestamp"));
        assertTrue(Math.abs(t.toEpochMilli() - System.currentTimeMillis()) < 60_000);
        assertTrue(((String) r.get("timestamp")).endsWith("Z"));
    }

    @Test
    void provenanceOfAModelRowCountsItsThreadsAndAGpuRowSaysWhichGpu() {
        Row cpu = Row.of("k").with("threads", 3).withProvenance();
        assertTrue(((String) cpu.get("device_description")).startsWith("java-vector 3 threads, "), cpu.toString());
        Backend h200 = new Backend(Device.CUDA, WeightFormat.BF16, "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0)");
        Row gpu = Row.of("k").with("threads", 3).withProvenance(h200);
        assertEquals("cuda-jcuda", gpu.get("backend"));
        assertEquals("cuda", gpu.get("device"));
        assertEquals("bf16", gpu.get("weights"));
        assertEquals("NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0)", gpu.get("device_description"));
        assertEquals(3L, gpu.get("threads"));
    }
}
