package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import lowbit.io.DataDir;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit quantize` and `lowbit ppl --quant` as a user runs them, on the small real model stories260K. */
class QuantizeCommandTest {

    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "C4 slice not in the data directory");
    }

    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    private static JsonNode json(CliRun o) throws Exception {
        assertEquals(0, o.exit(), o.err());
        return new ObjectMapper().readTree(o.out());
    }

    @Test
    void savedModelEvaluatesExactlyAsTheInMemoryOne(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("stories-gptq");
        JsonNode q = json(run("quantize", "--model", stories.toString(), "--method", "gptq", "--bits", "4", "--group", "32",
                "--nsamples", "4", "--seqlen", "64", "--seed", "7", "--act-order", "--threads", "2", "--out", out.toString(), "--json"));
        assertEquals(out.toString(), q.get("out").asText());
        JsonNode calib = q.at("/quantization/calibration");
        assertEquals(4, calib.get("nsamples").asInt());
        assertEquals(64, calib.get("seqlen").asInt());
        assertEquals(7, calib.get("seed").asLong());
        assertEquals(4, calib.get("draws").size(), "every draw is recorded");
        assertTrue(q.at("/quantization/options/act_order").asBoolean());
        double bpw = q.at("/quantization/bits_per_weight").asDouble();
        assertTrue(bpw > 4.5 && bpw < 5.5, "4 bits + fp16 scale and 4-bit zero per 32 + act-order group index: " + bpw);

        JsonNode saved = json(run("ppl", "--model", out.toString(), "--seqlen", "64", "--windows", "3", "--json"));
        JsonNode inMemory = json(run("ppl", "--model", stories.toString(), "--quant", "gptq:w4g32", "--nsamples", "4",
                "--calib-seqlen", "64", "--seed", "7", "--act-order", "--seqlen", "64", "--windows", "3", "--json"));
        JsonNode fp = json(run("ppl", "--model", stories.toString(), "--seqlen", "64", "--windows", "3", "--json"));
        assertEquals(inMemory.get("nll_sum").asDouble(), saved.get("nll_sum").asDouble(), 0.0);
        assertNotEquals(fp.get("nll_sum").asDouble(), saved.get("nll_sum").asDouble());
        assertEquals(bpw, saved.at("/quantization/bits_per_weight").asDouble(), 0.0);
        assertEquals("gptq:w4g32", inMemory.at("/quantization/spec").asText());
        assertTrue(fp.get("quantization").isNull());
    }

    @Test
    void rtnFlagsAndSpecAgree(@TempDir Path tmp) throws Exception {
        JsonNode a = json(run("quantize", "--model", stories.toString(), "--method", "rtn", "--bits", "3", "--sym",
                "--out", tmp.resolve("a").toString(), "--json"));
        JsonNode b = json(run("quantize", "--model", stories.toString(), "--quant", "rtn:w3sym", "--out", tmp.resolve("b").toString(), "--json"));
        assertEquals(a.at("/quantization/bits_per_weight").asDouble(), b.at("/quantization/bits_per_weight").asDouble(), 0.0);
        assertArrayEquals(Files.readAllBytes(tmp.resolve("a/model.safetensors")), Files.readAllBytes(tmp.resolve("b/model.safetensors")));
    }

    @Test
    void badInputGetsOneClearLineAndLeavesNoDirectory(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("never");
        String m = stories.toString();
        expectError("bits must be 2..8", "quantize", "--model", m, "--method", "rtn", "--bits", "9", "--out", out.toString());
        expectError("wider than the narrowest", "quantize", "--model", m, "--quant", "rtn:w4g4096", "--out", out.toString());
        expectError("unknown method 'foo'", "quantize", "--model", m, "--quant", "foo:w4", "--out", out.toString());
        expectError("Grammar: METHOD:wB", "ppl", "--model", m, "--quant", "gptq:4bit");
        expectError("KV-cache bits must be 2..8", "ppl", "--model", m, "--quant", "rtn:w4+kv9");
        expectError("--alpha must be in [0, 1]", "ppl", "--model", m, "--quant", "smoothquant:w8a8", "--alpha", "1.5");
        expectError("give aA", "ppl", "--model", m, "--quant", "smoothquant:w8");
        expectError("KV group size must divide headDim", "ppl", "--model", m, "--quant", "kv4", "--kv-group", "5");
        expectError("needs --method", "quantize", "--model", m, "--bits", "4", "--out", out.toString());
        expectError("bad --quant spec 'rtn:w4g99999999999': group size must be 1..2147483647, got 99999999999", "ppl", "--model", m,
                "--quant", "rtn:w4g99999999999");
        // Options that only mean something with a spec are refused without one, naming the option.
        expectError("--kv-key-bits applies only to quantization and no --quant SPEC was given", "ppl", "--model", m, "--kv-key-bits", "3");
        expectError("--act-order applies only", "ppl", "--model", m, "--seqlen", "64", "--act-order");
        expectError("--nsamples applies only", "ppl", "--model", m, "--nsamples", "128");
        // Calibration text shorter than one window: the message names the source and the sizes.
        expectError("--calib-seqlen", "quantize", "--model", m, "--method", "gptq", "--bits", "4", "--seqlen", "100000",
                "--nsamples", "2", "--out", out.toString());
        assertFalse(Files.exists(out), "no output directory after a failure");
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().contains(".partial")).count(), "no partial directory left");
        }

        Path full = Files.createDirectories(tmp.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "x");
        expectError("exists and is not empty", "quantize", "--model", m, "--method", "rtn", "--bits", "4", "--out", full.toString());

        // A lowbit model directory whose weights are missing.
        Path good = tmp.resolve("good");
        json(run("quantize", "--model", m, "--method", "rtn", "--bits", "4", "--out", good.toString(), "--json"));
        Files.delete(good.resolve("model.safetensors"));
        expectError("no model.safetensors", "ppl", "--model", good.toString(), "--seqlen", "64", "--windows", "1");
    }

    @Test
    void everyMethodRunsEndToEndAndRecordsItsParameters(@TempDir Path tmp) throws Exception {
        String m = stories.toString();
        String[] eval = {"--seqlen", "64", "--windows", "2", "--json"};
        double fp = json(run(concat(new String[] {"ppl", "--model", m}, eval))).get("nll_sum").asDouble();

        JsonNode awq = json(run(concat(new String[] {"ppl", "--model", m, "--quant", "awq:w4g32", "--nsamples", "4", "--calib-seqlen", "64"}, eval)));
        assertEquals("awq", awq.at("/quantization/method").asText());
        assertEquals(64, awq.at("/quantization/calibration/seqlen").asInt());
        assertEquals("awq", awq.at("/quantization/grid/zero_point").asText());
        assertNotEquals(fp, awq.get("nll_sum").asDouble());

        JsonNode sq = json(run(concat(new String[] {"ppl", "--model", m, "--quant", "smoothquant:w8a8", "--alpha", "0.8", "--nsamples", "4",
                "--calib-seqlen", "64"}, eval)));
        assertEquals(0.8, sq.at("/quantization/options/alpha").asDouble());
        assertEquals(8, sq.at("/quantization/runtime/activation_bits").asInt());
        assertEquals("absmax", sq.at("/quantization/grid/zero_point").asText());
        assertEquals(fp, sq.get("nll_sum").asDouble(), 0.02 * fp, "W8A8 stays close to float");

        JsonNode kv = json(run(concat(new String[] {"ppl", "--model", m, "--quant", "kv4"}, eval)));
        assertEquals(4, kv.at("/quantization/runtime/kv_key_bits").asInt());
        assertEquals(32.0, kv.at("/quantization/bits_per_weight").asDouble());
        assertNotEquals(fp, kv.get("nll_sum").asDouble());

        // A saved W8A8 model keeps its folded norms and re-attaches its activation quantization when loaded.
        Path out = tmp.resolve("sq");
        json(run("quantize", "--model", m, "--quant", "smoothquant:w8a8+kv8", "--alpha", "0.8", "--nsamples", "4", "--calib-seqlen", "64",
                "--out", out.toString(), "--json"));
        JsonNode inMemory = json(run(concat(new String[] {"ppl", "--model", m, "--quant", "smoothquant:w8a8+kv8", "--alpha", "0.8",
                "--nsamples", "4", "--calib-seqlen", "64"}, eval)));
        JsonNode saved = json(run(concat(new String[] {"ppl", "--model", out.toString()}, eval)));
        assertEquals(inMemory.get("nll_sum").asDouble(), saved.get("nll_sum").asDouble(), 0.0);
        assertEquals(8, saved.at("/quantization/runtime/kv_value_bits").asInt());
    }

    @Test
    void aBitsMapGivesEachLinearItsOwnWidth(@TempDir Path tmp) throws Exception {
        Path map = tmp.resolve("bits.json");
        Files.writeString(map, """
                {"format": "lowbit-bits-map", "version": 1,
                 "default": {"bits": 4, "granularity": "group", "group_size": 32},
                 "layers": {"model.layers.0.self_attn.q_proj": {"bits": 8}, "model.layers.1.mlp.down_proj": {"bits": 2}}}
                """);
        Path out = tmp.resolve("mixed");
        JsonNode q = json(run("quantize", "--model", stories.toString(), "--method", "gptq", "--bits-map", map.toString(),
                "--nsamples", "4", "--seqlen", "64", "--out", out.toString(), "--json"));
        assertEquals(2, q.at("/quantization/bits_map/layers/model.layers.1.mlp.down_proj").asInt());
        JsonNode manifest = new ObjectMapper().readTree(out.resolve("lowbit.json").toFile());
        assertEquals(8, manifest.at("/linears/model.layers.0.self_attn.q_proj/grid/bits").asInt());
        assertEquals(2, manifest.at("/linears/model.layers.1.mlp.down_proj/grid/bits").asInt());
        assertEquals(4, manifest.at("/linears/model.layers.0.self_attn.k_proj/grid/bits").asInt());
        assertEquals(32, manifest.at("/linears/model.layers.0.self_attn.k_proj/grid/group_size").asInt());
        json(run("ppl", "--model", out.toString(), "--seqlen", "64", "--windows", "1", "--json"));

        Files.writeString(map, """
                {"format": "lowbit-bits-map", "version": 1, "default": {"bits": 4, "granularity": "per-channel"},
                 "layers": {"model.layers.0.self_attn.qproj": {"bits": 8}}}
                """);
        expectError("bits.json", "quantize", "--model", stories.toString(), "--method", "rtn", "--bits-map", map.toString(),
                "--out", tmp.resolve("never").toString());
    }

    @Test
    void aPostNormModelHasNoScalingGroupForAwq(@TempDir Path tmp) throws Exception {
        Path opt350 = Path.of(getClass().getClassLoader().getResource("tiny/opt-350m-style").toURI());
        expectError("no matching scaling group", "quantize", "--model", opt350.toString(), "--quant", "awq:w4", "--out", tmp.resolve("x").toString());
    }

    private static String[] concat(String[] a, String[] b) {
        String[] c = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }

    private static void expectError(String fragment, String... args) {
        CliRun o = run(args);
        assertEquals(2, o.exit(), "exit code for " + String.join(" ", args) + "\n" + o.err());
        assertTrue(o.err().contains(fragment), "'" + fragment + "' in: " + o.err());
        assertEquals(1, o.err().strip().lines().count(), "one line: " + o.err());
    }
}
