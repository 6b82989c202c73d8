package lowbit.eval.tasks;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** Expected values worked out by hand from lm-eval's hellaswag/utils.py and Python's str methods. */
class HellaSwagTextTest {
    @Test
    void preprocessAsLmEval() {
        // strip, " [title]" -> ". ", tags removed, "  " -> " " once (so three spaces leave two)
        assertEquals("How to dry hair. Use a towel.  Wring it out.",
                HellaSwagText.preprocess("  How to dry hair [title] Use a towel. [step]   Wring it out.\n"));
    }

    @Test
    void capitalizeLowersTheRestAsPythonDoes() {
        assertEquals("The man in the uk", HellaSwagText.capitalize("the man in the UK"));
        assertEquals("", HellaSwagText.capitalize(""));
    }

    @Test
    void onlyALowerCaseTailAfterTheLastSentenceEndIsCapitalized() {
        assertEquals("Label: A man. Then he", HellaSwagText.query("Label: A man. then he"));
        assertEquals("Label: A man? The Man", HellaSwagText.query("Label: A man? The Man"));
        assertEquals("Label: a man", HellaSwagText.query("Label: a man"));
        assertEquals("Label", HellaSwagText.pyStrip("\u00a0Label\u2003"));
    }
}
