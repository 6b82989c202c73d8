package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.MemoryCheckpoint;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The evaluation loop's own guarantees: journal resumption, non-finite losses, context length. */
class PerplexityTest {
    private static final int SEQLEN = 16;

    /** Token ids in [0, vocab) without {@code avoid}, so a test can place that token in one chosen window. */
    private static int[] tokens(int count, int vocab, int avoid) {
        SplittableRandom rnd = new SplittableRandom(7);
        int[] ids = new int[count];
        for (int i = 0; i < count; i++) {
            int t;
            do t = rnd.nextInt(vocab); while (t == avoid);
            ids[i] = t;
        }
        return ids;
    }

    private static Transformer model(MemoryCheckpoint ckpt) {
        return Checkpoints.load(ckpt, 1);
    }

    @Test
    void tornLastRecordIsIgnoredRecomputedAndTheNextRecordStartsOnAFreshLine(@TempDir Path tmp) throws Exception {
        int[] ids = tokens(4 * SEQLEN, 96, -1);
        Path file = tmp.resolve("ppl.journal");
        try (Transformer m = model(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 1))) {
            Perplexity.Result fresh = Perplexity.evaluate(m, ids, SEQLEN, 3, Progress.NONE, PerplexityJournal.open(file), "exp");
            List<String> lines = Files.readAllLines(file);
            assertEquals(3, lines.size());
            // A kill in the middle of the third record's number: the bytes up to there reached the disk, no newline.
            String third = lines.get(2);
            int cut = third.indexOf("\"nll\":") + "\"nll\":".length() + 3;
            String torn = lines.get(0) + "\n" + lines.get(1) + "\n" + third.substring(0, cut);
            Files.writeString(file, torn, StandardCharsets.UTF_8);

            PerplexityJournal journal = PerplexityJournal.open(file);
            assertEquals(2, journal.finished("exp").size(), "the torn record does not count");
            assertEquals(1, journal.problems().size());
            assertTrue(journal.problems().get(0).reason().contains("torn"), journal.problems().toString());

            Perplexity.Result resumed = Perplexity.evaluate(m, ids, SEQLEN, 3, Progress.NONE, journal, "exp");
            assertEquals(2, resumed.resumedWindows());
            assertEquals(fresh.nllSum(), resumed.nllSum(), 0.0, "window 2 recomputed, not read from the fragment");

            String after = Files.readString(file, StandardCharsets.UTF_8);
            assertTrue(after.startsWith(torn + "\n{"), "the new record starts on its own line after the fragment: " + after);
            assertTrue(after.endsWith("\n"));
            PerplexityJournal reread = PerplexityJournal.open(file);
            assertEquals(3, reread.finished("exp").size());
            assertEquals(1, reread.problems().size(), "the fragment, now a complete line, is skipped as unparsable");
            assertFalse(reread.problems().get(0).reason().contains("torn"));
            assertEquals(3, Perplexity.evaluate(m, ids, SEQLEN, 3, Progress.NONE, reread, "exp").resumedWindows());
        }
    }

    @Test
    void journalKeepsExperimentsApart(@TempDir Path tmp) {
        int[] ids = tokens(2 * SEQLEN, 96, -1);
        PerplexityJournal journal = PerplexityJournal.open(tmp.resolve("j"));
        journal.record("other", 0, 1.5);
        try (Transformer m = model(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 1))) {
            Perplexity.Result r = Perplexity.evaluate(m, ids, SEQLEN, 0, Progress.NONE, journal, "exp");
            assertEquals(0, r.resumedWindows());
            assertEquals(r.nllSum(), Perplexity.evaluate(m, ids, SEQLEN, 0, Progress.NONE).nllSum(), 0.0);
        }
        assertEquals(1.5, journal.finished("other").get(0), 0.0);
    }

    @Test
    void journalThatCannotBeCreatedIsRefusedWithItsCause(@TempDir Path tmp) throws Exception {
        Path notADirectory = Files.writeString(tmp.resolve("plain"), "x");
        var e = assertThrows(java.io.UncheckedIOException.class, () -> PerplexityJournal.open(notADirectory.resolve("j")));
        assertTrue(e.getMessage().startsWith("--journal " + notADirectory.resolve("j")), e.getMessage());
        assertTrue(e.getCause() instanceof java.nio.file.FileSystemException, String.valueOf(e.getCause()));
    }

    /** Loading refuses non-finite weights, so a hook stands for a method that leaves a NaN in a linear's output. */
    @Test
    void nanOutputFailsNamingTheWindowAndTheLinear() throws Exception {
        try (Transformer m = model(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 3));
             AutoCloseable inject = m.addHook(new ForwardHook() {
                 @Override
                 public void linearOutput(Linear linear, float[] y, int rows) {
                     if (linear.name().equals("model.layers.1.mlp.down_proj")) y[5] = Float.NaN;
                 }
             })) {
            NonFiniteLossException e = assertThrows(NonFiniteLossException.class,
                    () -> Perplexity.evaluate(m, tokens(3 * SEQLEN, 96, -1), SEQLEN, 0, Progress.NONE));
            assertEquals(0, e.window());
            assertTrue(Double.isNaN(e.nll()));
            assertEquals(new NonFiniteProbe.Origin(NonFiniteProbe.Site.LINEAR_OUTPUT, "model.layers.1.mlp.down_proj", 1), e.origin());
            assertTrue(e.getMessage().startsWith("window 0 (tokens 0..15): NLL is NaN; first non-finite value: the output of "
                    + "model.layers.1.mlp.down_proj (layer 1)"), e.getMessage());
        }
    }

    /** A hook that starts writing +inf into layer 0's q/k/v input from the third forward pass on (window 2). */
    @Test
    void windowThatTurnsNonFiniteFailsAndTheFinishedOnesStayJournaled(@TempDir Path tmp) {
        PerplexityJournal journal = PerplexityJournal.open(tmp.resolve("j"));
        try (Transformer m = model(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 3));
             AutoCloseable inject = m.addHook(new ForwardHook() {
                 int passes;
                 @Override
                 public void linearInput(Linear linear, float[] x, int rows) {
                     if (!linear.name().equals("model.layers.0.self_attn.q_proj")) return;
                     if (++passes >= 3) x[2] = Float.POSITIVE_INFINITY;
                 }
             })) {
            NonFiniteLossException e = assertThrows(NonFiniteLossException.class,
                    () -> Perplexity.evaluate(m, tokens(4 * SEQLEN, 96, -1), SEQLEN, 0, Progress.NONE, journal, "exp"));
            assertEquals(2, e.window());
            assertEquals(new NonFiniteProbe.Origin(NonFiniteProbe.Site.LINEAR_INPUT, "model.layers.0.self_attn.q_proj", 0), e.origin());
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        assertEquals(java.util.Set.of(0, 1), journal.finished("exp").keySet(), "the failed window is not journaled");
    }

    @Test
    void learnedPositionsBoundTheWindowAndRopeRecordsGoingPastItsContext() {
        ModelConfig opt = new ModelConfig(ModelConfig.Family.OPT, "opt", 96, 64, 96, 2, 4, 4, 16, 16, 0, 1e-5,
                true, true, false, "relu", true, 64, 1, 2);
        var e = assertThrows(IllegalArgumentException.class, () -> Perplexity.checkSeqlen(opt, 17));
        assertEquals("--seqlen 17 is longer than the 16 learned positions of this opt model", e.getMessage());
        Perplexity.checkSeqlen(opt, 16);
        assertThrows(IllegalArgumentException.class, () -> Perplexity.checkSeqlen(opt, 0));
        assertThrows(IllegalArgumentException.class, () -> Perplexity.checkSeqlen(MemoryCheckpoint.smallLlama(), -4));

        ModelConfig llama = MemoryCheckpoint.smallLlama(); // declares 128 positions
        try (Transformer m = model(new MemoryCheckpoint(llama, 1))) {
            int[] ids = tokens(256, 96, -1);
            Perplexity.Result past = Perplexity.evaluate(m, ids, 256, 1, Progress.NONE);
            assertTrue(Double.isFinite(past.ppl()));
            assertEquals(128, past.contextLength());
            assertTrue(past.beyondContext());
            assertFalse(Perplexity.evaluate(m, ids, 128, 1, Progress.NONE).beyondContext());
        }
    }
}
