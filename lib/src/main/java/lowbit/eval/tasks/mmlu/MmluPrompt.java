package lowbit.eval.tasks.mmlu;

import java.util.List;

/**
 * The prompt of lm-evaluation-harness's {@code mmlu} task (lm_eval/tasks/mmlu/default, checked against
 * lm_eval 0.4.13), as plain text without a chat template:
 *
 * <pre>
 * description                = "The following are multiple choice questions (with answers) about {subject, _ as space}.\n\n"
 * doc_to_text(item)          = question.strip() + "\nA. " + a + "\nB. " + b + "\nC. " + c + "\nD. " + d + "\nAnswer:"
 * shot(item)                 = doc_to_text(item) + " " + letter + "\n\n"    (target delimiter " ", fewshot delimiter "\n\n")
 * context(item, k)           = description + shot(dev[0]) + ... + shot(dev[k-1]) + doc_to_text(item)
 * continuations              = " A", " B", " C", " D"                        (target delimiter + lm-eval's doc_to_choice)
 * </pre>
 *
 * The shots are the dev split's first k items in file order (lm-eval's {@code first_n} sampler; dev is not the
 * split evaluated, so no item is excluded). Only the question is stripped, with Python's notion of whitespace;
 * the choices go in verbatim. The description is lm-eval's system message, which without a chat template is
 * simply prepended with no delimiter of its own (it already ends in a blank line).
 */
public final class MmluPrompt {
    private MmluPrompt() {}

    public static final List<String> LETTERS = List.of("A", "B", "C", "D");
    /** lm-eval's target delimiter, between "Answer:" and the letter. */
    public static final String TARGET_DELIMITER = " ";
    /** lm-eval's default fewshot delimiter, after each shot's answer. */
    public static final String FEWSHOT_DELIMITER = "\n\n";
    /** The continuations scored for every item: " A", " B", " C", " D". */
    public static final List<String> CONTINUATIONS = LETTERS.stream().map(l -> TARGET_DELIMITER + l).toList();
    /** The number of shots of the standard 5-shot MMLU, also the size of each subject's dev split. */
    public static final int SHOTS = 5;

    /** lm-eval's per-subject description line, ending in a blank line. */
    public static String description(String subject) {
        return "The following are multiple choice questions (with answers) about " + subject.replace('_', ' ') + ".\n\n";
    }

    /** lm-eval's doc_to_text: the stripped question, the lettered choices, and "Answer:" with nothing after it. */
    public static String question(MmluItem item) {
        List<String> c = item.choices();
        return PythonText.strip(item.question()) + "\nA. " + c.get(0) + "\nB. " + c.get(1) + "\nC. " + c.get(2)
                + "\nD. " + c.get(3) + "\nAnswer:";
    }

    /**
     * The context for one item with {@code shots} examples from its subject's dev items (their first {@code shots},
     * in order); the continuations to score after it are {@link #CONTINUATIONS}.
     */
    public static String context(List<MmluItem> dev, int shots, MmluItem item) {
        if (shots < 0 || shots > dev.size())
            throw new IllegalArgumentException("MMLU --fewshot " + shots + " for " + item.subject() + ": expected 0.."
                    + dev.size() + " (the subject's dev split has " + dev.size() + " items)");
        StringBuilder s = new StringBuilder(description(item.subject()));
        for (MmluItem shot : dev.subList(0, shots))
            s.append(question(shot)).append(TARGET_DELIMITER).append(shot.answerLetter()).append(FEWSHOT_DELIMITER);
        return s.append(question(item)).toString();
    }
}
