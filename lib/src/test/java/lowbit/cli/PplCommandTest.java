package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit ppl` as a user runs it, in process. */
class PplCommandTest {

    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    @Test
    void jsonOutputOnTheDefaultModelMatchesTheReferenceSlice() throws Exception {
        assumeTrue(Files.exists(DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf")), "default model not downloaded");
        CliRun o = run("ppl", "--model", "default", "--dataset", "wikitext2", "--seqlen", "256", "--windows", "4", "--json");
        assertEquals(0, o.exit(), o.err());
        JsonNode j = new ObjectMapper().readTree(o.out());
        // transformers fp32 on the same four windows: resources/reference/smollm2-wikitext2.json
        assertEquals(34.83699784141296, j.get("ppl").asDouble(), 1e-3);
        assertEquals(1024, j.get("tokens").asInt());
        assertEquals(4, j.get("windows").asInt());
        assertEquals(256, j.get("seqlen").asInt());
        assertEquals("b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", j.get("model_sha256").asText());
        assertEquals("173c87a53759e0201f33e0ccf978e510c2042d7f2cb78229d9a50d79b9e7dd08", j.get("dataset_sha256").asText());
        assertTrue(j.get("seconds").asDouble() > 0);
        assertTrue(j.get("tokens_per_second").asDouble() > 0);
    }

    @Test
    void interruptedRunResumesFromItsJournal(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.exists(DataDir.root().resolve("wikitext-2-raw/wiki.test.raw")), "WikiText-2 not in the data directory");
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory");
        Path journal = tmp.resolve("j.tsv");
        CliRun first = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "3", "--journal", journal.toString(), "--json");
        assertEquals(0, first.exit(), first.err());
        assertEquals(3, Files.readAllLines(journal).size());
        CliRun again = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "5", "--journal", journal.toString(), "--json");
        JsonNode a = new ObjectMapper().readTree(first.out()), b = new ObjectMapper().readTree(again.out());
        assertEquals(3, b.get("resumed_windows").asInt());
        assertEquals(5, Files.readAllLines(journal).size());
        CliRun fresh = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "5", "--json");
        assertEquals(new ObjectMapper().readTree(fresh.out()).get("nll_sum").asDouble(), b.get("nll_sum").asDouble(), 0.0,
                "resumed and fresh runs give the same numbers");
        assertTrue(a.get("nll_sum").asDouble() < b.get("nll_sum").asDouble());
    }

    @Test
    void badOptionsGetOneClearLine() {
        CliRun o = run("ppl", "--model", "default", "--dataset", "penn", "--windows", "1");
        assertEquals(2, o.exit());
        assertTrue(o.err().contains("unknown dataset 'penn'") && o.err().contains("wikitext2"), o.err());
        CliRun missing = run("ppl", "--model", "/nonexistent/model.gguf");
        assertEquals(2, missing.exit());
        assertTrue(missing.err().contains("/nonexistent/model.gguf") && missing.err().contains("no such file"), missing.err());
        CliRun seq = run("ppl", "--seqlen", "1");
        assertEquals(2, seq.exit());
        assertTrue(seq.err().contains("--seqlen"), seq.err());
    }

    private static Path stories260K() {
        assumeTrue(Files.exists(DataDir.root().resolve("wikitext-2-raw/wiki.test.raw")), "WikiText-2 not in the data directory");
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory");
        return bin;
    }

    @Test
    void tornJournalRecordIsRecomputedNotRead(@TempDir Path tmp) throws Exception {
        Path bin = stories260K();
        Path journal = tmp.resolve("j.jsonl");
        CliRun first = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "3", "--journal", journal.toString(), "--json");
        assertEquals(0, first.exit(), first.err());
        // What a kill during the third append leaves: that record cut in the middle of its number, no newline.
        String text = Files.readString(journal);
        int cut = text.lastIndexOf("\"nll\":") + 9;
        Files.writeString(journal, text.substring(0, cut));
        CliRun again = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "3", "--journal", journal.toString(), "--json");
        assertEquals(0, again.exit(), again.err());
        JsonNode a = new ObjectMapper().readTree(first.out()), b = new ObjectMapper().readTree(again.out());
        assertEquals(2, b.get("resumed_windows").asInt());
        assertEquals(a.get("nll_sum").asDouble(), b.get("nll_sum").asDouble(), 0.0);
        List<String> lines = Files.readAllLines(journal);
        assertEquals(4, lines.size(), "the fragment keeps its own line and the recomputed record follows it");
        assertEquals(text.substring(0, cut).lines().reduce((x, y) -> y).orElseThrow(), lines.get(2));
        assertTrue(lines.get(3).startsWith("{") && lines.get(3).contains("\"window\":2"), lines.get(3));
    }

    @Test
    void nanWeightIsRefusedAtLoadNamingTheTensor(@TempDir Path tmp) throws Exception {
        Path bin = stories260K();
        byte[] b = Files.readAllBytes(bin);
        ByteBuffer header = ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN);
        int dim = header.getInt(0), vocab = Math.abs(header.getInt(20));
        // llama2.c layout: 7 int32 header, token_embedding_table [vocab][dim], then rms_att_weight [layers][dim]
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).putFloat(28 + 4 * vocab * dim, Float.NaN);
        Path broken = Files.write(tmp.resolve("nan.bin"), b);
        Files.copy(bin.resolveSibling("tok512.bin"), tmp.resolve("tok512.bin"));
        CliRun o = run("ppl", "--model", broken.toString(), "--seqlen", "64", "--windows", "2");
        assertEquals(2, o.exit(), o.err());
        assertEquals("lowbit: " + broken + ": tensor model.layers.0.input_layernorm.weight holds NaN at element 0; weights must be finite\n",
                o.err());
        assertEquals("", o.out());
    }

    @Test
    void windowsPastTheDeclaredContextRunWithAWarningAndAreRecorded() throws Exception {
        Path bin = stories260K(); // llama2.c seq_len 512
        CliRun o = run("ppl", "--model", bin.toString(), "--seqlen", "600", "--windows", "1", "--json");
        assertEquals(0, o.exit(), o.err());
        assertEquals("lowbit: warning: --seqlen 600 is longer than the model's declared context of 512 tokens;"
                + " positions past it are extrapolated (recorded as beyond_context)\n", o.err());
        JsonNode j = new ObjectMapper().readTree(o.out());
        assertEquals(512, j.get("context_length").asInt());
        assertTrue(j.get("beyond_context").asBoolean());
        CliRun inside = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "1", "--json");
        assertEquals("", inside.err());
        assertFalse(new ObjectMapper().readTree(inside.out()).get("beyond_context").asBoolean());
    }

    @Test
    void unusableJournalFailsBeforeTheModelIsOpened(@TempDir Path tmp) throws Exception {
        Path file = Files.writeString(tmp.resolve("plain"), "x");
        CliRun o = run("ppl", "--model", "/nonexistent/model.gguf", "--journal", file.resolve("j").toString());
        assertEquals(2, o.exit());
        assertEquals("lowbit: --journal " + file.resolve("j") + ": cannot open it: " + file + ": already exists\n", o.err());
        CliRun dir = run("ppl", "--model", "/nonexistent/model.gguf", "--journal", tmp.toString());
        assertEquals("lowbit: --journal " + tmp + ": cannot open it: not a regular file\n", dir.err());
    }

    @Test
    void kldReportsLlamaCppStatisticsBesideThePerplexityOfTheSamePass(@TempDir Path tmp) throws Exception {
        Path bin = stories260K();
        String cache = tmp.resolve("cache").toString();
        CliRun fp = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "3", "--json");
        assertEquals(0, fp.exit(), fp.err());
        CliRun q = run("ppl", "--model", bin.toString(), "--quant", "rtn:w3", "--seqlen", "64", "--windows", "3", "--kld",
                "--kld-cache", cache, "--json");
        assertEquals(0, q.exit(), q.err());
        JsonNode fj = new ObjectMapper().readTree(fp.out()), qj = new ObjectMapper().readTree(q.out());
        JsonNode k = qj.get("kld");
        for (String key : List.of("positions", "mean", "mean_stderr", "median", "p90", "p95", "p99", "max", "same_top_p",
                "same_top_p_stderr", "rms_dp", "rms_dp_stderr", "ln_ppl_ratio", "ln_ppl_ratio_stderr", "ppl_ratio", "ppl_ratio_stderr",
                "ppl_float"))
            assertTrue(k.has(key), key + " in " + k);
        assertEquals(3 * 63, k.get("positions").asInt());
        assertTrue(k.get("mean").asDouble() > 0, k.toString());
        assertEquals(fj.get("ppl").asDouble(), k.get("ppl_float").asDouble(), 1e-4 * fj.get("ppl").asDouble(),
                "the cached reference is the float model's own run");
        assertEquals(qj.get("ppl").asDouble() / fj.get("ppl").asDouble(), k.get("ppl_ratio").asDouble(), 1e-4);
        try (var files = Files.list(tmp.resolve("cache"))) {
            assertEquals(1, files.count(), "one reference file, nothing partial left");
        }
        CliRun text = run("ppl", "--model", bin.toString(), "--quant", "rtn:w3", "--seqlen", "64", "--windows", "3", "--kld",
                "--kld-cache", cache);
        assertEquals(0, text.exit(), text.err());
        assertTrue(text.out().contains("KL divergence to the float model over 189 positions") && text.out().contains("same top p"), text.out());
    }

    @Test
    void kldOfAQuantizedDirectoryComparesWithTheFloatModelItsManifestNames(@TempDir Path tmp) throws Exception {
        Path bin = stories260K();
        Path dir = tmp.resolve("q");
        CliRun made = run("quantize", "--model", bin.toString(), "--quant", "rtn:w4", "--out", dir.toString());
        assertEquals(0, made.exit(), made.err());
        String cache = tmp.resolve("cache").toString();
        CliRun fromDir = run("ppl", "--model", dir.toString(), "--seqlen", "64", "--windows", "2", "--kld", "--kld-cache", cache, "--json");
        assertEquals(0, fromDir.exit(), fromDir.err());
        CliRun inMemory = run("ppl", "--model", bin.toString(), "--quant", "rtn:w4", "--seqlen", "64", "--windows", "2", "--kld",
                "--kld-cache", cache, "--json");
        assertEquals(0, inMemory.exit(), inMemory.err());
        JsonNode a = new ObjectMapper().readTree(fromDir.out()).get("kld"), b = new ObjectMapper().readTree(inMemory.out()).get("kld");
        // the stored model dequantizes exactly to the weights evaluated in memory (fp16 scales rounded first)
        assertEquals(b.get("mean").asDouble(), a.get("mean").asDouble(), 1e-6 * b.get("mean").asDouble());
    }

    @Test
    void kldReferenceNamesTheFloatModelOfACheckpointThatDoesNotRecordIt(@TempDir Path tmp) throws Exception {
        Path bin = stories260K();
        Path dir = tmp.resolve("q");
        assertEquals(0, run("quantize", "--model", bin.toString(), "--quant", "rtn:w3", "--out", dir.toString()).exit());
        String cache = tmp.resolve("cache").toString();
        CliRun named = run("ppl", "--model", dir.toString(), "--seqlen", "64", "--windows", "2", "--kld", "--kld-cache", cache, "--json");
        CliRun given = run("ppl", "--model", dir.toString(), "--seqlen", "64", "--windows", "2", "--kld", "--kld-reference", bin.toString(),
                "--kld-cache", cache, "--json");
        assertEquals(0, given.exit(), given.err());
        JsonNode a = new ObjectMapper().readTree(named.out()), b = new ObjectMapper().readTree(given.out());
        assertEquals(a.get("kld").get("mean").asDouble(), b.get("kld").get("mean").asDouble(), 0.0, "the same reference, given or recorded");
        assertEquals(a.get("nll_sum").asDouble(), b.get("nll_sum").asDouble(), 0.0);
        assertTrue(b.get("kld").get("mean").asDouble() > 0);

        CliRun without = run("ppl", "--model", dir.toString(), "--seqlen", "64", "--windows", "1", "--kld-reference", bin.toString());
        assertEquals(2, without.exit());
        assertTrue(without.err().contains("give --kld too"), without.err());
        CliRun quantizedReference = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "1", "--kld",
                "--kld-reference", dir.toString(), "--kld-cache", cache);
        assertEquals(2, quantizedReference.exit());
        assertTrue(quantizedReference.err().contains("is a quantized model"), quantizedReference.err());
    }

    @Test
    void kldWithoutAQuantizedModelOrWithAJournalIsOneClearLine(@TempDir Path tmp) {
        Path bin = stories260K();
        CliRun self = run("ppl", "--model", bin.toString(), "--seqlen", "64", "--windows", "1", "--kld", "--kld-cache", tmp.toString());
        assertEquals(2, self.exit());
        assertTrue(self.err().contains("--kld compares a quantized model") && self.err().strip().lines().count() == 1, self.err());
        CliRun journaled = run("ppl", "--model", bin.toString(), "--quant", "rtn:w4", "--seqlen", "64", "--windows", "1", "--kld",
                "--kld-cache", tmp.toString(), "--journal", tmp.resolve("j").toString());
        assertEquals(2, journaled.exit());
        assertTrue(journaled.err().contains("--journal"), journaled.err());
        assertFalse(Files.exists(tmp.resolve("j")), "refused before the journal is created");
    }
}
