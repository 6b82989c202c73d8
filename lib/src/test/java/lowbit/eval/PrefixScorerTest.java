package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.quant.RuntimeQuantization;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The context computed once and its keys and values reused must give what one full forward pass per continuation
 * gives ({@link FullForwardScorer}, lm-eval's definition): per-token log-probs to 1e-5 and the greedy flags exactly,
 * on every architecture the runtime has (Llama with GQA, Qwen3's q/k norms and wide heads, pre- and post-norm OPT with
 * learned positions) and on a trained model, with and without runtime quantization hooks (8-bit per-token activations,
 * a 4-bit KV cache), whose results must not depend on how rows are batched, nor on continuations that begin alike
 * sharing those rows.
 */
class PrefixScorerTest {
    private static final double TOLERANCE = 1e-5;

    @ParameterizedTest
    @CsvSource({"llama, false", "llama, true", "qwen3, false", "qwen3, true", "opt, false", "opt, true",
            "opt-350m-style, false", "opt-350m-style, true"})
    void equalsOneFullForwardPerContinuationOnTinyCheckpoints(String name, boolean quantizedRuntime) throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny(name)); Transformer model = Checkpoints.load(ckpt, 2)) {
            // context + continuation - 1 <= 64: within every tiny model's (OPT's learned) positions
            assertSameScores(model, quantizedRuntime, new SplittableRandom(name.hashCode()), 6, 28, 5, 14, name);
        }
    }

    @ParameterizedTest
    @CsvSource({"false", "true"})
    void equalsOneFullForwardPerContinuationOnStories260K(boolean quantizedRuntime) throws Exception {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        try (Checkpoint ckpt = Checkpoints.open(bin); Transformer model = Checkpoints.load(ckpt, 2)) {
            // HellaSwag-sized items: contexts up to 80 tokens, four endings up to 30
            assertSameScores(model, quantizedRuntime, new SplittableRandom(260), 4, 80, 4, 30, "stories260K");
        }
    }

    @Test
    void theSameNumbersOnOneAndThreeThreads() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny("qwen3")); Transformer one = Checkpoints.load(ckpt, 1);
             Transformer three = Checkpoints.load(ckpt, 3)) {
            for (Transformer m : List.of(one, three)) new RuntimeQuantization(8, null, 4, 4, 0).attach(m);
            SplittableRandom rnd = new SplittableRandom(3);
            for (int item = 0; item < 4; item++) {
                int[] context = tokens(rnd, 1 + rnd.nextInt(40), one.config().vocabSize());
                List<int[]> conts = continuations(rnd, 1 + rnd.nextInt(4), 20, one.config().vocabSize());
                List<ContinuationScorer.Scored> a = new PrefixScorer(one).score(context, conts);
                List<ContinuationScorer.Scored> b = new PrefixScorer(three).score(context, conts);
                for (int c = 0; c < conts.size(); c++) {
                    assertArrayEquals(a.get(c).tokenLogProbs(), b.get(c).tokenLogProbs(), "item " + item + " continuation " + c);
                    assertEquals(a.get(c).greedy(), b.get(c).greedy());
                }
            }
        }
    }

    @Test
    void anEmptyContextOrContinuationIsRefused() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(tiny("llama")); Transformer model = Checkpoints.load(ckpt, 1)) {
            PrefixScorer scorer = new PrefixScorer(model);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> scorer.score(new int[0], List.<int[]>of(new int[]{3})));
            assertEquals("an empty context: lm-eval scores it after the prefix token", e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> scorer.score(new int[]{1, 2}, List.of(new int[]{3}, new int[0])));
            assertEquals("continuation 1 is empty: it has no tokens to score", e.getMessage());
            assertEquals(List.of(), scorer.score(new int[]{1, 2}, List.of()));
        }
    }

    /**
     * Random items; continuation lengths include 1 (scored from the context alone) and the greedy flags are exercised
     * both ways: one continuation per item is the full pass's own greedy continuation.
     */
    private static void assertSameScores(Transformer model, boolean quantizedRuntime, SplittableRandom rnd, int items,
                                         int maxContext, int maxContinuations, int maxLength, String name) throws Exception {
        AutoCloseable runtime = quantizedRuntime ? new RuntimeQuantization(8, null, 4, 4, 0).attach(model) : () -> {};
        try (runtime) {
            int vocab = model.config().vocabSize(), greedy = 0, tokens = 0;
            FullForwardScorer full = new FullForwardScorer(model);
            PrefixScorer prefix = new PrefixScorer(model);
            for (int item = 0; item < items; item++) {
                int[] context = tokens(rnd, 1 + rnd.nextInt(maxContext), vocab);
                List<int[]> conts = continuations(rnd, 1 + rnd.nextInt(maxContinuations), maxLength, vocab);
                conts.add(rnd.nextInt(conts.size() + 1), greedyContinuation(model, context, 1 + rnd.nextInt(maxLength)));
                // continuations that begin alike share rows: one with another's start and its own end, a copy, a shorter start
                int[] base = conts.get(rnd.nextInt(conts.size()));
                int[] forked = Arrays.copyOf(base, base.length + 2);
                forked[forked.length - 1] = rnd.nextInt(vocab);
                forked[Math.max(1, base.length / 2)] = rnd.nextInt(vocab);
                conts.add(forked);
                conts.add(rnd.nextInt(conts.size() + 1), base.clone());
                conts.add(Arrays.copyOf(forked, 1 + forked.length / 2));
                List<ContinuationScorer.Scored> want = full.score(context, conts), got = prefix.score(context, conts);
                assertEquals(conts.size(), got.size());
                for (int c = 0; c < conts.size(); c++) {
                    String where = name + (quantizedRuntime ? " a8+kv4" : "") + " item " + item + " continuation " + c;
                    assertArrayEquals(want.get(c).tokenLogProbs(), got.get(c).tokenLogProbs(), TOLERANCE, where);
                    assertEquals(want.get(c).greedy(), got.get(c).greedy(), where);
                    if (got.get(c).greedy()) greedy++;
                    tokens += conts.get(c).length;
                }
            }
            assertTrue(greedy >= items && greedy < tokens, greedy + " greedy continuations");
        }
    }

    /** What greedy decoding after the context produces, by full passes: a continuation whose greedy flag must be true. */
    private static int[] greedyContinuation(Transformer model, int[] context, int length) {
        int[] seq = context.clone();
        for (int i = 0; i < length; i++) {
            float[] last = model.logProbs(seq)[seq.length - 1];
            seq = Arrays.copyOf(seq, seq.length + 1);
            seq[seq.length - 1] = FullForwardScorer.argmax(last);
        }
        return Arrays.copyOfRange(seq, context.length, seq.length);
    }

    private static List<int[]> continuations(SplittableRandom rnd, int count, int maxLength, int vocab) {
        List<int[]> out = new ArrayList<>();
        for (int c = 0; c < count; c++) out.add(tokens(rnd, c == 0 ? 1 : 1 + rnd.nextInt(maxLength), vocab));
        return out;
    }

    private static int[] tokens(SplittableRandom rnd, int n, int vocab) {
        int[] t = new int[n];
        for (int i = 0; i < n; i++) t[i] = rnd.nextInt(vocab);
        return t;
    }

    private static Path tiny(String name) throws URISyntaxException {
        return Path.of(PrefixScorerTest.class.getClassLoader().getResource("tiny/" + name).toURI());
    }
}
