package lowbit.checkpoint.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.gguf.GgmlType;
import org.junit.jupiter.api.Test;

/**
 * The per-tensor types against llama-quantize's own choices for the default model. The fixture types.tsv lists
 * every tensor of the model (GGUF name and dims) with the type llama-quantize gave it under each file type,
 * without and with an importance matrix. Regenerate: lib/src/test/resources/gguf/export/verify_llamacpp.sh WORK,
 * then make_type_fixture.py WORK > types.tsv (both next to the fixture).
 */
class GgufTypePlanTest {
    private static final GgufTypePlan.Model DEFAULT = new GgufTypePlan.Model("llama", 30, 9, 3);

    record Fixture(List<GgufTypePlan.Tensor> tensors, Map<String, Map<String, GgmlType>> columns) {}

    static Fixture fixture() throws IOException {
        String text;
        try (InputStream in = GgufTypePlanTest.class.getResourceAsStream("/gguf/export/types.tsv")) {
            text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        String[] lines = text.split("\n");
        String[] header = lines[0].split("\t");
        Map<String, Map<String, GgmlType>> columns = new LinkedHashMap<>();
        for (int c = 2; c < header.length; c++) columns.put(header[c], new LinkedHashMap<>());
        List<GgufTypePlan.Tensor> tensors = new ArrayList<>();
        for (int i = 1; i < lines.length; i++) {
            String[] f = lines[i].split("\t");
            String[] d = f[1].split("x");
            long[] dims = new long[d.length];
            for (int k = 0; k < d.length; k++) dims[k] = Long.parseLong(d[k]);
            tensors.add(new GgufTypePlan.Tensor(f[0], dims, GgmlType.F32));
            for (int c = 2; c < header.length; c++) columns.get(header[c]).put(f[0], GgmlType.valueOf(f[c]));
        }
        return new Fixture(tensors, columns);
    }

    @Test
    void everyPresetChoosesLlamaQuantizesTypesForTheDefaultModel() throws IOException {
        Fixture fx = fixture();
        assertEquals(272, fx.tensors().size());
        int checked = 0;
        for (var column : fx.columns().entrySet()) {
            boolean imatrix = column.getKey().endsWith("+imatrix");
            GgufPreset preset = GgufPreset.parse(column.getKey().replace("+imatrix", ""));
            GgufTypePlan plan = GgufTypePlan.of(preset, DEFAULT, fx.tensors(), List.of(), Map.of(), imatrix);
            Map<String, GgmlType> ours = new LinkedHashMap<>();
            for (GgufTypePlan.Entry e : plan.entries()) ours.put(e.name(), e.type());
            assertEquals(column.getValue(), ours, column.getKey());
            checked++;
        }
        assertTrue(checked >= 20, "fixture columns: " + fx.columns().keySet());
    }

    @Test
    void q4KmFallsBackWhereLlamaQuantizeReportsIt() throws IOException {
        Fixture fx = fixture();
        GgufTypePlan plan = GgufTypePlan.of(GgufPreset.Q4_K_M, DEFAULT, fx.tensors(), List.of(), Map.of(), false);
        // llama-quantize: "180 of 272 tensor(s) required fallback quantization" (hidden 576 is not a multiple of 256)
        assertEquals(180, plan.fallbacks().size());
        GgufTypePlan.Entry q = plan.entries().stream().filter(e -> e.name().equals("blk.3.attn_q.weight")).findFirst().orElseThrow();
        assertEquals(GgmlType.Q4_K, q.wanted());
        assertEquals(GgmlType.Q5_0, q.type());
        assertEquals("blk.3.attn_q.weight: row length 576 is not a multiple of Q4_K's block of 256, falling back to Q5_0", q.fallbackMessage());
        // ffn_down rows are 1536 = 6 x 256: no fallback
        assertTrue(plan.entries().stream().filter(e -> e.name().contains("ffn_down")).noneMatch(GgufTypePlan.Entry::fellBack));
    }

    @Test
    void fallbackTypesFollowTensorTypeFallback() {
        assertEquals(GgmlType.Q4_0, GgufTypePlan.fallback(GgmlType.Q2_K, 576));
        assertEquals(GgmlType.Q4_0, GgufTypePlan.fallback(GgmlType.Q3_K, 576));
        assertEquals(GgmlType.Q5_0, GgufTypePlan.fallback(GgmlType.Q4_K, 576));
        assertEquals(GgmlType.Q5_1, GgufTypePlan.fallback(GgmlType.Q5_K, 576));
        assertEquals(GgmlType.Q8_0, GgufTypePlan.fallback(GgmlType.Q6_K, 576));
        assertEquals(GgmlType.Q4_K, GgufTypePlan.fallback(GgmlType.Q4_K, 1536));
        // neither the type nor its fallback divides 100: F16
        assertEquals(GgmlType.F16, GgufTypePlan.fallback(GgmlType.Q4_K, 100));
        assertEquals(GgmlType.F16, GgufTypePlan.fallback(GgmlType.Q8_0, 48));
    }

    /** A 4-layer model whose rows are multiples of 256, so that no fallback hides a rule. */
    private static List<GgufTypePlan.Tensor> small() {
        List<GgufTypePlan.Tensor> t = new ArrayList<>();
        t.add(new GgufTypePlan.Tensor("token_embd.weight", new long[] {256, 1000}, GgmlType.F32));
        t.add(new GgufTypePlan.Tensor("output.weight", new long[] {256, 1000}, GgmlType.F32));
        for (int l = 0; l < 4; l++) {
            t.add(new GgufTypePlan.Tensor("blk." + l + ".attn_v.weight", new long[] {256, 256}, GgmlType.F32));
            t.add(new GgufTypePlan.Tensor("blk." + l + ".attn_norm.weight", new long[] {256}, GgmlType.F32));
        }
        return t;
    }

    private static Map<String, GgmlType> types(GgufTypePlan plan) {
        Map<String, GgmlType> m = new LinkedHashMap<>();
        for (GgufTypePlan.Entry e : plan.entries()) m.put(e.name(), e.type());
        return m;
    }

    @Test
    void aTensorTypePatternWinsAndDoesNotAdvanceTheRulesCounters() {
        GgufTypePlan.Model model = new GgufTypePlan.Model("llama", 4, 4, 4);
        // Q3_K_M: the first two attn_v tensors the rules see get Q5_K, the rest Q4_K
        Map<String, GgmlType> plain = types(GgufTypePlan.of(GgufPreset.Q3_K_M, model, small(), List.of(), Map.of(), false));
        assertEquals(List.of(GgmlType.Q5_K, GgmlType.Q5_K, GgmlType.Q4_K, GgmlType.Q4_K),
                List.of(plain.get("blk.0.attn_v.weight"), plain.get("blk.1.attn_v.weight"), plain.get("blk.2.attn_v.weight"), plain.get("blk.3.attn_v.weight")));
        assertEquals(GgmlType.Q6_K, plain.get("output.weight"));
        assertEquals(GgmlType.Q3_K, plain.get("token_embd.weight"));
        assertEquals(GgmlType.F32, plain.get("blk.0.attn_norm.weight"));
        // the pattern is lower-cased as llama-quantize does, and blk.0 no longer counts: blk.2 is the second the rules see
        var override = GgufTypePlan.TypeOverride.parse("BLK\\.0\\.ATTN_V=q8_0");
        Map<String, GgmlType> over = types(GgufTypePlan.of(GgufPreset.Q3_K_M, model, small(), List.of(override), Map.of(), false));
        assertEquals(List.of(GgmlType.Q8_0, GgmlType.Q5_K, GgmlType.Q5_K, GgmlType.Q4_K),
                List.of(over.get("blk.0.attn_v.weight"), over.get("blk.1.attn_v.weight"), over.get("blk.2.attn_v.weight"), over.get("blk.3.attn_v.weight")));
    }

    @Test
    void tiedEmbeddingsAreQuantizedAsTheOutput() {
        List<GgufTypePlan.Tensor> tied = new ArrayList<>(small());
        tied.removeIf(t -> t.name().equals("output.weight"));
        Map<String, GgmlType> m = types(GgufTypePlan.of(GgufPreset.Q4_0, new GgufTypePlan.Model("llama", 4, 4, 4), tied, List.of(), Map.of(), false));
        assertEquals(GgmlType.Q6_K, m.get("token_embd.weight"));
    }

    @Test
    void badInputIsRefusedWithTheOptionNamed() {
        var unknown = assertThrows(IllegalArgumentException.class, () -> GgufPreset.parse("Q4_K_X"));
        assertTrue(unknown.getMessage().contains("--type: unknown type 'Q4_K_X'") && unknown.getMessage().contains("Q4_K_M"), unknown.getMessage());
        var pattern = assertThrows(IllegalArgumentException.class, () -> GgufTypePlan.TypeOverride.parse("attn_(v=Q4_0"));
        assertTrue(pattern.getMessage().startsWith("--tensor-type 'attn_(v=Q4_0': bad pattern"), pattern.getMessage());
        var type = assertThrows(IllegalArgumentException.class, () -> GgufTypePlan.TypeOverride.parse("attn_v=Q9_K"));
        assertTrue(type.getMessage().contains("unknown tensor type 'Q9_K'"), type.getMessage());
        var shape = assertThrows(IllegalArgumentException.class, () -> GgufTypePlan.TypeOverride.parse("attn_v"));
        assertTrue(shape.getMessage().contains("expected PATTERN=TYPE"), shape.getMessage());
        var floats = assertThrows(IllegalArgumentException.class, () -> GgufTypePlan.of(GgufPreset.F16, DEFAULT, small(),
                List.of(GgufTypePlan.TypeOverride.parse("attn_v=Q8_0")), Map.of(), false));
        assertTrue(floats.getMessage().contains("need a quantized --type"), floats.getMessage());
    }
}
