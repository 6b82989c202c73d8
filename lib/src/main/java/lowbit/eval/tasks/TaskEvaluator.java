package lowbit.eval.tasks;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.eval.ContinuationScorer;
import lowbit.progress.Progress;

/**
 * Scores a task's items through a {@link ContinuationScorer}: the requests of an item that share their context
 * tokens go in one call (every choice of a multiple-choice item; each option of a WinoGrande item on its own), so a
 * scorer that keeps the context's keys and values computes the context once per item. Items run longest first, as
 * lm-eval orders its requests, so the progress bar's estimate errs on the long side.
 */
public final class TaskEvaluator {
    private final ContinuationScorer scorer;
    private final RequestEncoder encoder;

    public TaskEvaluator(ContinuationScorer scorer, RequestEncoder encoder) {
        this.scorer = scorer;
        this.encoder = encoder;
    }

    /** The first {@code limit} items (all when limit is 0), as lm-eval's --limit takes them. */
    public static List<Item> limit(List<Item> items, int limit) {
        if (limit < 0) throw new IllegalArgumentException("limit must be >= 1, or 0 for every item, got " + limit);
        return limit == 0 || limit >= items.size() ? items : items.subList(0, limit);
    }

    public TaskResult evaluate(Task task, List<Item> items, Progress progress) {
        long t0 = System.nanoTime();
        List<List<RequestEncoder.Encoded>> encoded = new ArrayList<>(items.size());
        for (Item it : items) encoded.add(it.requests().stream().map(encoder::encode).toList());
        Integer[] order = new Integer[items.size()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingInt((Integer i) -> -longest(encoded.get(i))).thenComparingInt(i -> i));

        ItemScore[] scores = new ItemScore[items.size()];
        try (Progress.Task bar = progress.start(task.name(), items.size(), "items")) {
            for (int i : order) {
                scores[i] = score(task, items.get(i), encoded.get(i));
                bar.step(1);
            }
        }
        int truncatedItems = 0;
        for (ItemScore s : scores) if (s.truncated() > 0) truncatedItems++;
        return new TaskResult(task, List.of(scores), truncatedItems, (System.nanoTime() - t0) / 1e9);
    }

    private static int longest(List<RequestEncoder.Encoded> es) {
        int m = 0;
        for (RequestEncoder.Encoded e : es) m = Math.max(m, e.context().length + e.continuation().length);
        return m;
    }

    ItemScore score(Task task, Item item, List<RequestEncoder.Encoded> encoded) {
        int n = encoded.size();
        double[] lls = new double[n];
        boolean[] greedy = new boolean[n];
        int truncated = 0;
        // requests whose context tokens are equal share one call, in first-seen order
        Map<String, List<Integer>> byContext = new LinkedHashMap<>();
        for (int r = 0; r < n; r++) {
            byContext.computeIfAbsent(Arrays.toString(encoded.get(r).context()), k -> new ArrayList<>()).add(r);
            truncated += encoded.get(r).truncated();
        }
        for (List<Integer> group : byContext.values()) {
            int[] ctx = encoded.get(group.get(0)).context();
            List<ContinuationScorer.Scored> out = scorer.score(ctx, group.stream().map(r -> encoded.get(r).continuation()).toList());
            for (int k = 0; k < group.size(); k++) {
                lls[group.get(k)] = out.get(k).logLikelihood();
                greedy[group.get(k)] = out.get(k).greedy();
            }
        }
        if (task.output() == Task.Output.LOGLIKELIHOOD)
            return new ItemScore(item.index(), lls, greedy, 0, 0, greedy[0] ? 1 : 0, Double.NaN, truncated);
        int pred = argmax(lls);
        double[] norm = new double[n];
        for (int c = 0; c < n; c++) norm[c] = lls[c] / item.choices().get(c).codePointCount(0, item.choices().get(c).length());
        int predNorm = argmax(norm);
        return new ItemScore(item.index(), lls, greedy, pred, predNorm, pred == item.gold() ? 1 : 0,
                predNorm == item.gold() ? 1 : 0, truncated);
    }

    /** numpy's argmax: the first index of the largest value. */
    static int argmax(double[] xs) {
        int best = 0;
        for (int i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
        return best;
    }
}
