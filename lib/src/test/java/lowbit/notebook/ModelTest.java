package lowbit.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import lowbit.eval.tasks.TaskResult;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.results.Row;
import lowbit.eval.Evaluator;
import lowbit.eval.Perplexity;
import lowbit.quant.QuantizationRecipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A notebook's model evaluates through the same runner as ppl and studies. */
class ModelTest {

    @Test
    void perplexityAppliesTheProtocolCapAndKlDivergenceFollowsQuantization(@TempDir Path cache) {
        assumeTrue(Model.available("stories260K"), "stories260K not in the data directory (./lowbit setup)");
        try (Model m = Model.load("stories260K")) {
            Perplexity.Result c4 = m.perplexity("c4-train-slice", 16, 0);
            assertEquals(256, c4.windows(), "the c4-train-slice cap, as ./lowbit ppl applies it");
            Evaluator.Report fp = m.evaluate("wikitext2", 64, 3, cache);
            assertNull(fp.kld(), "the float model writes the reference");
            m.quantize(QuantizationRecipe.of("rtn:w3"));
            Evaluator.Report q = m.evaluate("wikitext2", 64, 3, cache);
            assertTrue(q.kld().mean() > 0, q.kld().toString());
            assertEquals(fp.ppl(), q.kld().pplFloat(), 1e-4 * fp.ppl());
            assertEquals("rtn:w3", ((java.util.Map<?, ?>) q.fields().get("quantization")).get("spec"));
            assertThrows(IllegalStateException.class, () -> m.quantize(QuantizationRecipe.of("rtn:w4")));
        }
    }

    @Test
    void zeroShotIsTheEvalCommandsRowWithoutAStore() {
        assumeTrue(Model.available("stories260K"), "stories260K not in the data directory (./lowbit setup)");
        try (Model m = Model.load("stories260K")) {
            for (String task : new String[] {"arc_easy", "lambada_openai"}) {
                TaskResult r = m.zeroShot(task, 3);
                assertEquals(3, r.size());
                ZeroShot.Prepared p = ZeroShot.Prepared.of(Tasks.get(task), 3);
                Row row = ZeroShot.run(m.evaluated(), p, ZeroShot.scorer(ZeroShot.DEFAULT_SCORER).apply(m.transformer()), null,
                        lowbit.progress.Progress.NONE);
                assertEquals(r.metrics(), row.get("metrics"), task + ": the same figures as ./lowbit eval's row");
            }
            assertThrows(IllegalArgumentException.class, () -> m.zeroShot("no_such_task", 3));
        }
    }

    @Test
    void mmluAbsenceNamesTheDataDirectoryNotTheMachinesPath(@TempDir Path empty) {
        String before = System.getProperty("lowbit.data");
        System.setProperty("lowbit.data", empty.toString());
        try {
            String line = Lab.mmluAbsence().orElseThrow();
            assertTrue(line.startsWith("no MMLU data: data/mmlu/test/*_test.csv not found"), line);
            assertTrue(!line.contains(empty.toString()), line);
        } finally {
            if (before == null) System.clearProperty("lowbit.data");
            else System.setProperty("lowbit.data", before);
        }
    }

    @Test
    void mmluScoresTheFixtureAsTheEvalCommand(@TempDir Path tmp) throws Exception {
        assumeTrue(Model.available("stories260K"), "stories260K not in the data directory (./lowbit setup)");
        Path fixture = Path.of(ModelTest.class.getResource("/mmlu/test").toURI()).getParent();
        for (String split : new String[] {"dev", "test"}) {
            java.nio.file.Files.createDirectories(tmp.resolve("mmlu").resolve(split));
            try (var files = java.nio.file.Files.list(fixture.resolve(split))) {
                for (Path f : files.toList()) java.nio.file.Files.copy(f, tmp.resolve("mmlu").resolve(split).resolve(f.getFileName()));
            }
        }
        try (Model m = Model.load("stories260K")) {
            String before = System.getProperty("lowbit.data");
            System.setProperty("lowbit.data", tmp.toString());
            try {
                assertTrue(Lab.mmluAbsence().isEmpty());
                Row row = m.mmlu(2);
                assertEquals(4, ((Number) row.get("items")).intValue(), "two subjects, the first two items of each");
                assertEquals(5, ((Number) row.get("num_fewshot")).intValue());
                double acc = ((Number) row.at("metrics.acc")).doubleValue();
                assertTrue(acc >= 0 && acc <= 1, row.toString());
            } finally {
                if (before == null) System.clearProperty("lowbit.data");
                else System.setProperty("lowbit.data", before);
            }
        }
    }
}
