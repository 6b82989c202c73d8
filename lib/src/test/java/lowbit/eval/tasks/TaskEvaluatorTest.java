package lowbit.eval.tasks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import lowbit.eval.ContinuationScorer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.Test;

/** Scoring and aggregation on a scorer with known log-probs; expected figures are worked by hand. */
class TaskEvaluatorTest {
    /** Each continuation token scores -0.5 per token, except token 'B' (-0.1) and token 'L' (-3); greedy when no 'L'. */
    static final class Fixed implements ContinuationScorer {
        final List<Integer> callSizes = new ArrayList<>();

        @Override
        public List<Scored> score(int[] context, List<int[]> continuations) {
            callSizes.add(continuations.size());
            List<Scored> out = new ArrayList<>();
            for (int[] c : continuations) {
                double[] lp = new double[c.length];
                boolean greedy = true;
                for (int i = 0; i < c.length; i++) {
                    lp[i] = c[i] == 'B' ? -0.1 : c[i] == 'L' ? -3 : -0.5;
                    if (c[i] == 'L') greedy = false;
                }
                out.add(new Scored(lp, greedy));
            }
            return out;
        }
    }

    private static Item mc(int index, String query, int gold, String... choices) {
        return Tasks.multipleChoice(index, query, List.of(choices), gold, new TaskFiles.Line(java.nio.file.Path.of("t"), index + 1, ""));
    }

    private static final Task MC = new Task("toy", List.of(), Task.Output.MULTIPLE_CHOICE, List.of("acc", "acc_norm"), f -> List.of());

    @Test
    void accAndAccNormAsLmEvalComputesThem() {
        Fixed scorer = new Fixed();
        TaskEvaluator ev = new TaskEvaluator(scorer, new RequestEncoder(new RequestEncoderTest.Toy(false), 100));
        // item 0: " ab" -> 3 tokens x -0.5 = -1.5; " abcd" -> -2.5. acc picks 0; per character: -1.5/2 = -0.75 vs -2.5/4 = -0.625: acc_norm picks 1.
        // item 1: " B" -> -0.5 - 0.1 = -0.6 vs " ab" -> -1.5: both pick 0, gold 0.
        // item 2: " LL" -> -6.5 vs " a" -> -1.0: both pick 1, gold 0.
        List<Item> items = List.of(mc(0, "Q", 1, "ab", "abcd"), mc(1, "Q", 0, "B", "ab"), mc(2, "Q", 0, "LL", "a"));
        TaskResult r = ev.evaluate(MC, items, Progress.NONE);
        assertArrayEquals(new double[] {-1.5, -2.5}, r.items().get(0).logLikelihoods(), 1e-12);
        assertEquals(0, r.items().get(0).pred());
        assertEquals(1, r.items().get(0).predNorm());
        // acc = [0, 1, 0]: mean 1/3, sample sd sqrt(1/3), stderr sqrt(1/3)/sqrt(3) = 1/3
        assertEquals(1.0 / 3, r.acc(), 1e-12);
        assertEquals(1.0 / 3, r.accStderr(), 1e-12);
        // acc_norm = [1, 1, 0]
        assertEquals(2.0 / 3, r.accNorm(), 1e-12);
        assertEquals(1.0 / 3, r.accNormStderr(), 1e-12);
        assertEquals(List.of(2, 2, 2), scorer.callSizes, "the choices of an item share one call");
        Map<String, Object> m = r.metrics();
        assertEquals(List.of("acc", "acc_stderr", "acc_norm", "acc_norm_stderr"), List.copyOf(m.keySet()));
    }

    @Test
    void winograndeOptionsAreSeparateCalls() {
        Fixed scorer = new Fixed();
        TaskEvaluator ev = new TaskEvaluator(scorer, new RequestEncoder(new RequestEncoderTest.Toy(false), 100));
        Item w = new Item(0, List.of(new Request("x a", " end"), new Request("x B", " end")), List.of("x a", "x B"), 0);
        TaskResult r = ev.evaluate(new Task("w", List.of(), Task.Output.MULTIPLE_CHOICE, List.of("acc"), f -> List.of()), List.of(w), Progress.NONE);
        assertEquals(List.of(1, 1), scorer.callSizes);
        assertNull(r.accStderr(), "one item has no standard error (lm-eval: N/A)");
    }

    @Test
    void lambadaAccuracyIsGreedyAndPerplexityIsOverItems() {
        TaskEvaluator ev = new TaskEvaluator(new Fixed(), new RequestEncoder(new RequestEncoderTest.Toy(false), 100));
        Task lambada = new Task("l", List.of(), Task.Output.LOGLIKELIHOOD, List.of("perplexity", "acc"), f -> List.of());
        // " ab" -> -1.5 greedy; " L" -> -3.5 not greedy
        List<Item> items = List.of(new Item(0, List.of(new Request("c", " ab")), List.of("ab"), 0),
                new Item(1, List.of(new Request("c", " L")), List.of("L"), 0));
        TaskResult r = ev.evaluate(lambada, items, Progress.NONE);
        assertEquals(0.5, r.acc(), 1e-12);
        assertEquals(Math.exp(2.5), r.perplexity(), 1e-9);
        // lls -1.5, -3.5: sample sd sqrt(2), stderr of the mean 1; delta method: ppl x 1
        assertEquals(Math.exp(2.5), r.perplexityStderr(), 1e-9);
        assertEquals(List.of("perplexity", "perplexity_stderr", "acc", "acc_stderr"), List.copyOf(r.metrics().keySet()));
    }

    @Test
    void limitTakesTheFirstItems() {
        List<Item> items = List.of(mc(0, "Q", 0, "a", "b"), mc(1, "Q", 0, "a", "b"), mc(2, "Q", 0, "a", "b"));
        assertEquals(List.of(0, 1), TaskEvaluator.limit(items, 2).stream().map(Item::index).toList());
        assertEquals(3, TaskEvaluator.limit(items, 0).size());
        assertEquals(3, TaskEvaluator.limit(items, 10).size());
    }
}
