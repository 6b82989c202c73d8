package lowbit.studies;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import lowbit.progress.Progress;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

class CalibrationAblationTest {
    @Test
    void runsEachCellOnceWritesRowsAndSummarizesOverSeeds(@TempDir Path tmp) {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory");
        var eval = new CalibrationAblation.Evaluation(bin.toString(), "wikitext2", 64, 2);
        var cells = CalibrationAblation.grid(List.of("rtn:w4g32", "gptq:w4g32"), List.of("c4"), List.of(2, 4), 64, List.of(0L, 1L));
        assertEquals(1 + 4, cells.size(), "rtn once, gptq for 2 sizes x 2 seeds");
        Path file = tmp.resolve("results/ablation.jsonl");
        List<Row> first = CalibrationAblation.run(ResultStore.open(file), eval, cells, 1, Progress.NONE);
        assertEquals(5, ResultStore.open(file).size());
        List<Row> again = CalibrationAblation.run(ResultStore.open(file), eval, cells, 1, Progress.NONE);
        for (int i = 0; i < first.size(); i++)
            assertEquals(first.get(i).get("timestamp"), again.get(i).get("timestamp"), "a re-run reads the stored row, it does not recompute");
        assertEquals(5, ResultStore.open(file).size());

        Table s = CalibrationAblation.summary(first);
        assertEquals(3, s.rowCount());
        // gptq with 2 samples: two seeds; mean, sample std, and the t(0.975, 1) = 12.706 interval of the mean log
        // perplexity by hand: the std of two logs is |ln a - ln b| / sqrt(2), so the half-width is 12.706 |ln(a/b)| / 2
        double a = ((Number) first.get(1).get("ppl")).doubleValue(), b = ((Number) first.get(2).get("ppl")).doubleValue();
        assertEquals(2, ((Number) first.get(1).get("nsamples")).intValue());
        double mean = (a + b) / 2, std = Math.abs(a - b) / Math.sqrt(2);
        assertEquals(mean, s.doubleColumn("ppl_mean").get(1), 1e-12);
        assertEquals(std, s.doubleColumn("ppl_std").get(1), 1e-12);
        double geo = Math.sqrt(a * b), half = 12.7062047 * Math.abs(Math.log(a / b)) / 2;
        assertEquals(geo, s.doubleColumn("ppl_geomean").get(1), 1e-9);
        assertEquals(geo * Math.exp(half), s.doubleColumn("ci95_high").get(1), 1e-6 * geo * Math.exp(half));
        assertEquals(geo * Math.exp(-half), s.doubleColumn("ci95_low").get(1), 1e-6 * geo);
        assertTrue(s.doubleColumn("ci95_low").get(1) > 0, "a perplexity interval never goes below zero");
        assertNotEquals(a, b, "different seeds draw different calibration windows");
        assertTrue(s.doubleColumn("ppl_std").isMissing(0), "the rtn control runs once: no spread");
    }
}
