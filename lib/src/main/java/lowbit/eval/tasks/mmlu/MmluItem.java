package lowbit.eval.tasks.mmlu;

import java.util.List;

/**
 * One MMLU question as the original release stores it (a row {@code question,A,B,C,D,answer}) and as lm-eval's
 * dataset ({@code cais/mmlu}) holds it: the text unchanged, the four choices, and the answer letter as index 0..3.
 *
 * @param line the 1-based line of the file where the row starts, for messages about the item
 */
public record MmluItem(String subject, String question, List<String> choices, int gold, int line) {
    public static final int CHOICES = 4;

    public MmluItem {
        choices = List.copyOf(choices);
        if (choices.size() != CHOICES)
            throw new IllegalArgumentException("an MMLU item has 4 choices, got " + choices.size() + " (" + subject + ", line " + line + ")");
        if (gold < 0 || gold >= CHOICES)
            throw new IllegalArgumentException("MMLU gold index must be 0..3, got " + gold + " (" + subject + ", line " + line + ")");
    }

    /** The answer letter, A..D. */
    public String answerLetter() {
        return MmluPrompt.LETTERS.get(gold);
    }
}
