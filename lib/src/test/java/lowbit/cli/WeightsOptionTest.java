package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** --weights bf16 as a user gives it: honored where the model is only evaluated, refused in one line where weights change. */
class WeightsOptionTest {
    private static final String WHY = " needs --weights fp32 (a quantizer's grid values are not exact in bf16)";

    private static Path stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        assumeTrue(Files.exists(DataDir.root().resolve("wikitext-2-raw/wiki.test.raw")), "WikiText-2 not in the data directory");
        return bin;
    }

    private static void refused(String expected, String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(2, r.exit(), String.join(" ", args) + ": " + r.err());
        assertEquals("lowbit: " + expected, r.err().strip(), String.join(" ", args));
        assertEquals(1, r.err().strip().lines().count());
    }

    @Test
    void jobsThatChangeWeightsRefuseBf16BeforeAnyWork(@TempDir Path tmp) {
        String m = "default";
        String lead = "--weights bf16 holds float weights for evaluation; ";
        refused(lead + "--quant" + WHY, "ppl", "--model", m, "--weights", "bf16", "--quant", "rtn:w4g128");
        refused(lead + "--quant" + WHY, "eval", "--model", m, "--weights", "bf16", "--quant", "rtn:w4g128", "--tasks", "piqa");
        refused(lead + "quantize" + WHY, "quantize", "--model", m, "--weights", "bf16", "--quant", "rtn:w4", "--out", tmp.resolve("q").toString());
        refused(lead + "qat" + WHY, "qat", "--model", m, "--weights", "bf16", "--quant", "rtn:w4", "--steps", "1", "--out", tmp.resolve("t").toString());
        refused(lead + "study" + WHY, "study", "--model", m, "--weights", "bf16", "--out", tmp.resolve("s").toString());
        refused(lead + "allocate" + WHY, "allocate", "--model", m, "--weights", "bf16", "--method", "rtn", "--budget", "4", "--out", tmp.resolve("a.json").toString());
        refused(lead + "imatrix (it measures the float model that export quantizes)" + WHY, "imatrix", "--model", m, "--weights", "bf16",
                "--out", tmp.resolve("i.gguf").toString());
        refused("--weights must be fp32 or bf16, got 'fp16'", "ppl", "--model", m, "--weights", "fp16");
        assertTrue(Files.notExists(tmp.resolve("q")) && Files.notExists(tmp.resolve("a.json")));
    }

    /** ppl on stories260K in bf16: 16 bits per weight in the row, perplexity within 2e-2 of float32's on the same windows. */
    @Test
    void pplHonorsBf16(@TempDir Path tmp) throws Exception {
        Path bin = stories();
        CliRun fp32 = CliRun.of("ppl", "--model", bin.toString(), "--seqlen", "128", "--windows", "2", "--json");
        CliRun bf16 = CliRun.of("ppl", "--model", bin.toString(), "--seqlen", "128", "--windows", "2", "--json", "--weights", "bf16");
        assertEquals(0, fp32.exit(), fp32.err());
        assertEquals(0, bf16.exit(), bf16.err());
        JsonNode a = new ObjectMapper().readTree(fp32.out()), b = new ObjectMapper().readTree(bf16.out());
        assertEquals(32.0, a.get("bits_per_weight").asDouble());
        assertEquals(16.0, b.get("bits_per_weight").asDouble());
        double pa = a.get("ppl").asDouble(), pb = b.get("ppl").asDouble();
        assertEquals(pa, pb, 2e-2 * pa);
        assertTrue(pa != pb, "bf16 rounding changed nothing on stories260K's float32 weights");

        // a quantized directory holds grid values bf16 would round: refused, naming it
        Path q = tmp.resolve("q");
        CliRun quantize = CliRun.of("quantize", "--model", bin.toString(), "--quant", "rtn:w4", "--out", q.toString());
        assertEquals(0, quantize.exit(), quantize.err());
        refused(q.toAbsolutePath() + " is a quantized model: its weights are grid values that bf16 would round; evaluate it with --weights fp32",
                "ppl", "--model", q.toString(), "--seqlen", "128", "--windows", "1", "--weights", "bf16");
    }
}
