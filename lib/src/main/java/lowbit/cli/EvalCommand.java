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
import lowbit.cuda.Device;
import lowbit.model.cuda.DeviceModel;
import lowbit.eval.ContinuationScorer;
import lowbit.eval.Evaluator;
import lowbit.eval.FullForwardScorer;
import lowbit.eval.EvaluatedModel;
import lowbit.eval.tasks.MmluTask;
import lowbit.eval.tasks.Tasks;
import lowbit.eval.tasks.ZeroShot;
import lowbit.eval.tasks.mmlu.MmluData;
import lowbit.eval.tasks.mmlu.MmluPrompt;
import lowbit.io.DataDir;
import lowbit.memory.MemoryEstimate;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.ResultStore;
import lowbit.results.Row;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(name = "eval", mixinStandardHelpOptions = true,
        description = "Zero-shot accuracy with lm-evaluation-harness's task definitions (acc, acc_norm, their standard errors), "
                + "one results-store row per task and configuration.")
final class EvalCommand implements Callable<Integer>, MemoryEstimated {
    @Spec
    CommandSpec spec;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--tasks", defaultValue = "all", paramLabel = "NAME,...|all",
            description = "comma-separated tasks: piqa, arc_easy, arc_challenge, hellaswag, winogrande, boolq, lambada_openai, "
                    + "mmlu (5-shot; needs data/mmlu, skipped with a note when absent), or all (default: ${DEFAULT-VALUE})")
    String tasks;

    @Option(names = "--limit", paramLabel = "N", description = "score only each task's first N items, as lm-eval's --limit (default: all)")
    Integer limit;

    @Option(names = "--fewshot", paramLabel = "K",
            description = "examples before each question (default: 0, and 5 for mmlu, its dev split's first five); lm-eval draws "
                    + "the other tasks' examples from their train splits, which the data directory does not ship, so they take only 0")
    Integer fewshot;

    @Option(names = "--store", defaultValue = "results/eval.jsonl", paramLabel = "FILE",
            description = "results store: one row per task and configuration, appended when the task finishes; a task already "
                    + "there is not run again (default: ${DEFAULT-VALUE})")
    Path store;

    @Option(names = "--no-store", description = "write no rows and read none")
    boolean noStore;

    @Option(names = "--scorer", defaultValue = ZeroShot.DEFAULT_SCORER, paramLabel = "full|prefix",
            description = "full: one forward pass per continuation, as lm-eval; prefix: the context once, its keys and values "
                    + "reused for every choice (same log-probs) (default: ${DEFAULT-VALUE})")
    String scorerName;

    @Option(names = "--json", description = "print one JSON object instead of tables")
    boolean json;

    @Override
    public Integer call() {
        if (quantOptions.quant != null) modelOptions.requireFp32Weights("--quant");
        ZeroShot.scorer(scorerName);
        Device device = modelOptions.device();
        Plan plan = prepare();
        if (plan.tasks().isEmpty() && plan.mmlu() == null) return 0; // only MMLU was asked for, and its note is printed
        QuantizationRecipe recipe = quantOptions.recipe(null, null);
        ResultStore results = noStore ? null : ResultStore.open(store);
        List<Row> rows = new ArrayList<>();
        try (EvaluatedModel model = EvaluatedModel.load(modelOptions.open(), modelOptions.threads(), modelOptions.weights())) {
            if (recipe != null) model.quantize(recipe, Progress.terminal(), recipe.device(device, !modelOptions.deviceIsAuto()));
            // On the GPU every continuation is one full forward pass (FullForwardScorer): the prefix scorer's reuse of the
            // context's keys and values is a CPU path; both give the same log-probs.
            try (DeviceModel gpu = onGpu(device, model)) {
                ContinuationScorer scorer = gpu != null ? new FullForwardScorer(gpu::logProbs) : ZeroShot.scorer(scorerName).apply(model.transformer());
                for (ZeroShot.Prepared p : plan.tasks()) {
                    Row row = ZeroShot.run(model, p, scorer, results, Progress.terminal());
                    rows.add(row);
                    if (!json) System.out.println(table(row));
                }
                if (plan.mmlu() != null) {
                    Row row = MmluTask.run(model, plan.mmlu(), scorer, results, Progress.terminal());
                    rows.add(row);
                    if (!json) System.out.println(table(row));
                }
            }
        }
        if (json) System.out.println(json(rows).toPrettyString());
        else if (results != null) System.out.println("rows in " + results.file());
        return 0;
    }

    /**
     * The model on the GPU for --device cuda (null on the CPU); with --device auto, a model the GPU path does not run (OPT,
     * a rotated model) stays on the CPU with a warning. The longest request of the shipped tasks stays under 2048 tokens.
     */
    private DeviceModel onGpu(Device device, EvaluatedModel model) {
        if (device != Device.CUDA) return null;
        if (modelOptions.deviceIsAuto()) {
            try {
                DeviceModel.checkSupported(model.transformer());
            } catch (IllegalArgumentException e) {
                spec.commandLine().getErr().println("lowbit: warning: --device auto: running on the CPU: " + e.getMessage());
                return null;
            }
        }
        return Evaluator.onGpu(model, modelOptions.weights(), Math.min(2048, model.transformer().config().maxPositions()));
    }

    /** The tasks' items, and MMLU's when asked for and present. */
    record Plan(List<ZeroShot.Prepared> tasks, MmluTask.Prepared mmlu) {}

    /** Every option and task file checked, and the items read, before the model is loaded. */
    Plan prepare() {
        if (limit != null && limit < 1) throw new IllegalArgumentException("--limit must be >= 1, got " + limit);
        int n = limit == null ? 0 : limit;
        List<String> names = Tasks.parse(tasks, List.of(MmluTask.NAME));
        List<ZeroShot.Prepared> out = new ArrayList<>();
        MmluTask.Prepared mmlu = null;
        for (String name : names) {
            if (name.equals(MmluTask.NAME)) {
                var absent = MmluData.absence(DataDir.root());
                if (absent.isPresent()) spec.commandLine().getErr().println("lowbit: note: MMLU skipped: " + absent.get());
                else mmlu = MmluTask.Prepared.of(MmluData.fromDataDir(), fewshot == null ? MmluPrompt.SHOTS : fewshot, n);
                continue;
            }
            if (fewshot != null && fewshot != 0)
                throw new IllegalArgumentException("--fewshot " + fewshot + ": lm-eval draws " + name + "'s few-shot examples from its train "
                        + "split, and the data directory ships only the evaluation splits; use --fewshot 0 (only mmlu takes shots)");
            out.add(ZeroShot.Prepared.of(Tasks.get(name), n));
        }
        return new Plan(out, mmlu);
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            // the longest request of the shipped tasks (BoolQ passages, 5-shot MMLU) stays under 2048 tokens
            return MemoryEstimate.of("eval", ckpt.config(), quantOptions.recipe(null, null), Math.min(2048, ckpt.config().maxPositions()),
                    modelOptions.weights());
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
        if (row.get("groups") instanceof Map<?, ?> groups)
            for (Map.Entry<?, ?> g : groups.entrySet()) {
                Map<?, ?> v = (Map<?, ?>) g.getValue();
                b.append(String.format(Locale.ROOT, "  %-22s %10.4f %10s%n", g.getKey(), ((Number) v.get("acc")).doubleValue(),
                        v.get("acc_stderr") instanceof Number n ? String.format(Locale.ROOT, "%.4f", n.doubleValue()) : "n/a"));
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
