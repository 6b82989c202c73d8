package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.io.gguf.GgufWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit export gguf` as a user runs it: the types it writes, its fallback report and its one-line errors. */
class ExportGgufCommandTest {
    private static Path model() {
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded (./lowbit setup): " + gguf);
        return gguf;
    }

    @Test
    void aBitsMapWithoutQuantChoosesEachLinearsType(@TempDir Path tmp) throws Exception {
        Path map = Files.writeString(tmp.resolve("bits.json"), """
                {"format": "lowbit-bits-map", "version": 1, "default": {"bits": 4, "group_size": 32},
                 "layers": {"model.layers.0.mlp.down_proj": {"bits": 6}, "model.layers.1.self_attn.q_proj": {"bits": 5},
                            "model.layers.2.self_attn.v_proj": {"bits": 8}, "model.layers.3.mlp.down_proj": {"bits": 3}}}
                """);
        Path out = tmp.resolve("mix.gguf");
        CliRun run = CliRun.of("export", "gguf", "--model", model().toString(), "--bits-map", map.toString(), "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(GgmlType.Q6_K, f.tensor("blk.0.ffn_down.weight").type());
            assertEquals(GgmlType.Q5_0, f.tensor("blk.1.attn_q.weight").type(), "5 bits on rows of 576: Q5_0");
            assertEquals(GgmlType.Q8_0, f.tensor("blk.2.attn_v.weight").type());
            assertEquals(GgmlType.Q3_K, f.tensor("blk.3.ffn_down.weight").type());
            assertEquals(GgmlType.Q4_K, f.tensor("blk.4.ffn_down.weight").type(), "the default 4 bits on rows of 1536");
            assertEquals(GgmlType.Q4_0, f.tensor("blk.4.ffn_up.weight").type(), "the default 4 bits on rows of 576");
            assertEquals(GgmlType.Q8_0, f.tensor("token_embd.weight").type(), "the other tensors by Q8_0's rules");
            var provenance = new com.fasterxml.jackson.databind.ObjectMapper().readTree((String) f.metadata().get("lowbit.provenance"));
            assertEquals(lowbit.io.Hashing.sha256(map), provenance.at("/bits_map/sha256").asText(), provenance.toString());
            assertEquals(lowbit.io.Hashing.sha256(model()), provenance.at("/source_sha256").asText());
        }
        CliRun stray = CliRun.of("export", "gguf", "--model", model().toString(), "--bits-map", map.toString(), "--act-order",
                "--out", tmp.resolve("x.gguf").toString());
        assertEquals(2, stray.exit());
        assertTrue(stray.err().contains("--act-order applies only to quantization"), stray.err());
    }

    @Test
    void q4KmReportsEachFallbackAndWritesTheChosenTypes(@TempDir Path tmp) {
        Path out = tmp.resolve("m.gguf");
        CliRun run = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q4_K_M",
                "--tensor-type", "blk\\.0\\.ffn_down=q8_0", "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        // llama-quantize on this model: "180 of 272 tensor(s) required fallback quantization"; blk.0.ffn_down is now
        // Q8_0 by the pattern (its rows of 1536 fit every type), so the count stays
        assertTrue(run.out().contains("180 fallback(s)"), run.out());
        try (GgufFile f = GgufFile.open(out)) {
            assertEquals(GgmlType.Q8_0, f.tensor("blk.0.ffn_down.weight").type());
            assertEquals(GgmlType.Q6_K, f.tensor("blk.1.ffn_down.weight").type(), "use_more_bits: layer 1 < 30/8");
            assertEquals(GgmlType.Q4_K, f.tensor("blk.4.ffn_down.weight").type());
            assertEquals(GgmlType.Q5_0, f.tensor("blk.4.attn_q.weight").type(), "Q4_K falls back to Q5_0 for rows of 576");
            assertEquals(GgmlType.F32, f.tensor("blk.4.attn_norm.weight").type());
            assertEquals(15L, f.metadata().get("general.file_type"), "LLAMA_FTYPE_MOSTLY_Q4_K_M");
        }
    }

    @Test
    void badOptionsAreOneLineErrorsAndLeaveNoFile(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("m.gguf");
        CliRun type = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q4_K_X", "--out", out.toString());
        assertEquals(2, type.exit());
        assertTrue(type.err().contains("--type: unknown type 'Q4_K_X' (known: F32, F16, BF16, Q8_0"), type.err());
        CliRun pattern = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q4_0", "--tensor-type", "attn_[v=Q8_0",
                "--out", out.toString());
        assertEquals(2, pattern.exit());
        assertTrue(pattern.err().contains("--tensor-type 'attn_[v=Q8_0': bad pattern"), pattern.err());
        CliRun inexact = CliRun.of("export", "gguf", "--model", model().toString(), "--quant", "rtn:w3g32", "--out", out.toString());
        assertEquals(2, inexact.exit());
        assertTrue(inexact.err().contains("is no GGUF type; give --type to re-quantize"), inexact.err());
        assertFalse(Files.exists(out));
        Files.writeString(out, "mine");
        CliRun exists = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q8_0", "--out", out.toString());
        assertEquals(2, exists.exit());
        assertTrue(exists.err().contains(out.toString()), exists.err());
        assertEquals("mine", Files.readString(out));
    }

    /** The imatrix fixture of the imatrix tests (llama-imatrix on the default model, trimmed to 14 tensors). */
    private static Path imatrix() {
        return Path.of("src/test/resources/imatrix/reference.gguf");
    }

    @Test
    void anImatrixSelectsTheImportanceRulesAndAnotherModelsIsRefused(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("m.gguf");
        CliRun run = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q4_0", "--imatrix", imatrix().toString(),
                "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        // with an imatrix llama-quantize gives the first 30/8 = 3 ffn_down tensors of a Q4_0 file Q4_1
        assertTrue(run.out().contains("3 Q4_1"), run.out());

        // the same matrix under names the model does not have
        Path other = tmp.resolve("other.gguf");
        try (GgufFile f = GgufFile.open(imatrix())) {
            GgufWriter w = new GgufWriter().putAll(f.typedMetadata());
            for (GgufTensor t : f.tensors()) {
                byte[] b = new byte[(int) t.byteSize()];
                f.raw(t.name()).get(b);
                w.add(new GgufWriter.Tensor(t.name().replace("blk.0.", "blk.99."), t.type(), t.dims(), () -> b));
            }
            w.write(other);
        }
        CliRun refused = CliRun.of("export", "gguf", "--model", model().toString(), "--type", "Q4_0", "--imatrix", other.toString(),
                "--out", tmp.resolve("n.gguf").toString());
        assertEquals(2, refused.exit());
        assertTrue(refused.err().contains("an imatrix for another model") && refused.err().contains("blk.99."), refused.err());
        assertFalse(Files.exists(tmp.resolve("n.gguf")));
    }
}
