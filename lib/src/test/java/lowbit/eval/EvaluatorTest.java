package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.MemoryCheckpoint;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The one evaluation runner on the real tiny model stories260K (vocabulary 512, context 512). */
class EvaluatorTest {

    private static String stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        return bin.toString();
    }

    private static EvaluatedModel load() {
        return EvaluatedModel.load(Checkpoints.open(stories(), null), 2);
    }

    @Test
    void c4TrainSliceIsCappedAt256WindowsWhateverTheCaller() {
        try (EvaluatedModel m = load()) {
            int[] ids = Evaluator.tokens(m.checkpoint(), m.tokenizer(), TextDatasets.load("c4-train-slice"));
            int seqlen = 16;
            assertTrue(ids.length / seqlen > 256, "the slice has more than 256 windows of 16 tokens: " + ids.length / seqlen);
            Evaluator.Request all = new Evaluator.Request("c4-train-slice", seqlen, 0);
            assertEquals(256, all.cappedWindows());
            assertEquals(10, new Evaluator.Request("c4-train-slice", seqlen, 10).cappedWindows());
            assertEquals(0, new Evaluator.Request("wikitext2", seqlen, 0).cappedWindows(), "wikitext2: every window");
            Evaluator.Report r = Evaluator.perplexity(m, all, Evaluator.Options.of(Progress.NONE));
            assertEquals(256, r.perplexity().windows());
            assertEquals(256, r.fields().get("window_cap"));
            // the same windows as the protocol's own loop over the first 256 windows
            double direct = Perplexity.evaluate(m.transformer(), ids, seqlen, 256, Progress.NONE).nllSum();
            assertEquals(direct, r.perplexity().nllSum(), 0.0);
        }
    }

    @Test
    void quantizedModelDivergesFromItsFloatModelConsistentlyWithItsPerplexity(@TempDir Path cache) {
        Evaluator.Request req = new Evaluator.Request("wikitext2", 64, 6);
        double floatNll;
        try (EvaluatedModel f = load()) {
            Evaluator.Report ref = Evaluator.ensureReference(f, req, cache, Progress.NONE);
            assertNotNull(ref, "no reference yet: the float model ran");
            assertNull(ref.kld());
            assertNull(Evaluator.ensureReference(f, req, cache, Progress.NONE), "the second time it is cached");
            floatNll = Evaluator.perplexity(f, req, Evaluator.Options.of(Progress.NONE)).perplexity().nllSum();
            // the reference's pass gives the float model's perplexity too, from float32 log-probs
            assertEquals(floatNll, ref.perplexity().nllSum(), 1e-5 * Math.abs(floatNll));
        }
        try (EvaluatedModel q = load()) {
            q.quantize(QuantizationRecipe.of("rtn:w3"), Progress.NONE);
            double plain = Evaluator.perplexity(q, req, Evaluator.Options.of(Progress.NONE)).perplexity().nllSum();
            Evaluator.Report r = Evaluator.perplexity(q, req, Evaluator.Options.of(Progress.NONE).withKld(cache));
            KlDivergence.Stats k = r.kld();
            assertNotNull(k);
            assertEquals(plain, r.perplexity().nllSum(), 1e-5 * Math.abs(plain), "perplexity from the same forward pass as the KL");
            assertEquals(6 * 63, k.positions());
            assertTrue(k.mean() > 0 && k.median() > 0 && k.max() >= k.p99() && k.p99() >= k.p95() && k.p95() >= k.p90()
                    && k.p90() >= k.median(), k.toString());
            assertTrue(k.sameTop() > 0 && k.sameTop() < 1, k.toString());
            long predicted = 6 * 63;
            // ln(PPL_q / PPL_f) is the mean NLL difference over the same positions
            assertEquals((plain - floatNll) / predicted, k.lnPplRatio(), 1e-5);
            assertEquals(Math.exp(floatNll / predicted), k.pplFloat(), 1e-4 * k.pplFloat());
            assertTrue(k.lnPplRatioStderr() > 0 && k.meanStderr() > 0 && k.rmsDp() > 0);
            Row row = r.row(Map.of("study", "test", "spec", "rtn:w3"));
            assertEquals(k.mean(), ((Number) row.at("kld.mean")).doubleValue(), 0);
            assertEquals("test", row.get("study"));
            assertNotNull(row.get("code_version"));
        }
    }

    @Test
    void aQuantizedModelWithoutItsReferenceIsRefusedInOneLine(@TempDir Path cache) {
        try (EvaluatedModel q = load()) {
            q.quantize(QuantizationRecipe.of("rtn:w4"), Progress.NONE);
            var e = assertThrows(IllegalArgumentException.class, () -> Evaluator.perplexity(q, new Evaluator.Request("wikitext2", 32, 2),
                    Evaluator.Options.of(Progress.NONE).withKld(cache)));
            assertTrue(e.getMessage().contains("no float reference") && !e.getMessage().contains("\n"), e.getMessage());
        }
    }

    @Test
    void selfAndDifferentVocabularyComparisonsAreRefused() {
        try (EvaluatedModel f = load(); EvaluatedModel same = load()) {
            var self = assertThrows(IllegalArgumentException.class, () -> Evaluator.checkComparable(f, same));
            assertTrue(self.getMessage().contains("against itself"), self.getMessage());
            MemoryCheckpoint mem = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 3); // vocabulary 96
            try (Transformer t = Checkpoints.load(mem, 1)) {
                QuantizationRecipe.Outcome o = QuantizationRecipe.of("rtn:w4").apply(t, null, Progress.NONE);
                EvaluatedModel other = EvaluatedModel.of(mem, t, null, o);
                var vocab = assertThrows(IllegalArgumentException.class, () -> Evaluator.checkComparable(f, other));
                assertTrue(vocab.getMessage().contains("512") && vocab.getMessage().contains("96"), vocab.getMessage());
            }
        }
    }

    @Test
    void aReferenceTooLargeForTheLimitIsNamedBeforeAnyWork(@TempDir Path cache) {
        try (EvaluatedModel m = load()) {
            Evaluator.Request req = new Evaluator.Request("wikitext2", 64, 4);
            assertNull(Evaluator.referenceTooLarge(m, req, cache));
            String old = System.getProperty("lowbit.kld.maxBytes");
            System.setProperty("lowbit.kld.maxBytes", "100000");
            try {
                // 4 windows x 63 positions x 512 entries x 4 bytes = 516 kB
                String why = Evaluator.referenceTooLarge(m, req, cache);
                assertTrue(why != null && why.contains("4 windows x 63 positions x 512 vocabulary entries"), why);
                var e = assertThrows(IllegalArgumentException.class, () -> Evaluator.ensureReference(m, req, cache, Progress.NONE));
                assertTrue(e.getMessage().contains("--windows"), e.getMessage());
            } finally {
                if (old == null) System.clearProperty("lowbit.kld.maxBytes");
                else System.setProperty("lowbit.kld.maxBytes", old);
            }
        }
    }

    @Test
    void kldAndJournalAreNotCombined(@TempDir Path tmp) {
        var e = assertThrows(IllegalArgumentException.class,
                () -> new Evaluator.Options(Progress.NONE, PerplexityJournal.open(tmp.resolve("j")), w -> {}, tmp));
        assertTrue(e.getMessage().contains("--journal"), e.getMessage());
    }

    @Test
    void windowsPastTheContextWarnOnce() {
        try (EvaluatedModel m = load()) {
            List<String> warnings = new ArrayList<>();
            Evaluator.Report r = Evaluator.perplexity(m, new Evaluator.Request("wikitext2", 600, 1),
                    Evaluator.Options.of(Progress.NONE).withWarnings(warnings::add));
            assertEquals(1, warnings.size());
            assertTrue(warnings.get(0).contains("512"), warnings.toString());
            assertEquals(true, r.fields().get("beyond_context"));
        }
    }

    @Test
    void referenceFilesAreCheckedAgainstTheirKeyAndSizeLimit(@TempDir Path dir) throws Exception {
        FloatReference.Key key = new FloatReference.Key("abc", 4, 3, 2, "tok");
        try (FloatReference.Writer w = FloatReference.create(dir, key)) {
            for (int win = 0; win < 2; win++)
                for (int pos = 0; pos < 2; pos++) w.row(win, pos, new float[] {win, pos, -1, -2});
            assertTrue(!FloatReference.exists(dir, key), "invisible until committed");
            w.commit();
        }
        try (FloatReference r = FloatReference.open(dir, key)) {
            float[] row = new float[4];
            r.row(1, 0, row);
            assertEquals(1f, row[0]);
            assertEquals(0f, row[1]);
            assertEquals(-2f, row[3]);
        }
        // a file renamed onto another key's name is refused, not read
        FloatReference.Key other = new FloatReference.Key("abd", 4, 3, 2, "tok");
        Files.copy(FloatReference.file(dir, key), FloatReference.file(dir, other));
        var e = assertThrows(FormatException.class, () -> FloatReference.open(dir, other));
        assertTrue(e.getMessage().contains("abc"), e.getMessage());
        // a truncated file
        FloatReference.Key third = new FloatReference.Key("abe", 4, 3, 2, "tok");
        try (FloatReference.Writer w = FloatReference.create(dir, third)) {
            w.commit();
        }
        byte[] bytes = Files.readAllBytes(FloatReference.file(dir, third));
        Files.write(FloatReference.file(dir, third), java.util.Arrays.copyOf(bytes, bytes.length - 4));
        assertThrows(FormatException.class, () -> FloatReference.open(dir, third));
        // an abandoned writer leaves nothing behind
        try (FloatReference.Writer w = FloatReference.create(dir, new FloatReference.Key("x", 4, 3, 2, "tok"))) {
            w.row(0, 0, new float[4]);
        }
        try (var files = Files.list(dir)) {
            assertEquals(3, files.count());
        }
        String old = System.getProperty("lowbit.kld.maxBytes");
        System.setProperty("lowbit.kld.maxBytes", "1000");
        try {
            var big = assertThrows(IllegalArgumentException.class,
                    () -> FloatReference.create(dir, new FloatReference.Key("m", 49152, 2048, 2, "t")));
            assertTrue(big.getMessage().contains("GB") && big.getMessage().contains("--windows"), big.getMessage());
        } finally {
            if (old == null) System.clearProperty("lowbit.kld.maxBytes");
            else System.setProperty("lowbit.kld.maxBytes", old);
        }
    }
}
