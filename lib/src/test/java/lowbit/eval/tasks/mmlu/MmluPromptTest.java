package lowbit.eval.tasks.mmlu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import org.junit.jupiter.api.Test;

class MmluPromptTest {
    /**
     * Written by hand from lm-eval's mmlu default template: description, then per shot doc_to_text + target
     * delimiter " " + letter + fewshot delimiter "\n\n", then the item's doc_to_text ending in "Answer:".
     */
    static final String ASTRONOMY_THIRD_ITEM_5_SHOT = ""
            + "The following are multiple choice questions (with answers) about astronomy.\n\n"
            + "Which planet is closest to the Sun?\nA. Venus\nB. Mercury\nC. Earth\nD. Mars\nAnswer: B\n\n"
            + "What is the main source of the Sun's energy?\nA. Chemical burning of hydrogen\nB. Gravitational contraction\n"
            + "C. Nuclear fusion of hydrogen into helium\nD. Radioactive decay\nAnswer: C\n\n"
            + "Why do we see phases of the Moon?\nA. Earth's shadow falls on the Moon\nB. The Moon's distance from Earth changes\n"
            + "C. We see different fractions of the Moon's sunlit half\nD. The Moon emits light unevenly\nAnswer: C\n\n"
            + "A light-year is a unit of\nA. time\nB. distance\nC. speed\nD. brightness\nAnswer: B\n\n"
            + "Which of these stars is the closest to the Solar System?\nA. Sirius\nB. Betelgeuse\nC. Proxima Centauri\n"
            + "D. Polaris\nAnswer: C\n\n"
            + "A star's \"apparent magnitude\" measures its\nA. mass\nB. age\nC. brightness as seen from Earth\n"
            + "D. temperature\nAnswer:";

    @Test
    void fiveShotPromptOfAFixtureItemIsLmEvalsString() {
        MmluData data = MmluData.load(MmluDataTest.fixture());
        MmluItem item = data.items("astronomy").get(2);
        assertEquals(ASTRONOMY_THIRD_ITEM_5_SHOT, data.context(item, MmluPrompt.SHOTS));
        assertEquals(List.of(" A", " B", " C", " D"), MmluPrompt.CONTINUATIONS);
        assertEquals(2, item.gold());
    }

    @Test
    void theDescriptionSpellsTheSubjectWithSpaces() {
        MmluData data = MmluData.load(MmluDataTest.fixture());
        MmluItem item = data.items("high_school_computer_science").get(2);
        assertEquals("The following are multiple choice questions (with answers) about high school computer science.\n\n"
                + "Which of these numbers is prime?\nA. 21\nB. 27\nC. 29\nD. 33\nAnswer:", data.context(item, 0));
        assertTrue(data.context(item, 1).startsWith("The following are multiple choice questions (with answers) about high"
                + " school computer science.\n\nHow many bits are in a byte?\nA. 4\nB. 8\nC. 16\nD. 32\nAnswer: B\n\n"
                + "Which of these numbers is prime?"));
    }

    @Test
    void onlyTheQuestionIsStrippedAndWithPythonsWhitespace() {
        // U+00A0 and U+0085 are whitespace to Python's str.strip() but not to Java's String.strip()
        MmluItem item = new MmluItem("virology", "\u00a0 What is it?\n\u0085", List.of(" x ", "y\n", "z", "w"), 1, 1);
        assertEquals("What is it?\nA.  x \nB. y\n\nC. z\nD. w\nAnswer:", MmluPrompt.question(item));
        assertEquals("\u200bkeep\u200b", PythonText.strip("\u200bkeep\u200b"), "U+200B is not whitespace to Python");
        assertEquals("x", PythonText.strip("\u2000\u200a\u3000\u1680\u001c\u000bx\u2028\u2029\u202f\u205f\t\r\n "));
    }

    @Test
    void moreShotsThanTheDevSplitHasIsAnError() {
        MmluData data = MmluData.load(MmluDataTest.fixture());
        MmluItem item = data.items("astronomy").get(0);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> data.context(item, 6));
        assertEquals("MMLU --fewshot 6 for astronomy: expected 0..5 (the subject's dev split has 5 items)", e.getMessage());
    }
}
