package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `--act-static --observer` as a user runs it, on stories260K: provenance, the saved directory, and the refusals. */
class ObserverCommandTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "C4 slice not in the data directory");
    }

    private static JsonNode json(CliRun o) throws Exception {
        assertEquals(0, o.exit(), o.err());
        return new ObjectMapper().readTree(o.out());
    }

    private static final String[] CALIB = {"--nsamples", "2", "--calib-seqlen", "64"};
    private static final String[] EVAL = {"--seqlen", "64", "--windows", "2", "--json"};

    private static String[] args(String[]... parts) {
        return java.util.Arrays.stream(parts).flatMap(java.util.Arrays::stream).toArray(String[]::new);
    }

    @Test
    void aDirectoryWrittenWithAnObserverEvaluatesWithItsScales(@TempDir Path tmp) throws Exception {
        String m = stories.toString();
        JsonNode kl = json(CliRun.of(args(new String[] {"ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "kl"}, CALIB, EVAL)));
        JsonNode minmax = json(CliRun.of(args(new String[] {"ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static"}, CALIB, EVAL)));
        JsonNode explicit = json(CliRun.of(args(new String[] {"ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "minmax"},
                CALIB, EVAL)));
        assertEquals("kl", kl.at("/quantization/runtime/activation_observer").asText());
        assertEquals("minmax", minmax.at("/quantization/runtime/activation_observer").asText(), "--act-static alone is min/max");
        assertEquals(minmax.get("nll_sum").asDouble(), explicit.get("nll_sum").asDouble(), 0.0);
        assertNotEquals(minmax.at("/quantization/runtime/activation_scales"), kl.at("/quantization/runtime/activation_scales"));

        Path out = tmp.resolve("kl");
        json(CliRun.of(args(new String[] {"quantize", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "kl", "--out",
                out.toString(), "--json"}, CALIB)));
        JsonNode manifest = new ObjectMapper().readTree(out.resolve("lowbit.json").toFile());
        assertEquals("kl", manifest.at("/quantization/runtime/activation_observer").asText());
        JsonNode saved = json(CliRun.of(args(new String[] {"ppl", "--model", out.toString()}, EVAL)));
        assertEquals(kl.get("nll_sum").asDouble(), saved.get("nll_sum").asDouble(), 0.0, "same scales, same numbers");
        assertEquals("kl", saved.at("/quantization/runtime/activation_observer").asText());

        JsonNode sq = json(CliRun.of(args(new String[] {"ppl", "--model", m, "--quant", "smoothquant:w8a8", "--act-static", "--observer",
                "percentile:99.99"}, CALIB, EVAL)));
        assertEquals("percentile:99.99", sq.at("/quantization/runtime/activation_observer").asText());
        assertEquals("per-tensor-static", sq.at("/quantization/runtime/activation_mode").asText());
    }

    private static void expectError(String fragment, String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(2, r.exit(), String.join(" ", args) + "\n" + r.err());
        String line = r.err().strip();
        assertTrue(line.startsWith("lowbit: ") && line.contains(fragment), "expected '" + fragment + "' in: " + line);
        assertFalse(line.contains("\n"), "one line: " + line);
        assertEquals("", r.out(), "no result row");
    }

    @Test
    void badObserverOptionsGetOneLine() {
        String m = stories.toString();
        expectError("add --act-static", "ppl", "--model", m, "--quant", "rtn:w8a8", "--observer", "kl");
        expectError("quantizes no activations (weights and the KV cache take no observer)",
                "ppl", "--model", m, "--quant", "rtn:w4", "--act-static", "--observer", "kl");
        expectError("quantizes no activations", "ppl", "--model", m, "--quant", "kv4", "--act-static", "--observer", "ema");
        expectError("unknown --observer 'entropy'; expected minmax | ema | kl | percentile:P",
                "ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "entropy");
        expectError("--observer percentile:P needs P in (0, 100], got 100.5",
                "ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "percentile:100.5");
        expectError("--observer percentile:P needs P in (0, 100], got 0",
                "ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "percentile:0");
        expectError("--observer percentile:P needs a number P in (0, 100], got 'x'",
                "ppl", "--model", m, "--quant", "rtn:w8a8", "--act-static", "--observer", "percentile:x");
        expectError("--observer applies only to quantization", "ppl", "--model", m, "--observer", "kl");
    }
}
