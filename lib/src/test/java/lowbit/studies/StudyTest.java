package lowbit.studies;

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
import lowbit.quant.mixed.Comparison;
import lowbit.quant.mixed.MixedPrecision;
import lowbit.results.ResultStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.Table;

/** The whole study, small, on the real tiny model stories260K (5 blocks, 35 linears, hidden 64). */
class StudyTest {
    static StudyPlan tiny(String model) {
        return new StudyPlan(model, "wikitext2", 128, 2, 4, 128, 2, 0,
                List.of("rtn:w8", "rtn:w4g32", "gptq:w4g32", "awq:w4g32", "smoothquant:w8a8", "rtn:w4g32+kv4"),
                List.of(2, 3, 4, 8), 32, 3, List.of(3, 4), List.of(3.5), List.of("rtn", "gptq"), List.of(0L, 1L),
                new MixedPrecision.Windows(2, 2, 64, 0), 4, 64, 4,
                List.of("rtn:w3g32", "gptq:w3g32"), List.of(2, 4), List.of(0L, 1L),
                List.of("c4", "tasks:lambada_openai"), 4, 2,
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
        assertEquals(3 * (Comparison.allocationNames("rtn").size() + Comparison.allocationNames("gptq").size()), r.mixed().rowCount(),
                "(w3, w4, 3.5) x every allocation of rtn and of gptq (which adds its assembled answer)");
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

        // Sensitivity: every linear measured on both halves of the windows; the predictors correlated with it.
        for (int i = 0; i < 35; i++) assertTrue(r.sensitivity().doubleColumn("kld").get(i) > 0, r.sensitivity().row(i).toString());
        assertEquals(List.of("kld (split halves)", "hessian", "fisher", "kurtosis", "weight kurtosis alone", "activation kurtosis alone"),
                r.correlations().stringColumn("predictor").asList());
        double splitHalf = r.correlations().doubleColumn("spearman").get(0);
        assertTrue(splitHalf > -1 && splitHalf <= 1, "split-half Spearman " + splitHalf);

        // Every (method, budget, allocation) ran once per seed; mixed stays within its budget, uniform is at it, and each
        // mixed allocation's bits map lists every linear.
        Table mix = r.mixed();
        for (int i = 0; i < mix.rowCount(); i++) {
            assertEquals(2, mix.intColumn("runs").get(i), "two seeds: " + mix.row(i));
            assertTrue(mix.doubleColumn("bits_per_weight").get(i) <= mix.doubleColumn("target_bits").get(i) + 1e-9, "over budget: " + mix.row(i));
            assertTrue(mix.doubleColumn("kld_lo").get(i) <= mix.doubleColumn("kld").get(i) && mix.doubleColumn("kld").get(i) <= mix.doubleColumn("kld_hi").get(i));
        }
        // RTN's targets in the plan's order, by hand: each row of a linear stores its codes, and per group of 32 columns
        // (the last one shorter) a 16-bit scale and a zero of the width; then 3.5 as written
        assertEquals(storedBitsPerWeight(bin, 3, 32) + 1e-9, target(mix, "rtn", 0), 1e-12);
        assertEquals(storedBitsPerWeight(bin, 4, 32) + 1e-9, target(mix, "rtn", 1), 1e-12);
        assertEquals(3.5, target(mix, "rtn", 2), 0);
        assertEquals("uniform", mix.stringColumn("allocation").get(0));
        assertEquals(mix.doubleColumn("target_bits").get(0) - 1e-9, mix.doubleColumn("bits_per_weight").get(0), 1e-12,
                "the first target is uniform w3g32's bits per weight");
        assertEquals(2 * 2 * 3, r.allocations().rowCount(), "one mixed allocation per method, seed and target");
        for (int i = 0; i < r.allocations().rowCount(); i++) {
            assertEquals(35, BitsMap.read(dir.resolve(r.allocations().stringColumn("bits_map").get(i))).layers().size(), "the bits map lists every linear");
            assertTrue(r.allocations().doubleColumn("selection_kld").get(i) <= r.allocations().doubleColumn("uniform_selection_kld").get(i),
                    "never worse than uniform on the selection windows: " + r.allocations().row(i));
        }
        // the summary is a function of the stored rows: each row carries its per-window KL divergence and NLL
        List<Comparison.Entry> entries = new java.util.ArrayList<>();
        for (var row : r.store().rows())
            if ("mixed-precision".equals(row.get("study"))) entries.add(MixedStudy.entry(row));
        assertEquals(2 * 3 * (Comparison.allocationNames("rtn").size() + Comparison.allocationNames("gptq").size()), entries.size());
        for (var e : entries) assertEquals(4, e.kld().length, "one KL divergence per held-out window");
        assertEquals(mix.doubleColumn("kld").asList(), Comparison.summary(entries).doubleColumn("kld").asList());

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

        // An interrupted run (the last rows never written, and one mixed row lost) resumes: only the missing rows run,
        // with the same numbers, on another thread count; a mixed-precision session whose rows are all stored is not
        // prepared again (one sensitivity measurement: the session that lost a row).
        Path store = dir.resolve("store.jsonl");
        List<String> lines = new java.util.ArrayList<>(Files.readAllLines(store, StandardCharsets.UTF_8));
        lines = lines.subList(0, lines.size() - 5);
        int lost = -1;
        for (int i = 0; i < lines.size(); i++)
            if (lines.get(i).contains("\"allocation\":\"random 5\"") && lines.get(i).contains("\"method\":\"gptq\"")) lost = i;
        assertTrue(lost >= 0, "a gptq random-5 row is stored");
        String lostKey = ResultStore.open(store).rows().stream().filter(x -> "random 5".equals(x.get("allocation")) && "gptq".equals(x.get("method")))
                .reduce((a, b) -> b).orElseThrow().key();
        lines.remove(lost);
        Files.write(store, lines, StandardCharsets.UTF_8);
        List<String> tasks = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
        Progress recording = (name, total, unit) -> {
            tasks.add(name);
            return Progress.NONE.start(name, total, unit);
        };
        Study.Result resumed = Study.run(plan, dir, 1, recording);
        assertEquals(5 + 1, resumed.experimentsRun());
        assertTrue(ResultStore.open(store).contains(lostKey));
        assertEquals(1, tasks.stream().filter(t -> t.equals("sensitivity (kld)")).count(), "only the session that lost a row is prepared: " + tasks);
        assertEquals(r.mixed().doubleColumn("kld").asList(), resumed.mixed().doubleColumn("kld").asList(), "the recomputed row is the same");
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
                "KL divergence to the float model with one linear quantized (top 30)",
                "Measured sensitivity (KL divergence with one linear quantized) by block and module",
                "Mixed precision vs uniform and the baselines at equal bits", "Perplexity vs calibration samples",
                "Calibration text: perplexity per source");
        assertEquals(titles.size(), count(html, "class=\"lowbit-figure\""), "one div per chart");
        for (String t : titles) assertTrue(html.contains(t.replace("|", "|")), "report lacks the chart '" + t + "'");
        assertEquals(1, count(html, "id=\"lowbit-plotly-js\""), "plotly.js inlined once");
        for (String f : StudyReport.findings(resumed)) assertTrue(html.contains(f.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")));
    }

    @Test
    void refusesInconsistentPlans() {
        StudyPlan.Builder p = tiny("stories260K").toBuilder();
        assertEquals("study: the probe width 5 is not one of the candidates [2, 3, 4, 8]",
                assertThrows(IllegalArgumentException.class, () -> p.probeBits(5).build()).getMessage());
        assertEquals("--candidates [2, 9]: width 9 is outside 2..8",
                assertThrows(IllegalArgumentException.class, () -> p.probeBits(2).candidates(List.of(2, 9)).build()).getMessage());
        assertEquals("study: uniform target 8 is not a candidate width [2, 3, 4]",
                assertThrows(IllegalArgumentException.class, () -> p.candidates(List.of(2, 3, 4)).uniformTargets(List.of(8)).build()).getMessage());
        assertEquals("study: allocations are evaluated with rtn or gptq, got awq",
                assertThrows(IllegalArgumentException.class, () -> p.uniformTargets(List.of(3)).allocationMethods(List.of("awq")).build()).getMessage());
        assertEquals("study: allocation seeds [1, 1] list a seed twice",
                assertThrows(IllegalArgumentException.class, () -> p.allocationMethods(List.of("rtn")).allocationSeeds(List.of(1L, 1L)).build()).getMessage());
        assertEquals("study: held-out windows must be >= 1, got 0",
                assertThrows(IllegalArgumentException.class, () -> p.allocationSeeds(List.of(0L)).heldOutWindows(0).build()).getMessage());
        var windows = assertThrows(IllegalArgumentException.class, () -> p.heldOutWindows(4).evalWindows(-1).build());
        assertTrue(windows.getMessage().contains("--eval-windows") && windows.getMessage().contains("got -1"), windows.getMessage());
        assertThrows(IllegalArgumentException.class, () -> p.evalWindows(2).methods(List.of("rtn:w4g99999999999")).build());
        StudyPlan full = StudyPlan.full("m"), quick = StudyPlan.quick("m");
        assertEquals(List.of(0L, 1L, 2L, 3L, 4L), full.ablationSeeds());
        assertEquals(0, full.evalWindows());
        assertEquals(List.of(2, 3, 4, 8), quick.candidates());
        assertEquals(quick.candidates(), full.candidates(), "full keeps what it does not change");
        assertEquals(List.of("rtn"), quick.allocationMethods());
        assertEquals(List.of(0L), quick.allocationSeeds());
        assertEquals(List.of("rtn", "gptq"), full.allocationMethods());
        assertEquals(List.of(0L, 1L, 2L), full.allocationSeeds());
        assertEquals(16, full.heldOutWindows());
        assertEquals(List.of(7L), quick.toBuilder().ablationSeeds(List.of(7L)).build().ablationSeeds());
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

    private static double storedBitsPerWeight(Path bin, int bits, int group) {
        long stored = 0, weights = 0;
        try (var ckpt = lowbit.checkpoint.Checkpoints.open(bin.toString(), null); var model = lowbit.checkpoint.Checkpoints.load(ckpt, 1)) {
            for (int l = 0; l < model.config().numLayers(); l++)
                for (var lin : model.blockLinears(l)) {
                    long groups = (lin.inFeatures() + group - 1) / group;
                    stored += (long) lin.outFeatures() * (lin.inFeatures() * bits + groups * (16 + bits));
                    weights += (long) lin.outFeatures() * lin.inFeatures();
                }
        }
        return (double) stored / weights;
    }

    /** The target of the {@code k}-th (method, target) group of the summary. */
    private static double target(Table mix, String method, int k) {
        java.util.LinkedHashSet<Double> targets = new java.util.LinkedHashSet<>();
        for (int i = 0; i < mix.rowCount(); i++) if (mix.stringColumn("method").get(i).equals(method)) targets.add(mix.doubleColumn("target_bits").get(i));
        return List.copyOf(targets).get(k);
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
