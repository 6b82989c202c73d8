package lowbit.eval.tasks.mmlu;

import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;

/**
 * MMLU's figures as lm-evaluation-harness reports them (lm_eval/api/group.py and api/metrics.py, 0.4.13): each
 * subject's accuracy with the standard error of the mean of its 0/1 scores; each category ({@code mmlu_stem}, ...)
 * and the overall {@code mmlu} as the mean of their subjects' accuracies weighted by item count
 * ({@code weight_by_size: True}, so a micro average over items, not a mean over subjects), with the pooled standard
 * error of those subjects. lm-eval pools the overall figure directly over all subjects, not over the four
 * categories. A standard error is absent ("N/A" in lm-eval) for a subject of one item, and then for every group
 * that contains it.
 */
public final class MmluScores {
    private MmluScores() {}

    /** One subject's accuracy over {@code items} test items. */
    public record Subject(String name, double acc, OptionalDouble stderr, int items) {
        public Subject {
            MmluSubjects.category(name);
            if (items < 1) throw new IllegalArgumentException("MMLU subject " + name + ": " + items + " items; expected at least 1");
            if (!(acc >= 0 && acc <= 1)) throw new IllegalArgumentException("MMLU subject " + name + ": accuracy " + acc + " outside [0, 1]");
        }

        /** From the count of correct items, with lm-eval's stderr: sample standard deviation of the 0/1 scores over sqrt(n). */
        public static Subject ofCounts(String name, int correct, int items) {
            if (correct < 0 || correct > items)
                throw new IllegalArgumentException("MMLU subject " + name + ": " + correct + " correct of " + items + " items");
            double p = (double) correct / items;
            // sum of squared deviations of the 0/1 scores is n p (1 - p); the sample variance divides it by n - 1
            OptionalDouble se = items > 1 ? OptionalDouble.of(Math.sqrt(p * (1 - p) / (items - 1))) : OptionalDouble.empty();
            return new Subject(name, p, se, items);
        }

        public MmluCategory category() {
            return MmluSubjects.category(name);
        }
    }

    /** A group's pooled figure: its name in lm-eval ({@code mmlu}, {@code mmlu_stem}, ...), subjects and items pooled. */
    public record Group(String name, double acc, OptionalDouble stderr, int subjects, int items) {}

    /** Per subject, per category present, and overall. */
    public record Summary(List<Subject> subjects, Map<MmluCategory, Group> categories, Group overall) {}

    public static Summary summarize(List<Subject> subjects) {
        if (subjects.isEmpty()) throw new IllegalArgumentException("no MMLU subjects to summarize");
        List<String> seen = new ArrayList<>();
        for (Subject s : subjects) {
            if (seen.contains(s.name())) throw new IllegalArgumentException("MMLU subject " + s.name() + " given twice");
            seen.add(s.name());
        }
        Map<MmluCategory, Group> categories = new EnumMap<>(MmluCategory.class);
        for (MmluCategory c : MmluCategory.values()) {
            List<Subject> members = subjects.stream().filter(s -> s.category() == c).toList();
            if (!members.isEmpty()) categories.put(c, pool(c.group(), members));
        }
        return new Summary(List.copyOf(subjects), categories, pool("mmlu", subjects));
    }

    /** lm-eval's aggregate_subtask_metrics (size-weighted mean) and pooled_sample_stderr. */
    static Group pool(String name, List<Subject> members) {
        long n = 0;
        double weighted = 0;
        double pooledVariance = 0;
        boolean allStderr = true;
        for (Subject s : members) {
            n += s.items();
            weighted += s.acc() * s.items();
            if (s.stderr().isPresent()) {
                double se = s.stderr().getAsDouble();
                pooledVariance += (s.items() - 1) * se * se * s.items();
            } else {
                allStderr = false;
            }
        }
        double acc = weighted / n;
        OptionalDouble stderr = allStderr && n > members.size()
                ? OptionalDouble.of(Math.sqrt(pooledVariance / (n - members.size()) / n))
                : OptionalDouble.empty();
        return new Group(name, acc, stderr, members.size(), Math.toIntExact(n));
    }
}
