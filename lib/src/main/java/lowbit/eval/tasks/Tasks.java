package lowbit.eval.tasks;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lowbit.io.FormatException;

/**
 * The zero-shot tasks, each rebuilt from the shipped files into exactly the requests lm-eval's task definition
 * (lm_eval/tasks/NAME/*.yaml and utils.py, version 0.4) makes. The target delimiter is lm-eval's default " ".
 */
public final class Tasks {
    /** A string lm-eval puts between a query and its answer. */
    static final String TARGET_DELIMITER = " ";

    private static final Map<String, Task> TASKS = new LinkedHashMap<>();

    static {
        add(new Task("piqa", List.of("tasks/piqa_valid_official.jsonl", "tasks/piqa_valid_official_labels.lst"),
                Task.Output.MULTIPLE_CHOICE, List.of("acc", "acc_norm"), Tasks::piqa));
        add(new Task("arc_easy", List.of("tasks/arc_easy.jsonl"), Task.Output.MULTIPLE_CHOICE, List.of("acc", "acc_norm"), Tasks::arc));
        add(new Task("arc_challenge", List.of("tasks/arc_challenge.jsonl"), Task.Output.MULTIPLE_CHOICE, List.of("acc", "acc_norm"), Tasks::arc));
        add(new Task("hellaswag", List.of("hellaswag/hellaswag_val_full.txt.bz2"), Task.Output.MULTIPLE_CHOICE,
                List.of("acc", "acc_norm"), Tasks::hellaswag));
        add(new Task("winogrande", List.of("tasks/winogrande.jsonl"), Task.Output.MULTIPLE_CHOICE, List.of("acc"), Tasks::winogrande));
        add(new Task("boolq", List.of("tasks/boolq.jsonl"), Task.Output.MULTIPLE_CHOICE, List.of("acc"), Tasks::boolq));
        add(new Task("lambada_openai", List.of("tasks/lambada_openai.jsonl"), Task.Output.LOGLIKELIHOOD,
                List.of("perplexity", "acc"), Tasks::lambada));
    }

    private Tasks() {}

    private static void add(Task t) {
        TASKS.put(t.name(), t);
    }

    public static List<String> names() {
        return List.copyOf(TASKS.keySet());
    }

    public static Task get(String name) {
        Task t = TASKS.get(name);
        if (t == null) throw new IllegalArgumentException("unknown task '" + name + "'; known tasks: " + String.join(", ", names()));
        return t;
    }

    /**
     * A --tasks value: names separated by commas, or "all" for every task in {@link #names()} order; duplicates are
     * dropped, order is kept. {@code extra} are names the caller handles itself (mmlu) and passes through.
     */
    public static List<String> parse(String spec, List<String> extra) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("--tasks is empty; known tasks: " + known(extra));
        Set<String> out = new LinkedHashSet<>();
        for (String raw : spec.split(",")) {
            String n = raw.strip();
            if (n.isEmpty()) throw new IllegalArgumentException("--tasks '" + spec + "' has an empty name; known tasks: " + known(extra));
            if (n.equals("all")) {
                out.addAll(names());
                out.addAll(extra);
            } else if (TASKS.containsKey(n) || extra.contains(n)) out.add(n);
            else throw new IllegalArgumentException("--tasks: unknown task '" + n + "'; known tasks: " + known(extra) + " (or all)");
        }
        return List.copyOf(out);
    }

    private static String known(List<String> extra) {
        List<String> all = new ArrayList<>(names());
        all.addAll(extra);
        return String.join(", ", all);
    }

    /** One multiple-choice item: lm-eval's query, and " " + choice per choice, all sharing the query as context. */
    static Item multipleChoice(int index, String query, List<String> choices, int gold, TaskFiles.Line line) {
        if (gold < 0 || gold >= choices.size())
            throw line.error("gold answer " + gold + " is not one of the " + choices.size() + " choices");
        List<Request> rs = new ArrayList<>();
        for (String c : choices) {
            if (c.isEmpty()) throw line.error("a choice is empty");
            rs.add(new Request(query, TARGET_DELIMITER + c));
        }
        return new Item(index, rs, choices, gold);
    }

    /** piqa.yaml: "Question: {{goal}}\nAnswer:", choices [sol1, sol2], target label; the official file keeps sol's spacing. */
    static List<Item> piqa(List<Path> files) {
        List<TaskFiles.JsonLine> docs = TaskFiles.jsonLines(files.get(0));
        List<TaskFiles.Line> labels = TaskFiles.lines(files.get(1)).stream().filter(l -> !l.text().isBlank()).toList();
        if (labels.size() != docs.size())
            throw new FormatException(files.get(1), "has " + labels.size() + " labels for the " + docs.size() + " documents of " + files.get(0));
        List<Item> out = new ArrayList<>();
        for (int i = 0; i < docs.size(); i++) {
            TaskFiles.JsonLine d = docs.get(i);
            TaskFiles.Line l = labels.get(i);
            int label = switch (l.text().strip()) {
                case "0" -> 0;
                case "1" -> 1;
                default -> throw l.error("expected a label 0 or 1, got '" + l.text().strip() + "'");
            };
            out.add(multipleChoice(i, "Question: " + d.text("goal") + "\nAnswer:", List.of(d.text("sol1"), d.text("sol2")), label, d.line()));
        }
        return out;
    }

    /**
     * arc_easy.yaml / arc_challenge.yaml: "Question: {{question}}\nAnswer:", choices choices.text, target the answer
     * key's index. llm-foundry's query is "Question: " + question (no answer line), its choices and gold as lm-eval's.
     */
    static List<Item> arc(List<Path> files) {
        List<Item> out = new ArrayList<>();
        for (TaskFiles.JsonLine d : TaskFiles.jsonLines(files.get(0))) {
            String q = d.text("query");
            if (!q.startsWith("Question: ")) throw d.line().error("expected the query to start with \"Question: \"");
            out.add(multipleChoice(out.size(), q + "\nAnswer:", d.texts("choices", 2), d.integer("gold"), d.line()));
        }
        return out;
    }

    /**
     * boolq (super_glue/boolq/default.yaml): "{{passage}}\nQuestion: {{question}}?\nAnswer:", choices ["no", "yes"].
     * llm-foundry's query is "Passage: {passage}\nQuestion: {question}?", so lm-eval's text is it without the
     * "Passage: " label and with the answer line.
     */
    static List<Item> boolq(List<Path> files) {
        List<Item> out = new ArrayList<>();
        for (TaskFiles.JsonLine d : TaskFiles.jsonLines(files.get(0))) {
            String q = d.text("query");
            if (!q.startsWith("Passage: ") || !q.contains("\nQuestion: "))
                throw d.line().error("expected the query \"Passage: ...\\nQuestion: ...?\"");
            List<String> choices = d.texts("choices", 2);
            if (!choices.equals(List.of("no", "yes"))) throw d.line().error("expected the choices [\"no\", \"yes\"], got " + choices);
            out.add(multipleChoice(out.size(), q.substring("Passage: ".length()) + "\nAnswer:", choices, d.integer("gold"), d.line()));
        }
        return out;
    }

    /**
     * winogrande (default.yaml, preprocess_winogrande.py): partial evaluation. The choices are the sentence up to
     * the blank with each option filled in, and each is a context of its own; the continuation is " " + the rest of
     * the sentence after the blank, stripped. llm-foundry's context_options and continuation are exactly those.
     */
    static List<Item> winogrande(List<Path> files) {
        List<Item> out = new ArrayList<>();
        for (TaskFiles.JsonLine d : TaskFiles.jsonLines(files.get(0))) {
            List<String> contexts = d.texts("context_options", 2);
            String cont = d.text("continuation");
            int gold = d.integer("gold");
            if (gold < 0 || gold >= contexts.size()) throw d.line().error("gold " + gold + " is not one of the " + contexts.size() + " options");
            if (HellaSwagText.pyStrip(cont).isEmpty()) throw d.line().error("the continuation is empty");
            List<Request> rs = contexts.stream().map(c -> new Request(c, TARGET_DELIMITER + HellaSwagText.pyStrip(cont))).toList();
            out.add(new Item(out.size(), rs, contexts, gold));
        }
        return out;
    }

    /**
     * lambada_openai.yaml: context = every word of the text but the last (split on " "), target " " + the last word.
     * llm-foundry's file holds the two parts, split at the last space, so context + " " + continuation is the text.
     */
    static List<Item> lambada(List<Path> files) {
        List<Item> out = new ArrayList<>();
        for (TaskFiles.JsonLine d : TaskFiles.jsonLines(files.get(0))) {
            String ctx = d.text("context"), word = d.text("continuation");
            if (word.isEmpty() || word.contains(" ")) throw d.line().error("expected the continuation to be one word, got '" + word + "'");
            out.add(new Item(out.size(), List.of(new Request(ctx, TARGET_DELIMITER + word)), List.of(word), 0));
        }
        return out;
    }

    /**
     * hellaswag (hellaswag.yaml, utils.py): query preprocess(label + ": " + ctx_a + " " + ctx_b.capitalize()), choices
     * the preprocessed endings. The shipped file has six lines per item: "label: ctx", the gold index, four endings;
     * see {@link HellaSwagText} for the one difference.
     */
    static List<Item> hellaswag(List<Path> files) {
        List<TaskFiles.Line> lines = TaskFiles.lines(files.get(0));
        while (!lines.isEmpty() && lines.get(lines.size() - 1).text().isEmpty()) lines = lines.subList(0, lines.size() - 1);
        if (lines.isEmpty() || lines.size() % 6 != 0)
            throw new FormatException(files.get(0), "expected 6 lines per item (context, label, 4 endings), got " + lines.size() + " lines");
        List<Item> out = new ArrayList<>();
        for (int i = 0; i < lines.size(); i += 6) {
            TaskFiles.Line ctx = lines.get(i), label = lines.get(i + 1);
            int gold;
            try {
                gold = Integer.parseInt(label.text().strip());
            } catch (NumberFormatException e) {
                throw label.error("expected the gold ending's index 0..3, got '" + label.text() + "'");
            }
            if (!ctx.text().contains(": ")) throw ctx.error("expected \"activity label: context\"");
            List<String> endings = new ArrayList<>();
            for (int k = 2; k < 6; k++) endings.add(HellaSwagText.preprocess(lines.get(i + k).text()));
            out.add(multipleChoice(out.size(), HellaSwagText.query(ctx.text()), endings, gold, label));
        }
        return out;
    }
}
