package lowbit.studies;

import lowbit.quant.mixed.BitAllocator;
import lowbit.quant.mixed.LayerOption;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import lowbit.plots.HtmlTest;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.results.ResultStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

/** The whole study, small, on the real tiny model stories260K (5 blocks, 35 linears, hidden 64). */
class StudyTest {
    static StudyPlan tiny(String model) {
        return new StudyPlan(model, "wikitext2", 128, 2, 4, 128, 2, 0,
                List.of("rtn:w8", "rtn:w4g32", "gptq:w4g32", "awq:w4g32", "smoothquant:w8a8", "rtn:w4g32+kv4"),
                "rtn:w3g32", 128, 1,
                List.of(2, 3, 4, 8), 32, List.of(3, 4), List.of(3.5), List.of("rtn"),
                List.of("rtn:w3g32", "gptq:w3g32"), List.of(2, 4), List.of(0L, 1L),
                List.of("c4", "tasks:lambada_openai"), 4, 2, "ppl",
                List.of("piqa", "winogrande"), 3, List.of("rtn:w4g32"));
    }

    @Test
    void runsEveryPartResumesAndReportsEveryChart(@TempDir Path tmp) throws Exception {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        StudyPlan plan = tiny(bin.toString());
        Path dir = tmp.resolve("results");
        Study.Result r = Study.run(plan, dir, 2, Progress.NONE);

        assertEquals(1 + 6, r.methods().rowCount(), "fp + every spec");
        assertEquals(35, r.sensitivity().rowCount(), "one row per linear");
        assertEquals(35 * 4, r.proxies().rowCount(), "one row per linear and candidate width");
        assertEquals(2 + 2 * 3, r.mixed().rowCount(), "2 uniform + 3 targets for each of 2 predictors");
        assertEquals(1.0, value(r.methods(), "fp", "ppl_vs_fp"), 0);
        assertTrue(value(r.methods(), "rtn:w8", "ppl_vs_fp") < 1.01, "8-bit weights are near lossless");
        assertTrue(value(r.methods(), "rtn:w4g32", "ppl") > value(r.methods(), "rtn:w8", "ppl"), "4 bits cost more than 8");
        // KL divergence beside every quantized perplexity, from one float reference cached beside the store
        assertEquals("fp", r.methods().stringColumn("spec").get(0));
        assertTrue(r.methods().doubleColumn("kld_mean").isMissing(0), "the float model is the reference");
        for (int i = 1; i < r.methods().rowCount(); i++)
            assertTrue(r.methods().doubleColumn("kld_mean").get(i) > 0, "KLD of " + r.methods().stringColumn("spec").get(i));
        assertTrue(value(r.methods(), "rtn:w8", "kld_mean") < value(r.methods(), "rtn:w4g32", "kld_mean"), "8 bits diverge less than 4");
        assertTrue(value(r.methods(), "rtn:w8", "same_top_p") > value(r.methods(), "rtn:w4g32", "same_top_p"));
        try (var refs = Files.list(dir.resolve(Study.KLD_CACHE))) {
            assertEquals(1, refs.count(), "one float reference for every configuration");
        }

        // Mixed allocations stay within their budget (the quantized model's own count) and, at a uniform width's
        // bits, predict no more loss than uniform (which is one of the feasible allocations).
        Table mix = r.mixed();
        for (int i = 0; i < mix.rowCount(); i++) {
            if (!mix.stringColumn("allocation").get(i).startsWith("mixed")) continue;
            assertTrue(mix.doubleColumn("bits_per_weight").get(i) <= mix.doubleColumn("target_bits").get(i) + 1e-9,
                    "mixed row " + i + " over budget: " + mix.row(i));
            Path map = dir.resolve(mix.stringColumn("bits_map").get(i));
            assertEquals(35, BitsMap.read(map).layers().size(), "the bits map lists every linear");
        }
        assertEquals("mixed (hessian proxy)", mix.stringColumn("allocation").get(2));
        for (int u = 0; u < 2; u++)
            assertTrue(mix.doubleColumn("predicted_loss").get(2 + u) <= mix.doubleColumn("predicted_loss").get(u) + 1e-12,
                    "mixed at uniform " + (u + 3) + "-bit's budget predicts no more loss");
        assertEquals(1 + 2, r.ablation().rowCount(), "rtn control + gptq at 2 sizes (seeds summarized)");
        assertEquals(2, r.diversity().rowCount());
        // zero-shot rows for the float model and the one spec asked, each task on the first 3 items
        assertEquals(2 * 2, r.zeroShot().rowCount(), "(fp, rtn:w4g32) x (piqa, winogrande)");
        for (int i = 0; i < r.zeroShot().rowCount(); i++) {
            assertEquals(3, r.zeroShot().intColumn("items").get(i));
            double acc = r.zeroShot().doubleColumn("acc").get(i);
            assertTrue(acc == 0 || acc == 1.0 / 3 || acc == 2.0 / 3 || acc == 1, "an accuracy over 3 items: " + acc);
        }
        assertEquals(List.of("fp", "rtn:w4g32"), StudyReport.zeroShotWide(r.zeroShot()).stringColumn("spec").asList());

        // A re-run computes nothing and reads the same numbers.
        int rows = r.store().size();
        Study.Result again = Study.run(plan, dir, 1, Progress.NONE);
        assertEquals(0, again.experimentsRun());
        assertEquals(rows, ResultStore.open(dir.resolve("store.jsonl")).size());
        assertEquals(r.methods().doubleColumn("ppl").asList(), again.methods().doubleColumn("ppl").asList());
        assertEquals(r.statistics().rowCount(), again.statistics().rowCount());

        // An interrupted run (the last rows never written) resumes: only the missing rows run, with the same
        // numbers, on another thread count.
        Path store = dir.resolve("store.jsonl");
        List<String> lines = Files.readAllLines(store, StandardCharsets.UTF_8);
        Files.write(store, lines.subList(0, lines.size() - 5), StandardCharsets.UTF_8);
        Study.Result resumed = Study.run(plan, dir, 1, Progress.NONE);
        assertEquals(5, resumed.experimentsRun());
        assertEquals(r.ablation().doubleColumn("ppl_mean").asList(), resumed.ablation().doubleColumn("ppl_mean").asList());
        assertEquals(r.diversity().doubleColumn("ppl_mean").asList(), resumed.diversity().doubleColumn("ppl_mean").asList());

        Path index = StudyReport.write(resumed);
        String html = Files.readString(index);
        HtmlTest.assertBalanced(html);
        List<String> titles = List.of("Weight kurtosis (Pearson) by block and module", "Weight std by block and module",
                "Linear input kurtosis by block and input", "Largest per-channel max |x| of linear inputs", "K/V cache kurtosis by block",
                "Hessian trace", "Perplexity vs bits per weight", "KL divergence to the float model vs bits per weight",
                "Zero-shot accuracy vs bits per weight",
                "Perplexity of every configuration",
                "Perplexity increase with one linear quantized (top 30)", "Measured sensitivity (perplexity increase) by block and module",
                "Mixed precision vs uniform", "Perplexity vs calibration samples", "Calibration text: perplexity per source");
        assertEquals(titles.size(), count(html, "class=\"lowbit-figure\""), "one div per chart");
        for (String t : titles) assertTrue(html.contains(t.replace("|", "|")), "report lacks the chart '" + t + "'");
        assertEquals(1, count(html, "id=\"lowbit-plotly-js\""), "plotly.js inlined once");
        for (String f : StudyReport.findings(resumed)) assertTrue(html.contains(f.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")));
    }

    @Test
    void sensitivityCanUseMeanKlDivergenceAsItsLoss(@TempDir Path tmp) throws Exception {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        StudyPlan plan = tiny(bin.toString()).toBuilder().sensitivityLoss("kld").build();
        ResultStore store = ResultStore.open(tmp.resolve("store.jsonl"));
        try (var ckpt = lowbit.checkpoint.Checkpoints.open(bin.toString(), null);
             var model = lowbit.checkpoint.Checkpoints.load(ckpt, 2)) {
            Table t = Study.measuredSensitivity(plan, store, ckpt.sha256(), model, ckpt, 2, tmp.resolve("kld"), Progress.NONE);
            assertEquals(35, t.rowCount());
            for (int i = 0; i < t.rowCount(); i++) assertTrue(t.doubleColumn("kld_mean").get(i) > 0, t.row(i).toString());
            // the linear that hurts perplexity most alone also moves the distribution more than the median linear
            int worst = t.doubleColumn("ppl_increase").asList().indexOf(t.doubleColumn("ppl_increase").max());
            assertTrue(t.doubleColumn("kld_mean").get(worst) > t.doubleColumn("kld_mean").median(), t.toString());
            var shapes = new java.util.LinkedHashMap<String, int[]>();
            for (int l = 0; l < model.config().numLayers(); l++)
                for (var lin : model.blockLinears(l)) shapes.put(lin.name(), new int[] {lin.outFeatures(), lin.inFeatures()});
            Table proxies = Table.create("p", tech.tablesaw.api.StringColumn.create("name"), tech.tablesaw.api.IntColumn.create("bits"),
                    tech.tablesaw.api.DoubleColumn.create("hessian_error"));
            for (String n : shapes.keySet()) {
                proxies.stringColumn("name").append(n);
                proxies.intColumn("bits").append(3);
                proxies.doubleColumn("hessian_error").append(1.0);
            }
            List<LayerOption> m = Study.options(Study.Predictor.MEASURED, plan, shapes, proxies, t);
            assertEquals(t.doubleColumn("kld_mean").get(0), m.get(0).predictedLoss(), 1e-15, "the measured loss is the mean KLD");
        }
        int rows = store.size();
        try (var ckpt = lowbit.checkpoint.Checkpoints.open(bin.toString(), null);
             var model = lowbit.checkpoint.Checkpoints.load(ckpt, 1)) {
            Study.measuredSensitivity(plan, store, ckpt.sha256(), model, ckpt, 1, tmp.resolve("kld"), Progress.NONE);
        }
        assertEquals(rows, store.size(), "a re-run reads every row");
    }

    @Test
    void refusesInconsistentPlans() {
        StudyPlan.Builder p = tiny("stories260K").toBuilder();
        assertTrue(assertThrows(IllegalArgumentException.class, () -> p.sensitivitySpec("gptq:w3g32").build()).getMessage().contains("rtn spec"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> p.sensitivitySpec("rtn:w5g32").build()).getMessage().contains("allocation widths"));
        var windows = assertThrows(IllegalArgumentException.class, () -> p.sensitivitySpec("rtn:w3g32").evalWindows(-1).build());
        assertTrue(windows.getMessage().contains("--eval-windows") && windows.getMessage().contains("got -1"), windows.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.evalWindows(2).methods(List.of("rtn:w4g99999999999")).build());
        StudyPlan full = StudyPlan.full("m");
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), full.ablationSeeds());
        assertEquals(0, full.evalWindows());
        assertEquals(StudyPlan.quick("m").allocationBits(), full.allocationBits(), "full keeps what it does not change");
        assertEquals(List.of(7L), StudyPlan.quick("m").toBuilder().ablationSeeds(List.of(7L)).build().ablationSeeds());
    }

    @Test
    void refusesASpecThatDoesNotFitTheModelBeforeAnyWork(@TempDir Path tmp) {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Study.run(StudyPlan.quick(bin.toString()), tmp, 1, Progress.NONE));
        assertTrue(e.getMessage().contains("group size 128 is wider than the narrowest linear input (64 columns)"), e.getMessage());
        assertEquals(0, ResultStore.open(tmp.resolve("store.jsonl")).size(), "nothing was run");
    }

    @Test
    void measuredPredictorCarriesTheMeasuredIncreaseToOtherWidthsByTheHessianRatio() {
        Table proxies = Table.create("p", tech.tablesaw.api.StringColumn.create("name", "a", "a", "b", "b"),
                tech.tablesaw.api.IntColumn.create("bits", 3, 4, 3, 4),
                tech.tablesaw.api.DoubleColumn.create("hessian_error", 2.0, 0.5, 8.0, 1.0));
        Table measured = Table.create("m", tech.tablesaw.api.StringColumn.create("name", "a", "b"),
                tech.tablesaw.api.DoubleColumn.create("ppl", 11.0, 9.9),
                tech.tablesaw.api.DoubleColumn.create("ppl_increase", 1.0, -0.1));
        StudyPlan plan = tiny("stories260K");
        var shapes = java.util.Map.of("a", new int[] {4, 64}, "b", new int[] {4, 64});
        List<LayerOption> m = Study.options(Study.Predictor.MEASURED, plan, shapes, proxies, measured);
        assertEquals(Math.log(1.1), m.get(0).predictedLoss(), 1e-12, "a at the sensitivity width: its measured dNLL");
        assertEquals(Math.log(1.1) * 0.25, m.get(1).predictedLoss(), 1e-12, "a at 4 bits: scaled by 0.5 / 2");
        assertEquals(1e-6, m.get(2).predictedLoss(), 0, "b got better alone (noise): floored");
        assertEquals(1e-6 / 8, m.get(3).predictedLoss(), 1e-18);
        List<LayerOption> h = Study.options(Study.Predictor.HESSIAN, plan, shapes, proxies, measured);
        assertEquals(0.5, h.get(1).predictedLoss(), 0);
        assertEquals(4 * 64, m.get(0).parameters());
    }

    private static double value(Table t, String spec, String col) {
        for (int i = 0; i < t.rowCount(); i++)
            if (t.stringColumn("spec").get(i).equals(spec)) return t.doubleColumn(col).get(i);
        throw new AssertionError("no row " + spec);
    }

    private static int count(String s, String part) {
        int n = 0;
        for (int i = s.indexOf(part); i >= 0; i = s.indexOf(part, i + 1)) n++;
        return n;
    }
}
