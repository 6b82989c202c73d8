package lowbit.eval.tasks;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import lowbit.eval.ContinuationScorer;
import lowbit.eval.EvaluatedModel;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.progress.Progress;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import lowbit.eval.tasks.mmlu.MmluCategory;
import lowbit.eval.tasks.mmlu.MmluData;
import lowbit.eval.tasks.mmlu.MmluItem;
import lowbit.eval.tasks.mmlu.MmluPrompt;
import lowbit.eval.tasks.mmlu.MmluScores;

/**
 * lm-eval's {@code mmlu} group as one task of {@code ./lowbit eval}: every subject's test items after the prompt of
 * {@link MmluPrompt} (k shots from the dev split's head), " A".." D" scored in one call per item, and the figures
 * lm-eval reports: per-subject accuracy, the four category groups and the overall one, each pooled over items
 * (lm-eval's size-weighted mean, a micro average). --limit takes each subject's first N items, as lm-eval's limit
 * applies per subtask. One store row holds the whole group.
 */
public final class MmluTask {
    public static final String NAME = "mmlu";
    private static final Task SCORING = new Task(NAME, List.of(), Task.Output.MULTIPLE_CHOICE, List.of("acc"), f -> List.of());

    private MmluTask() {}

    /** One test item as lm-eval's requests: the k-shot context, the four lettered continuations. */
    static Item item(MmluData data, MmluItem it, int index, int shots) {
        String ctx = data.context(it, shots);
        List<Request> rs = MmluPrompt.CONTINUATIONS.stream().map(c -> new Request(ctx, c)).toList();
        return new Item(index, rs, MmluPrompt.LETTERS, it.gold());
    }

    /** The data read and the items built, before the model is loaded. */
    public record Prepared(MmluData data, List<String> subjects, List<Item> items, int shots, int limit, String dataSha256) {
        public static Prepared of(MmluData data, int shots, int limit) {
            if (shots < 0 || shots > MmluPrompt.SHOTS)
                throw new IllegalArgumentException("--fewshot " + shots + ": MMLU takes 0 to " + MmluPrompt.SHOTS + " shots (its dev split's size)");
            if (limit < 0) throw new IllegalArgumentException("limit must be >= 1, or 0 for every item, got " + limit);
            List<String> subjects = new ArrayList<>();
            List<Item> items = new ArrayList<>();
            for (String s : data.subjects()) {
                List<MmluItem> test = data.items(s);
                int n = limit == 0 ? test.size() : Math.min(limit, test.size());
                for (int i = 0; i < n; i++) {
                    subjects.add(s);
                    items.add(item(data, test.get(i), i, shots));
                }
            }
            return new Prepared(data, subjects, items, shots, limit, filesSha256(data.dir()));
        }
    }

    /** sha256 over the sorted (path, sha256) pairs of every CSV under the folder. */
    static String filesSha256(Path dir) {
        Map<String, String> files = new TreeMap<>();
        try (Stream<Path> all = Files.walk(dir)) {
            all.filter(p -> p.toString().endsWith(".csv")).forEach(p -> files.put(dir.relativize(p).toString(), Hashing.sha256(p)));
        } catch (IOException e) {
            throw new FormatException(dir, "cannot list: " + e.getMessage(), e);
        }
        return Row.hash(files);
    }

    public static Map<String, Object> params(EvaluatedModel model, Prepared p) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("evaluation", "zero-shot");
        m.put("task", NAME);
        m.put("configuration", model.key());
        m.put("data_sha256", Map.of(MmluData.FOLDER, p.dataSha256()));
        m.put("limit", p.limit());
        m.put("num_fewshot", p.shots());
        m.put("lm_eval", ZeroShot.LM_EVAL_VERSION);
        return m;
    }

    /** The stored row, or the group evaluated and appended: metrics hold mmlu's acc and stderr, plus categories and subjects. */
    public static Row run(EvaluatedModel model, Prepared p, ContinuationScorer scorer, ResultStore store, Progress progress) {
        Map<String, Object> params = params(model, p);
        String key = Row.key(params);
        if (store != null) {
            var done = store.get(key);
            if (done.isPresent()) return done.get();
        }
        RequestEncoder encoder = new RequestEncoder(model.tokenizer(), model.checkpoint().config().maxPositions());
        TaskResult r = new TaskEvaluator(scorer, encoder).evaluate(SCORING, p.items(), progress);
        MmluScores.Summary s = summarize(p, r);
        Map<String, Object> metrics = new LinkedHashMap<>();
        metrics.put("acc", s.overall().acc());
        metrics.put("acc_stderr", s.overall().stderr().isPresent() ? s.overall().stderr().getAsDouble() : null);
        Map<String, Object> groups = new LinkedHashMap<>();
        for (Map.Entry<MmluCategory, MmluScores.Group> e : s.categories().entrySet())
            groups.put(e.getValue().name(), group(e.getValue().acc(), e.getValue().stderr(), e.getValue().items()));
        Map<String, Object> subjects = new LinkedHashMap<>();
        for (MmluScores.Subject sub : s.subjects()) subjects.put(sub.name(), group(sub.acc(), sub.stderr(), sub.items()));
        // a zero-shot task's row, with MMLU's group figures in place of the per-item metrics
        Row row = ZeroShot.row(key, params, model, r, scorer)
                .with("metrics", metrics)
                .with("groups", groups)
                .with("subjects", subjects)
                .with("aggregation", "lm-eval's: each group the item-weighted mean of its subjects (micro average), pooled stderr");
        if (store != null && !store.tryAppend(row)) return store.get(key).orElseThrow();
        return row;
    }

    static MmluScores.Summary summarize(Prepared p, TaskResult r) {
        Map<String, int[]> counts = new LinkedHashMap<>();
        for (int i = 0; i < p.items().size(); i++) {
            int[] c = counts.computeIfAbsent(p.subjects().get(i), k -> new int[2]);
            c[0] += (int) r.items().get(i).acc();
            c[1]++;
        }
        List<MmluScores.Subject> subjects = new ArrayList<>();
        counts.forEach((name, c) -> subjects.add(MmluScores.Subject.ofCounts(name, c[0], c[1])));
        return MmluScores.summarize(subjects);
    }

    private static Map<String, Object> group(double acc, java.util.OptionalDouble se, int items) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("acc", acc);
        m.put("acc_stderr", se.isPresent() ? se.getAsDouble() : null);
        m.put("items", items);
        return m;
    }
}
