package lowbit.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import lowbit.calibration.CalibrationSampler.Mode;
import lowbit.calibration.CalibrationSet.Draw;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CalibrationSamplerTest {
    @TempDir
    Path dir;

    private final Tokenizer chars = new CharTokenizer();

    // Under CharTokenizer (BOS + one token per char) these documents have 4, 11, 6 and 21 tokens.
    private static final List<String> DOCS = List.of("aaa", "bbbbbbbbbb", "ccccc", "dddddddddddddddddddd");

    private Path jsonl(List<String> docs) throws Exception {
        StringBuilder sb = new StringBuilder();
        for (String d : docs) sb.append(new ObjectMapper().writeValueAsString(Map.of("text", d, "url", "x"))).append("\n\n");
        Path f = dir.resolve("docs.jsonl");
        Files.writeString(f, sb);
        return f;
    }

    @Test
    void documentsModeDrawsOnlyDocumentsLongerThanSeqlenAndOffsetsAsTheReference() throws Exception {
        Path f = jsonl(DOCS);
        CalibrationSampler s = CalibrationSampler.of(chars).textFile(f).nsamples(300).seqlen(6).seed(7);
        assertArrayEquals(new int[] {4, 11, 6, 21}, s.documentTokenCounts());
        assertEquals(2, s.eligibleDocuments(6), "6 tokens is not more than seqlen 6");
        assertEquals(3, s.eligibleDocuments(5));
        assertEquals(0, s.eligibleDocuments(21));

        CalibrationSet set = s.sample();
        assertEquals(f.toString(), set.source());
        assertEquals(Hashing.sha256(f), set.sourceSha256());
        assertEquals("documents", set.mode());
        assertNull(set.separator());
        assertEquals(4, set.documents());
        assertEquals(2, set.eligibleDocuments());
        assertEquals(4 + 11 + 6 + 21, set.sourceTokens());
        assertEquals(300L * 6, set.tokens());
        assertTrue(set.rejectedDraws() > 0, "half the documents are too short, so some draws are thrown back");

        Set<Integer> docsDrawn = new TreeSet<>(), offsetsOfD = new TreeSet<>();
        for (int i = 0; i < set.nsamples(); i++) {
            Draw d = set.draws().get(i);
            docsDrawn.add(d.document());
            assertEquals(6, d.length());
            assertEquals(6, set.windows()[i].length);
            int[] doc = chars.encodeWithSpecials(DOCS.get(d.document()));
            assertTrue(d.offset() >= 0 && d.offset() <= doc.length - 6 - 1, "offset " + d.offset() + " of " + d);
            assertArrayEquals(Arrays.copyOfRange(doc, d.offset(), d.offset() + 6), set.windows()[i]);
            if (d.document() == 3) offsetsOfD.add(d.offset());
        }
        assertEquals(Set.of(1, 3), docsDrawn);
        // randint(0, count - seqlen - 1): 21 - 6 - 1 = 14 is the last offset; 15 (the last full window) never comes
        assertEquals(new TreeSet<>(java.util.stream.IntStream.rangeClosed(0, 14).boxed().toList()), offsetsOfD);
        int atZero = 0;
        for (int i = 0; i < set.nsamples(); i++)
            if (set.draws().get(i).offset() == 0) {
                assertEquals(CharTokenizer.BOS, set.windows()[i][0], "a document's first token is its BOS");
                atZero++;
            }
        assertTrue(atZero > 0);
    }

    @Test
    void sameSeedSameDrawsOtherSeedOthers() throws Exception {
        Path f = jsonl(DOCS);
        CalibrationSet a = CalibrationSampler.of(chars).textFile(f).nsamples(40).seqlen(5).seed(1).sample();
        CalibrationSet b = CalibrationSampler.of(chars).textFile(f).nsamples(40).seqlen(5).seed(1).threads(1).sample();
        assertEquals(a, b);
        assertEquals(a.draws(), b.draws());
        assertTrue(Arrays.deepEquals(a.windows(), b.windows()));
        assertEquals(a.provenance(), b.provenance());
        CalibrationSet c = CalibrationSampler.of(chars).textFile(f).nsamples(40).seqlen(5).seed(2).sample();
        assertNotEquals(a.draws(), c.draws());
        assertNotEquals(a.windowsSha256(), c.windowsSha256());
        assertNotEquals(a, c);
    }

    @Test
    void noDocumentLongEnoughNamesSourceSeqlenAndLongest() throws Exception {
        Path f = jsonl(DOCS);
        var e = assertThrows(IllegalArgumentException.class,
                () -> CalibrationSampler.of(chars).textFile(f).nsamples(1).seqlen(21).sample());
        String m = e.getMessage();
        for (String part : List.of(f.toString(), "4 documents", "seqlen 21", "the longest has 21", "--calib-seqlen 20",
                "concatenated"))
            assertTrue(m.contains(part), () -> "'" + part + "' missing from: " + m);
    }

    @Test
    void concatenatedModeCutsOneStream() throws Exception {
        Path f = dir.resolve("story.txt");
        Files.writeString(f, "one two\nthree\n\n \nfour five six\r\n\r\nseven\n");
        CalibrationSampler s = CalibrationSampler.of(chars).textFile(f).mode(Mode.CONCATENATED).nsamples(50).seqlen(8).seed(3);
        CalibrationSet set = s.sample();
        int[] stream = chars.encodeWithSpecials("one two\nthree\n\nfour five six\n\nseven");
        assertEquals("concatenated", set.mode());
        assertEquals("\n\n", set.separator());
        assertEquals(3, set.documents());
        assertEquals(stream.length, set.sourceTokens());
        for (int i = 0; i < set.nsamples(); i++) {
            Draw d = set.draws().get(i);
            assertEquals(-1, d.document());
            assertTrue(d.offset() >= 0 && d.offset() <= stream.length - 8 - 1);
            assertArrayEquals(Arrays.copyOfRange(stream, d.offset(), d.offset() + 8), set.windows()[i]);
        }
        // the separator is a parameter and changes the stream
        CalibrationSet spaced = s.separator(" ").sample();
        assertEquals(chars.encodeWithSpecials("one two\nthree four five six seven").length, spaced.sourceTokens());
        assertEquals(" ", spaced.provenance().get("separator"));

        var e = assertThrows(IllegalArgumentException.class, () -> s.separator("\n\n").seqlen(stream.length).sample());
        for (String part : List.of(f.toString(), stream.length + " tokens", "seqlen " + stream.length))
            assertTrue(e.getMessage().contains(part), () -> "'" + part + "' missing from: " + e.getMessage());
        assertEquals(1, s.seqlen(stream.length - 1).nsamples(3).sample().draws().stream().mapToInt(Draw::offset).max().getAsInt() + 1,
                "with one token to spare the only offset is 0");
    }

    @Test
    void plainTextDocumentsAreParagraphs() throws Exception {
        assertEquals(List.of("para one\n  line two", "para two", "para three"),
                Documents.paragraphs("\n\npara one\n  line two\n\n\n \t \npara two\r\n\r\npara three\n"));
        assertEquals(List.of("just one"), Documents.paragraphs("just one"));
    }

    @Test
    void realTokenizerWindowsMatchRetokenizedParagraphs() throws Exception {
        Tokenizer tok = Tokenizers.fromLlama2c(DataDir.require("models/stories260K/tok512.bin"), 512);
        String wiki = Files.readString(DataDir.require("wikitext-2-raw/wiki.test.raw"));
        Path f = dir.resolve("wiki-head.txt");
        Files.writeString(f, wiki.substring(0, wiki.indexOf('\n', 60_000) + 1));
        Documents docs = Documents.read(f);
        CalibrationSet set = CalibrationSampler.of(tok).documents(docs).nsamples(16).seqlen(256).seed(0).sample();
        assertTrue(set.eligibleDocuments() > 1 && set.eligibleDocuments() < docs.size(), set.toString());
        for (int i = 0; i < set.nsamples(); i++) {
            Draw d = set.draws().get(i);
            int[] ids = tok.encodeWithSpecials(docs.texts().get(d.document()));
            assertTrue(ids.length > 256);
            assertArrayEquals(Arrays.copyOfRange(ids, d.offset(), d.offset() + 256), set.windows()[i]);
        }
    }

    @Test
    void provenanceListsParametersAndEveryDrawAndSerializes() throws Exception {
        Path f = jsonl(DOCS);
        CalibrationSet set = CalibrationSampler.of(chars).textFile(f).nsamples(5).seqlen(4).seed(11).sample();
        JsonNode p = new ObjectMapper().valueToTree(set.provenance());
        assertEquals(f.toString(), p.path("source").asText());
        assertEquals(set.sourceSha256(), p.path("sourceSha256").asText());
        assertEquals("documents", p.path("mode").asText());
        assertEquals(5, p.path("nsamples").asInt());
        assertEquals(4, p.path("seqlen").asInt());
        assertEquals(11, p.path("seed").asLong());
        assertEquals(4, p.path("documents").asInt());
        assertEquals(3, p.path("eligibleDocuments").asInt());
        assertEquals(20, p.path("tokens").asLong());
        assertEquals(set.windowsSha256(), p.path("windowsSha256").asText());
        assertEquals(5, p.path("draws").size());
        for (int i = 0; i < 5; i++) {
            Draw d = set.draws().get(i);
            JsonNode j = p.path("draws").get(i);
            assertEquals(d, new Draw(j.path("document").asInt(), j.path("offset").asInt(), j.path("length").asInt()));
        }
        assertEquals(set.distinctDocuments(), p.path("distinctDocuments").asInt());
    }

    @Test
    void badParametersAndSourcesSayWhat() throws Exception {
        CalibrationSampler s = CalibrationSampler.of(chars);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> s.nsamples(0)).getMessage().contains("nsamples must be >= 1, got 0"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> s.seqlen(1)).getMessage().contains("seqlen must be >= 2 tokens, got 1"));
        assertTrue(assertThrows(IllegalStateException.class, s::sample).getMessage().contains("no calibration source"));
        assertEquals(Mode.CONCATENATED, Mode.parse("concatenated"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Mode.parse("shuffled")).getMessage().contains("shuffled"));

        Path bad = dir.resolve("bad.jsonl");
        Files.writeString(bad, "{\"text\":\"ok\"}\n{\"body\":\"no text\"}\n");
        var e = assertThrows(FormatException.class, () -> s.textFile(bad));
        assertTrue(e.getMessage().contains("bad.jsonl") && e.getMessage().contains("line 2"), e.getMessage());
        Path notJson = dir.resolve("broken.jsonl");
        Files.writeString(notJson, "{\"text\": \"unterminated\n");
        assertTrue(assertThrows(FormatException.class, () -> s.textFile(notJson)).getMessage().contains("line 1 is not JSON"));
        Path empty = dir.resolve("empty.txt");
        Files.writeString(empty, "\n \n");
        assertTrue(assertThrows(FormatException.class, () -> s.textFile(empty)).getMessage().contains("no documents"));
        var missing = assertThrows(FormatException.class, () -> s.source(dir.resolve("nope.txt").toString()));
        assertTrue(missing.getMessage().contains("nope.txt"), missing.getMessage());
    }
}
