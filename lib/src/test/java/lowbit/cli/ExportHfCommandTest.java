package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.hf.TinyQuantized;
import lowbit.quant.QuantConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit export hf` as a user runs it: one line on success, one `lowbit:` line and exit 2 on a refusal. */
class ExportHfCommandTest {
    @TempDir Path tmp;

    @Test
    void writesTheCheckpointAndSaysWhat() throws Exception {
        Path q = TinyQuantized.write(tmp, QuantConfig.group(4, 32), "rtn:w4g32", w -> w);
        Path h = tmp.resolve("h");
        CliRun r = CliRun.of("export", "hf", "--model", q.toString(), "--format", "gptq", "--out", h.toString());
        assertEquals(0, r.exit(), r.err());
        assertEquals("wrote " + h + ": gptq, 14 linears on w4g32\n", r.out());
        assertTrue(Files.isRegularFile(h.resolve("config.json")) && Files.isRegularFile(h.resolve("model.safetensors")));
        var provenance = new com.fasterxml.jackson.databind.ObjectMapper().readTree(h.resolve("config.json").toFile()).get("lowbit_provenance");
        assertEquals("gptq", provenance.get("format").asText());
        assertEquals(q.toString(), provenance.get("exported_from").asText());
        assertEquals(64, provenance.get("exported_from_sha256").asText().length());
        assertTrue(provenance.get("quantization").isObject(), provenance.toString());
    }

    @Test
    void aRefusalIsOneLineAndExitTwo() throws Exception {
        Path q = TinyQuantized.write(tmp, QuantConfig.group(3, 32), "rtn:w3g32", w -> w);
        Path h = tmp.resolve("h");
        CliRun r = CliRun.of("export", "hf", "--model", q.toString(), "--format", "awq", "--out", h.toString());
        assertEquals(2, r.exit());
        assertEquals("lowbit: " + q + ": cannot export as awq: model.layers.0.self_attn.q_proj: AWQ's GEMM layout holds 4-bit "
                + "codes only, not 3\n", r.err());
        assertFalse(Files.exists(h));
    }
}
