package lowbit.eval.tasks;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped files rebuilt into lm-eval's requests. Expected strings are lm-eval's templates (tasks/*.yaml)
 * applied by hand to the original records (the official PIQA file, the HellaSwag validation item "Roof shingle
 * removal", ind 24, whose lm-eval prompt is widely quoted) and the sizes of the published evaluation splits.
 */
class TasksTest {
    private static List<Item> load(String name) {
        Task t = Tasks.get(name);
        for (String f : t.files()) assumeTrue(Files.exists(DataDir.root().resolve(f)), f + " not in the data directory");
        return t.load();
    }

    private static void assertRequest(Request r, String context, String continuation) {
        assertEquals(context, r.context());
        assertEquals(continuation, r.continuation());
    }

    @Test
    void piqaFromTheOfficialFileKeepsTheSolutionsSpacing() {
        List<Item> items = load("piqa");
        assertEquals(1838, items.size());
        Item first = items.get(0);
        assertRequest(first.requests().get(0), "Question: How do I ready a guinea pig cage for it's new occupants?\nAnswer:",
                " Provide the guinea pig with a cage full of a few inches of bedding made of ripped paper strips, you will also need to supply it with a water bottle and a food dish.");
        assertEquals(0, first.gold());
        Item second = items.get(1);
        assertRequest(second.requests().get(0), "Question: dresser\nAnswer:", " replace drawer with bobby pin ");
        assertRequest(second.requests().get(1), "Question: dresser\nAnswer:", " finish, woodgrain with  bobby pin ");
        assertEquals(List.of("replace drawer with bobby pin ", "finish, woodgrain with  bobby pin "), second.choices());
        assertEquals(1, second.gold());
    }

    @Test
    void arcAddsTheAnswerLine() {
        List<Item> easy = load("arc_easy");
        assertEquals(2376, easy.size());
        assertRequest(easy.get(0).requests().get(1),
                "Question: Which statement best explains why photosynthesis is the foundation of most food webs?\nAnswer:",
                " Most ecosystems are found on land instead of in water.");
        assertEquals(0, easy.get(0).gold());
        assertEquals(1172, load("arc_challenge").size());
    }

    @Test
    void boolqDropsThePassageLabelAndAsksForYesOrNo() {
        List<Item> items = load("boolq");
        assertEquals(3270, items.size());
        Request no = items.get(0).requests().get(0);
        assertTrue(no.context().startsWith("All biomass goes through at least some of these steps"), no.context());
        assertTrue(no.context().endsWith("\nQuestion: does ethanol take more energy make that produces?\nAnswer:"), no.context());
        assertEquals(" no", no.continuation());
        assertEquals(" yes", items.get(0).requests().get(1).continuation());
        assertEquals(0, items.get(0).gold());
    }

    @Test
    void winograndeScoresTheSharedSuffixAfterEachFilledInPrefix() {
        List<Item> items = load("winogrande");
        assertEquals(1267, items.size());
        Item first = items.get(0);
        assertRequest(first.requests().get(0), "Sarah was a much better surgeon than Maria so Sarah", " always got the easier cases.");
        assertRequest(first.requests().get(1), "Sarah was a much better surgeon than Maria so Maria", " always got the easier cases.");
        assertEquals(1, first.gold());
    }

    @Test
    void lambadaScoresTheLastWordAfterASpace() {
        List<Item> items = load("lambada_openai");
        assertEquals(5153, items.size());
        Request r = items.get(0).requests().get(0);
        assertTrue(r.context().endsWith("his mouth curved in a confident grin, I don't care about"), r.context());
        assertEquals(" signs", r.continuation());
    }

    @Test
    void hellaswagCapitalizesTheSecondContextPartAsLmEvalDoes() {
        List<Item> items = load("hellaswag");
        assertEquals(10042, items.size());
        Item first = items.get(0);
        assertRequest(first.requests().get(3), "Roof shingle removal: A man is sitting on a roof. He", " starts pulling up roofing on a roof.");
        assertEquals(3, first.gold());
        assertEquals("Clean and jerk: A lady walks to a barbell. She bends down and grabs the pole. The lady",
                items.get(1).requests().get(0).context());
    }

    @Test
    void unknownTaskNamesTheKnownOnes() {
        var e = assertThrows(IllegalArgumentException.class, () -> Tasks.parse("piqa,arc_eazy", List.of("mmlu")));
        assertEquals("--tasks: unknown task 'arc_eazy'; known tasks: piqa, arc_easy, arc_challenge, hellaswag, winogrande, boolq, "
                + "lambada_openai, mmlu (or all)", e.getMessage());
        assertEquals(List.of("boolq", "piqa"), Tasks.parse("boolq, piqa,boolq", List.of()));
        assertEquals(8, Tasks.parse("all", List.of("mmlu")).size());
    }

    @Test
    void malformedLinesAreNamedByFileAndLine(@TempDir Path tmp) throws Exception {
        Path arc = tmp.resolve("arc_easy.jsonl");
        Files.writeString(arc, "{\"query\": \"Question: a?\", \"choices\": [\"x\", \"y\"], \"gold\": 1}\n{\"query\": \"Question: b?\", \"choices\": [\"x\"");
        var e = assertThrows(FormatException.class, () -> Tasks.arc(List.of(arc)));
        assertTrue(e.getMessage().contains(arc.toString()) && e.getMessage().contains("line 2: not a JSON object"), e.getMessage());

        Files.writeString(arc, "{\"query\": \"Question: a?\", \"choices\": [\"x\", \"y\"], \"gold\": 2}\n");
        e = assertThrows(FormatException.class, () -> Tasks.arc(List.of(arc)));
        assertTrue(e.getMessage().contains("line 1: gold answer 2 is not one of the 2 choices"), e.getMessage());

        Path hs = tmp.resolve("hs.txt");
        Files.writeString(hs, "Label: a man. he\n3\na\nb\nc\n");
        e = assertThrows(FormatException.class, () -> Tasks.hellaswag(List.of(hs)));
        assertTrue(e.getMessage().contains("expected 6 lines per item"), e.getMessage());

        Path piqa = tmp.resolve("p.jsonl"), labels = tmp.resolve("l.lst");
        Files.writeString(piqa, "{\"goal\": \"g\", \"sol1\": \"a\", \"sol2\": \"b\"}\n");
        Files.writeString(labels, "2\n");
        e = assertThrows(FormatException.class, () -> Tasks.piqa(List.of(piqa, labels)));
        assertTrue(e.getMessage().contains(labels + ": line 1: expected a label 0 or 1, got '2'"), e.getMessage());
    }

    @Test
    void missingFileIsNamed(@TempDir Path tmp) {
        var e = assertThrows(FormatException.class, () -> Tasks.lambada(List.of(tmp.resolve("absent.jsonl"))));
        assertTrue(e.getMessage().contains("absent.jsonl"), e.getMessage());
    }
}
