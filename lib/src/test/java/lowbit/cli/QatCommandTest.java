package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit qat` as a user runs it: its one-line errors, and a short run on stories260K read back by `ppl`. */
class QatCommandTest {
    private static String tiny(String name) throws Exception {
        return Path.of(QatCommandTest.class.getClassLoader().getResource("tiny/" + name).toURI()).toString();
    }

    private static void expectError(String fragment, String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(Main.USER_ERROR, r.exit(), r.err());
        assertTrue(r.err().startsWith("lowbit: "), r.err());
        assertEquals(1, r.err().strip().lines().count(), "one line: " + r.err());
        assertTrue(r.err().contains(fragment), "expected '" + fragment + "' in: " + r.err());
    }

    @Test
    void badInputIsOneLineNamingTheOption(@TempDir Path tmp) throws Exception {
        String m = tiny("llama"), out = tmp.resolve("out").toString();
        expectError("--lr must be a finite number in (0, 1], got 0.0", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "2", "--lr", "0", "--out", out);
        expectError("--lr must be a finite number in (0, 1], got 2.0", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "2", "--lr", "2", "--out", out);
        expectError("--lr must be a finite number in (0, 1], got NaN", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "2", "--lr", "NaN", "--out", out);
        expectError("--steps must be >= 1, got 0", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "0", "--out", out);
        expectError("--warmup must be between 0 and --steps (2), got 3", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "2", "--warmup", "3",
                "--out", out);
        expectError("--pact learns the clip of the linears' inputs; --quant rtn:w4 has no aA term", "qat", "--model", m, "--quant", "rtn:w4",
                "--steps", "2", "--pact", "--out", out);
        expectError("QAT starts from the RTN grid", "qat", "--model", m, "--quant", "gptq:w4g32", "--steps", "2", "--out", out);
        expectError("QAT does not quantize the KV cache; drop the kv4 term", "qat", "--model", m, "--quant", "rtn:w4+kv4", "--steps", "2", "--out", out);
        expectError("QAT does not support the quarot rotation", "qat", "--model", m, "--quant", "quarot+rtn:w4a8", "--steps", "2", "--out", out);
        expectError("--batch must be >= 1", "qat", "--model", m, "--quant", "rtn:w4", "--steps", "2", "--batch", "0", "--out", out);
        expectError("model_type opt: there is no backward pass for it yet", "qat", "--model", tiny("opt"), "--quant", "rtn:w4", "--steps", "2",
                "--out", out);
        assertFalse(Files.exists(Path.of(out)), "no output after an error");
    }

    @Test
    void trainsWritesAndPplReadsIt(@TempDir Path tmp) throws Exception {
        Path stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "C4 slice not in the data directory");
        Path out = tmp.resolve("qat"), run = tmp.resolve("run");
        List<String> args = List.of("qat", "--model", stories.toString(), "--quant", "rtn:w4a8", "--pact", "--lsq", "--steps", "3", "--lr", "1e-3",
                "--seqlen", "32", "--batch", "2", "--seed", "3", "--checkpoint-every", "2", "--threads", "2", "--run-dir", run.toString());
        CliRun r = CliRun.of(concat(args, "--out", out.toString(), "--json"));
        assertEquals(0, r.exit(), r.err());
        JsonNode q = new ObjectMapper().readTree(r.out()).get("quantization");
        assertEquals("qat", q.get("method").asText());
        assertEquals("rtn:w4a8", q.get("spec").asText());
        assertEquals(3 * 2 * 32, q.at("/qat/tokens_seen").asLong());
        assertTrue(q.at("/options/lsq").asBoolean() && q.at("/options/pact").asBoolean());
        assertEquals(6, q.at("/calibration/draws").size(), "steps x batch windows, every draw recorded");
        assertEquals("per-tensor-static", q.at("/runtime/activation_mode").asText());
        assertEquals(4, Files.readAllLines(run.resolve("loss.csv")).size(), "header + 3 steps");

        CliRun ppl = CliRun.of("ppl", "--model", out.toString(), "--seqlen", "32", "--windows", "2", "--json");
        assertEquals(0, ppl.exit(), ppl.err());
        JsonNode p = new ObjectMapper().readTree(ppl.out());
        assertTrue(Double.isFinite(p.get("ppl").asDouble()));
        assertEquals("qat", p.at("/quantization/method").asText());

        // the same run directory with another learning rate is another run
        CliRun other = CliRun.of(concat(args.stream().map(a -> a.equals("1e-3") ? "2e-3" : a).toList(), "--out", tmp.resolve("qat2").toString()));
        assertEquals(Main.USER_ERROR, other.exit());
        assertTrue(other.err().contains("belongs to another QAT run: its lr is 0.001, this run's is 0.002"), other.err());
    }

    private static String[] concat(List<String> args, String... more) {
        return java.util.stream.Stream.concat(args.stream(), java.util.Arrays.stream(more)).toArray(String[]::new);
    }
}
