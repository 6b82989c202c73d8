package lowbit.eval.tasks;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A task's figures as lm-eval aggregates them: acc and acc_norm are means over items with the standard error of
 * the mean (sample standard deviation, n - 1, over sqrt(n): lm_eval.api.metrics.mean_stderr); perplexity is
 * exp(-mean log-likelihood). lm-eval bootstraps the perplexity's standard error (100000 resamples); here it is the
 * delta method's perplexity x stderr(mean log-likelihood), which that bootstrap estimates.
 *
 * @param truncatedItems items whose context lost tokens to fit the model
 */
public record TaskResult(Task task, List<ItemScore> items, int truncatedItems, double seconds) {
    public TaskResult {
        items = List.copyOf(items);
        if (items.isEmpty()) throw new IllegalArgumentException(task.name() + ": no items were scored");
    }

    public int size() {
        return items.size();
    }

    public double acc() {
        return mean(items.stream().mapToDouble(ItemScore::acc).toArray());
    }

    public Double accStderr() {
        return stderr(items.stream().mapToDouble(ItemScore::acc).toArray());
    }

    public double accNorm() {
        return mean(items.stream().mapToDouble(ItemScore::accNorm).toArray());
    }

    public Double accNormStderr() {
        return stderr(items.stream().mapToDouble(ItemScore::accNorm).toArray());
    }

    /** LAMBADA's perplexity over the target words: exp(-mean over items of the word's log-likelihood). */
    public double perplexity() {
        return Math.exp(-mean(targetLogLikelihoods()));
    }

    public Double perplexityStderr() {
        Double se = stderr(targetLogLikelihoods());
        return se == null ? null : perplexity() * se;
    }

    private double[] targetLogLikelihoods() {
        return items.stream().mapToDouble(s -> s.logLikelihoods()[0]).toArray();
    }

    public double itemsPerSecond() {
        return seconds > 0 ? items.size() / seconds : Double.NaN;
    }

    /** The metrics lm-eval reports for the task, with their standard errors (null where n = 1, lm-eval's "N/A"). */
    public Map<String, Object> metrics() {
        Map<String, Object> m = new LinkedHashMap<>();
        for (String name : task.metrics()) {
            switch (name) {
                case "acc" -> {
                    m.put("acc", acc());
                    m.put("acc_stderr", accStderr());
                }
                case "acc_norm" -> {
                    m.put("acc_norm", accNorm());
                    m.put("acc_norm_stderr", accNormStderr());
                }
                case "perplexity" -> {
                    m.put("perplexity", perplexity());
                    m.put("perplexity_stderr", perplexityStderr());
                }
                default -> throw new IllegalStateException("no aggregation for metric " + name);
            }
        }
        return m;
    }

    static double mean(double[] xs) {
        double s = 0;
        for (double x : xs) s += x;
        return s / xs.length;
    }

    /** lm-eval's mean_stderr: sample standard deviation (n - 1) over sqrt(n); undefined for one item. */
    static Double stderr(double[] xs) {
        if (xs.length < 2) return null;
        double mu = mean(xs), ss = 0;
        for (double x : xs) ss += (x - mu) * (x - mu);
        return Math.sqrt(ss / (xs.length - 1)) / Math.sqrt(xs.length);
    }
}
