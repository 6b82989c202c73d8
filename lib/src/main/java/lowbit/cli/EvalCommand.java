package lowbit.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.eval.ContinuationScorer;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.memory.MemoryEstimate;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Zero-shot accuracy with lm-evaluation-harness's task definitions (acc, acc_norm, their standard errors), "
                + "one results-store row per task and configuration.")
final class EvalCommand implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--tasks", defaultValue = "all", paramLabel = "NAME,...|all",
            description = "comma-separated tasks: piqa, arc_easy, arc_challenge, hellaswag, winogrande, boolq, lambada_openai, "
                    + "or all (default: ${DEFAULT-VALUE})")
    String tasks;

    @Option(names = "--limit", paramLabel = "N", description = "score only each task's first N items, as lm-eval's --limit (default: all)")
    Integer limit;

    @Option(names = "--fewshot", defaultValue = "0", paramLabel = "K",
            description = "examples before each question; lm-eval draws them from each task's train split, which the data "
                    + "directory does not ship, so only 0 is accepted (default: ${DEFAULT-VALUE})")
    int fewshot;

    @Option(names = "--store", defaultValue = "results/eval.jsonl", paramLabel = "FILE",
            description = "results store: one row per task and configuration, appended when the task finishes; a task already "
                    + "there is not run again (default: ${DEFAULT-VALUE})")
    Path store;

    @Option(names = "--no-store", description = "write no rows and read none")
    boolean noStore;

    @Option(names = "--json", description = "print one JSON object instead of tables")
    boolean json;

    @Override
    public Integer call() {
        List<ZeroShot.Prepared> prepared = prepare();
        QuantizationRecipe recipe = quantOptions.recipe(null, null);
        ResultStore results = noStore ? null : ResultStore.open(store);
        List<Row> rows = new ArrayList<>();
        try (EvaluatedModel model = EvaluatedModel.load(modelOptions.open(), modelOptions.threads())) {
            if (recipe != null) model.quantize(recipe, Progress.terminal());
            ContinuationScorer scorer = ZeroShot.REFERENCE_SCORER.apply(model.transformer());
            for (ZeroShot.Prepared p : prepared) {
                Row row = ZeroShot.run(model, p, scorer, results, Progress.terminal());
                rows.add(row);
                if (!json) System.out.println(table(row));
            }
        }
        if (json) System.out.println(json(rows).toPrettyString());
        else if (results != null) System.out.println("rows in " + results.file());
        return 0;
    }

    /** Every option and task file checked, and the items read, before the model is loaded. */
    List<ZeroShot.Prepared> prepare() {
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit must be >= 1, got " + limit);
        if (fewshot != 0)
            throw new IllegalArgumentException("--fewshot " + fewshot + ": lm-eval draws few-shot examples from each task's train "
                    + "split, and the data directory ships only the evaluation splits; use --fewshot 0");
        List<ZeroShot.Prepared> out = new ArrayList<>();
        for (String name : Tasks.parse(tasks, List.of())) out.add(ZeroShot.Prepared.of(Tasks.get(name), limit == null ? 0 : limit));
        return out;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            // the longest request of the shipped tasks (BoolQ passages, 5-shot MMLU) stays under 2048 tokens
            return MemoryEstimate.of("eval", ckpt.config(), quantOptions.recipe(null, null), Math.min(2048, ckpt.config().maxPositions()));
        }
    }

    static String table(Row row) {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) row.get("metrics");
        StringBuilder b = new StringBuilder();
        b.append(String.format(Locale.ROOT, "%s (%d items, %s)%n", row.get("task"), ((Number) row.get("items")).intValue(),
                row.get("quantization") instanceof Map<?, ?> q ? "quantized " + q.get("spec") : "float model"));
        b.append(String.format(Locale.ROOT, "  %-12s %10s %10s%n", "metric", "value", "stderr"));
        for (String name : m.keySet()) {
            if (name.endsWith("_stderr")) continue;
            Object se = m.get(name + "_stderr");
            b.append(String.format(Locale.ROOT, "  %-12s %10.4f %10s%n", name, ((Number) m.get(name)).doubleValue(),
                    se instanceof Number n ? String.format(Locale.ROOT, "%.4f", n.doubleValue()) : "n/a"));
        }
        long truncated = ((Number) row.get("truncated_items")).longValue();
        b.append(String.format(Locale.ROOT, "  %.1f s, %.2f items/s%s", ((Number) row.get("seconds")).doubleValue(),
                ((Number) row.get("items_per_second")).doubleValue(),
                truncated > 0 ? String.format(Locale.ROOT, "; %d items truncated from the left to fit the model's context", truncated) : ""));
        return b.toString();
    }

    static ObjectNode json(List<Row> rows) {
        ObjectMapper om = new ObjectMapper();
        ObjectNode o = om.createObjectNode();
        ArrayNode a = o.putArray("tasks");
        for (Row r : rows) {
            ObjectNode t = om.valueToTree(r.fields());
            t.put("key", r.key());
            a.add(t);
        }
        return o;
    }
}
