package lowbit.eval.tasks.mmlu;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class MmluDataTest {
    @TempDir Path tmp;

    static Path fixture() {
        try {
            return Path.of(MmluDataTest.class.getResource("/mmlu/test").toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void loadsTheFixtureInLmEvalsSubjectOrder() {
        MmluData data = MmluData.load(fixture());
        assertEquals(List.of("astronomy", "high_school_computer_science"), data.subjects());
        assertEquals(Map.of("astronomy", 3, "high_school_computer_science", 3), data.sizes());
        assertEquals(5, data.subject("astronomy").dev().size());
        assertEquals(List.of(), data.subject("astronomy").val());
        assertEquals(MmluCategory.STEM, data.subject("high_school_computer_science").category());

        MmluItem first = data.items("high_school_computer_science").get(0);
        assertEquals(new MmluItem("high_school_computer_science", "What does CPU stand for?",
                List.of("Central Processing Unit", "Computer Personal Unit", "Central Program Utility", "Core Processing Usage"), 0, 1), first);
        assertEquals("A", first.answerLetter());
    }

    @Test
    void quotedFieldsKeepCommasAndUndoubleQuotes() {
        MmluData data = MmluData.load(fixture());
        MmluItem jupiter = data.items("astronomy").get(1);
        assertEquals("Which gas makes up most of Jupiter's atmosphere, by mass?", jupiter.question());
        assertEquals(0, jupiter.gold());
        MmluItem magnitude = data.items("astronomy").get(2);
        assertEquals("A star's \"apparent magnitude\" measures its", magnitude.question());
        assertEquals(List.of("mass", "age", "brightness as seen from Earth", "temperature"), magnitude.choices());
        assertEquals(2, magnitude.gold());
        assertEquals(3, magnitude.line());
        MmluItem boolDev = data.subject("high_school_computer_science").dev().get(4);
        assertEquals("it depends on the order", boolDev.choices().get(3));
    }

    @Test
    void newlinesInsideQuotesAndSpacesAreKeptAndLinesCountedFromTheRowStart() throws IOException {
        Path dir = copyOfFixture();
        write(dir.resolve("test/astronomy_test.csv"),
                "\"Two\nlines \"\"quoted\"\", here\", a ,\" b\",c,d,D\n"
                        + "Second,1,2,3,4,B\n");
        List<MmluItem> items = MmluData.load(dir).items("astronomy");
        assertEquals("Two\nlines \"quoted\", here", items.get(0).question());
        assertEquals(List.of(" a ", " b", "c", "d"), items.get(0).choices());
        assertEquals(3, items.get(0).gold());
        assertEquals(1, items.get(0).line());
        assertEquals(3, items.get(1).line());
        assertEquals(1, items.get(1).gold());
    }

    @Test
    void crlfFilesEndRowsAtCrlfAndKeepItInsideQuotesAsPythonsCsvReaderDoes() throws IOException {
        Path dir = copyOfFixture();
        write(dir.resolve("test/astronomy_test.csv"), "\"Two\r\nlines\",a,b,c,d,C\r\nSecond,1,2,3,\"4\",B\r\n");
        List<MmluItem> items = MmluData.load(dir).items("astronomy");
        assertEquals("Two\r\nlines", items.get(0).question());
        assertEquals(2, items.get(0).gold());
        assertEquals(List.of("1", "2", "3", "4"), items.get(1).choices());
        assertEquals(1, items.get(1).gold());
        assertEquals(3, items.get(1).line());
    }

    @Test
    void aRowWithTheWrongNumberOfFieldsNamesFileAndLine() throws IOException {
        Path dir = copyOfFixture();
        Path file = dir.resolve("test/astronomy_test.csv");
        write(file, "Q1,a,b,c,d,A\n\"Multi\nline\",a,b,c,D\n");
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertEquals(file + ": line 2: 5 fields; expected 6 (question,A,B,C,D,answer)", e.getMessage());
    }

    @Test
    void anAnswerOutsideAToDIsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path file = dir.resolve("dev/astronomy_dev.csv");
        write(file, "Q1,a,b,c,d,A\nQ2,a,b,c,d,E\n");
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertEquals(file + ": line 2: answer \"E\"; expected one of A, B, C, D", e.getMessage());
    }

    @Test
    void textAfterAClosingQuoteIsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path file = dir.resolve("test/high_school_computer_science_test.csv");
        write(file, "Q1,a,b,c,d,A\nQ2,a,\"b\"x,c,d,B\n");
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertTrue(e.getMessage().startsWith(file + ": line 2: not valid CSV"), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
    }

    @Test
    void anEmptyLineIsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path file = dir.resolve("test/astronomy_test.csv");
        write(file, "Q1,a,b,c,d,A\n\nQ2,a,b,c,d,B\n");
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertEquals(file + ": line 2: empty line; expected a row question,A,B,C,D,answer", e.getMessage());
    }

    @Test
    void invalidUtf8IsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path file = dir.resolve("test/astronomy_test.csv");
        Files.write(file, new byte[] {'Q', (byte) 0xC3, ',', 'a', ',', 'b', ',', 'c', ',', 'd', ',', 'A', '\n'});
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertTrue(e.getMessage().startsWith(file + ": not UTF-8 text"), e.getMessage());
    }

    @Test
    void aSubjectWithoutDevFileOrWithFewerThanFiveShotsIsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path dev = dir.resolve("dev/astronomy_dev.csv");
        Files.delete(dev);
        FormatException missing = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertEquals(dev + ": missing: MMLU subject astronomy has a test file but no dev file, which holds its 5 few-shot examples",
                missing.getMessage());

        write(dev, "Q1,a,b,c,d,A\nQ2,a,b,c,d,B\nQ3,a,b,c,d,C\nQ4,a,b,c,d,D\n");
        FormatException four = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertEquals(dev + ": MMLU subject astronomy has 4 dev items; expected at least 5 (the 5-shot prompt's examples)",
                four.getMessage());
    }

    @Test
    void aTestFileOfAnUnknownSubjectIsAnError() throws IOException {
        Path dir = copyOfFixture();
        Path odd = dir.resolve("test/astrology_test.csv");
        write(odd, "Q1,a,b,c,d,A\n");
        FormatException e = assertThrows(FormatException.class, () -> MmluData.load(dir));
        assertTrue(e.getMessage().startsWith(odd + ": not one of lm-eval's 57 MMLU subjects"), e.getMessage());
    }

    @Test
    void anAbsentCopyIsOneLineNamingTheFolderAndTheDownloadCommand() throws IOException {
        String line = MmluData.absence(tmp).orElseThrow();
        assertEquals("MMLU skipped: no " + tmp.resolve("mmlu/test") + "/*_test.csv (run ./lowbit download mmlu to fetch the"
                + " original release, or put its dev/ and test/ folders under " + tmp.resolve("mmlu") + ")", line);
        Files.createDirectories(tmp.resolve("mmlu/test"));
        assertTrue(MmluData.absence(tmp).isPresent(), "an empty test folder is absent data too");
        copyDir(fixture(), tmp.resolve("mmlu"));
        assertTrue(MmluData.absence(tmp).isEmpty());
    }

    @Test
    void unknownAndAbsentSubjectsAreErrors() {
        MmluData data = MmluData.load(fixture());
        IllegalArgumentException unknown = assertThrows(IllegalArgumentException.class, () -> data.items("astrology"));
        assertTrue(unknown.getMessage().startsWith("unknown MMLU subject astrology"), unknown.getMessage());
        IllegalArgumentException absent = assertThrows(IllegalArgumentException.class, () -> data.items("virology"));
        assertTrue(absent.getMessage().contains("present: astronomy, high_school_computer_science"), absent.getMessage());
    }

    Path copyOfFixture() throws IOException {
        Path dir = tmp.resolve("mmlu");
        copyDir(fixture(), dir);
        return dir;
    }

    static void copyDir(Path from, Path to) throws IOException {
        for (String split : List.of("dev", "test")) {
            Files.createDirectories(to.resolve(split));
            try (var files = Files.list(from.resolve(split))) {
                for (Path f : files.toList()) Files.copy(f, to.resolve(split).resolve(f.getFileName().toString()));
            }
        }
    }

    static void write(Path file, String text) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }
}
