package lowbit.eval.tasks.mmlu;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
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

    /** environment/fixtures/make_mmlu_prompts.py: lm-eval 0.4.13's fewshot_context and requests for every fixture item. */
    @Test
    void everyFixturePromptEqualsTheOneLmEvalBuilt() throws IOException {
        JsonNode golden;
        try (InputStream in = MmluPromptTest.class.getResourceAsStream("/mmlu/lm-eval-prompts.json")) {
            golden = new ObjectMapper().readTree(in);
        }
        assertEquals(5, golden.get("num_fewshot").asInt());
        Path fixture = MmluDataTest.fixture();
        int compared = 0;
        for (MmluData data : List.of(MmluData.load(fixture), MmluData.load(fixture.resolve("edge")))) {
            for (String subject : data.subjects()) {
                List<MmluItem> items = data.items(subject);
                for (int i = 0; i < items.size(); i++) {
                    JsonNode expected = golden.get("items").get(subject + "/" + i);
                    assertNotNull(expected, subject + "/" + i + " is not in the golden file");
                    assertEquals(expected.get("context").asText(), data.context(items.get(i), 5), subject + "/" + i);
                    List<String> continuations = new ArrayList<>();
                    expected.get("continuations").forEach(c -> continuations.add(c.asText()));
                    assertEquals(continuations, MmluPrompt.CONTINUATIONS);
                    assertEquals(expected.get("gold").asInt(), items.get(i).gold(), subject + "/" + i);
                    compared++;
                }
            }
        }
        assertEquals(golden.get("items").size(), compared, "every golden prompt was compared");
        assertEquals(9, compared);
    }

    @Test
    void theEdgeFixtureKeepsWhatLmEvalKeeps() {
        MmluData edge = MmluData.load(MmluDataTest.fixture().resolve("edge"));
        assertEquals(Map.of("virology", 3), edge.sizes());
        assertEquals(6, edge.subject("virology").dev().size(), "a sixth dev item is read but never a shot");
        MmluItem spaced = edge.items("virology").get(0);
        assertEquals("  Spaced question \u2003", spaced.question());
        assertEquals(List.of(" lead", "trail ", "\"quoted\"", ""), spaced.choices());
        assertTrue(edge.context(spaced, 5).endsWith("\n\nSpaced question\nA.  lead\nB. trail \nC. \"quoted\"\nD. \nAnswer:"));
        assertFalse(edge.context(spaced, 5).contains("A sixth dev item"));
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
