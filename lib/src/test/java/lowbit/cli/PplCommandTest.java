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
}
