package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import lowbit.results.ResultStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit eval` as a user runs it, in process. */
class EvalCommandTest {
    private static Path stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("tasks/boolq.jsonl")), "task files not in the data directory");
        return bin;
    }

    private static void assertOneLineError(CliRun r, String expected) {
        assertEquals(2, r.exit(), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().startsWith("lowbit: ") && r.err().contains(expected), r.err());
    }

    @Test
    void badOptionsAreOneLineErrorsAndWriteNoRow(@TempDir Path tmp) {
        Path store = tmp.resolve("s.jsonl");
        assertOneLineError(CliRun.of("eval", "--tasks", "piqa,arc_eazy", "--store", store.toString()),
                "unknown task 'arc_eazy'; known tasks: piqa, arc_easy, arc_challenge, hellaswag, winogrande, boolq, lambada_openai");
        assertOneLineError(CliRun.of("eval", "--tasks", "piqa", "--limit", "0", "--store", store.toString()), "--limit must be >= 1, got 0");
        assertOneLineError(CliRun.of("eval", "--tasks", "piqa", "--fewshot", "5", "--store", store.toString()),
                "--fewshot 5: lm-eval draws piqa's few-shot examples from its train split");
        assertFalse(Files.exists(store) && ResultStore.open(store).size() > 0, "no row for a refused run");
    }

    @Test
    void oneRowPerTaskWithProvenanceAndARerunReusesIt(@TempDir Path tmp) throws Exception {
        Path model = stories(), store = tmp.resolve("eval.jsonl");
        // stories260K's context is 512 tokens: BoolQ passages are longer and lose tokens from the left
        CliRun first = CliRun.of("eval", "--model", model.toString(), "--tasks", "boolq,winogrande", "--limit", "4", "--threads", "1",
                "--store", store.toString(), "--json");
        assertEquals(0, first.exit(), first.err());
        JsonNode j = new ObjectMapper().readTree(first.out());
        JsonNode boolq = j.get("tasks").get(0);
        assertEquals("boolq", boolq.get("task").asText());
        assertEquals(4, boolq.get("items").asInt());
        assertEquals(4, boolq.get("limit").asInt());
        assertEquals("454ff101e614370bb1807fe7ebbda6fdb57e794b9662cc1ccae211bf1ff626c8",
                boolq.get("data_sha256").get("tasks/boolq.jsonl").asText());
        assertEquals("b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696", boolq.get("model_sha256").asText());
        double acc = boolq.get("metrics").get("acc").asDouble();
        assertEquals(0, acc * 4 - Math.rint(acc * 4), 1e-12, "acc over 4 items is a multiple of 1/4");
        assertTrue(boolq.get("truncated_items").asInt() > 0, "BoolQ passages exceed stories260K's 512 tokens");
        assertTrue(boolq.has("code_version") && boolq.has("timestamp") && boolq.get("quantization").isNull());
        assertEquals(2, ResultStore.open(store).size());

        CliRun again = CliRun.of("eval", "--model", model.toString(), "--tasks", "boolq", "--limit", "4", "--threads", "1",
                "--store", store.toString(), "--json");
        assertEquals(0, again.exit(), again.err());
        JsonNode k = new ObjectMapper().readTree(again.out()).get("tasks").get(0);
        assertEquals(boolq.get("timestamp").asText(), k.get("timestamp").asText(), "the stored row, not a new run");
        assertEquals(2, ResultStore.open(store).size());

        // the context once for both choices: the same log-probs, so the same figures
        CliRun prefix = CliRun.of("eval", "--model", model.toString(), "--tasks", "boolq", "--limit", "4", "--threads", "1",
                "--scorer", "prefix", "--no-store", "--json");
        assertEquals(0, prefix.exit(), prefix.err());
        JsonNode p = new ObjectMapper().readTree(prefix.out()).get("tasks").get(0);
        assertEquals("PrefixScorer", p.get("scorer").asText());
        assertEquals(boolq.get("metrics"), p.get("metrics"));
        assertOneLineError(CliRun.of("eval", "--model", model.toString(), "--tasks", "boolq", "--scorer", "fast", "--no-store"),
                "--scorer must be one of full, prefix, got 'fast'");
    }

    @Test
    void malformedTaskFileNamesFileAndLine(@TempDir Path tmp) throws Exception {
        Path model = stories();
        Path data = tmp.resolve("data");
        Files.createDirectories(data.resolve("tasks"));
        Files.writeString(data.resolve("tasks/winogrande.jsonl"),
                "{\"context_options\": [\"a b\", \"a c\"], \"continuation\": \"d\", \"gold\": 0}\n{\"context_options\": [\"a\"]}\n");
        String saved = System.getProperty("lowbit.data");
        System.setProperty("lowbit.data", data.toString());
        try {
            assertOneLineError(CliRun.of("eval", "--model", model.toString(), "--tasks", "winogrande", "--no-store"),
                    data.resolve("tasks/winogrande.jsonl") + ": line 2: expected \"context_options\" to be a list of at least 2 strings");
        } finally {
            if (saved == null) System.clearProperty("lowbit.data");
            else System.setProperty("lowbit.data", saved);
        }
    }

    /** Runs the CLI with the data directory set to {@code data}. */
    private static CliRun withData(Path data, String... args) {
        String saved = System.getProperty("lowbit.data");
        System.setProperty("lowbit.data", data.toString());
        try {
            return CliRun.of(args);
        } finally {
            if (saved == null) System.clearProperty("lowbit.data");
            else System.setProperty("lowbit.data", saved);
        }
    }

    private static Path dataWithMmluFixture(Path tmp) throws Exception {
        Path data = tmp.resolve("data");
        Path fixture = Path.of(EvalCommandTest.class.getResource("/mmlu/test").toURI()).getParent();
        for (String split : new String[] {"dev", "test"}) {
            Files.createDirectories(data.resolve("mmlu").resolve(split));
            try (var files = Files.list(fixture.resolve(split))) {
                for (Path f : files.toList()) Files.copy(f, data.resolve("mmlu").resolve(split).resolve(f.getFileName()));
            }
        }
        return data;
    }

    @Test
    void mmluOnTheFixtureIsOneRowWithCategoriesAndSubjects(@TempDir Path tmp) throws Exception {
        Path model = stories(), data = dataWithMmluFixture(tmp);
        CliRun r = withData(data, "eval", "--model", model.toString(), "--tasks", "mmlu", "--threads", "1", "--no-store", "--json");
        assertEquals(0, r.exit(), r.err());
        JsonNode row = new ObjectMapper().readTree(r.out()).get("tasks").get(0);
        assertEquals("mmlu", row.get("task").asText());
        assertEquals(5, row.get("num_fewshot").asInt());
        assertEquals(6, row.get("items").asInt());
        assertEquals(2, row.get("subjects").size());
        // both fixture subjects are STEM, three items each: the group and the overall figure pool the same six items
        assertEquals(row.get("groups").get("mmlu_stem").get("acc").asDouble(), row.get("metrics").get("acc").asDouble(), 1e-12);
        double a = row.get("subjects").get("astronomy").get("acc").asDouble(), h = row.get("subjects").get("high_school_computer_science").get("acc").asDouble();
        assertEquals((a + h) / 2, row.get("metrics").get("acc").asDouble(), 1e-12);

        assertOneLineError(withData(data, "eval", "--model", model.toString(), "--tasks", "mmlu", "--fewshot", "7", "--no-store"),
                "--fewshot 7: MMLU takes 0 to 5 shots");
    }

    @Test
    void absentMmluIsANoteAndTheOtherTasksRun(@TempDir Path tmp) throws Exception {
        Path model = stories(), data = tmp.resolve("data");
        Files.createDirectories(data.resolve("tasks"));
        Files.writeString(data.resolve("tasks/winogrande.jsonl"),
                "{\"context_options\": [\"The cat sat on the mat so the cat\", \"The cat sat on the mat so the mat\"], "
                        + "\"continuation\": \"was happy.\", \"gold\": 0}\n");
        CliRun r = withData(data, "eval", "--model", model.toString(), "--tasks", "winogrande,mmlu", "--threads", "1", "--no-store", "--json");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.err().contains("lowbit: note: MMLU skipped: no MMLU data: " + data.resolve("mmlu/test")), r.err());
        JsonNode tasks = new ObjectMapper().readTree(r.out()).get("tasks");
        assertEquals(1, tasks.size());
        assertEquals("winogrande", tasks.get(0).get("task").asText());
        assertTrue(tasks.get(0).get("metrics").get("acc_stderr").isNull(), "one item: no standard error, as lm-eval's N/A");
    }
}
