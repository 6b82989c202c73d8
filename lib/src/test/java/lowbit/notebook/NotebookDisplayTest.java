package lowbit.notebook;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import lowbit.plots.Charts;
import lowbit.progress.Progress;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class NotebookDisplayTest {
    private static Table table(int rows) {
        Table t = Table.create("t", StringColumn.create("name"), DoubleColumn.create("ppl"));
        for (int i = 0; i < rows; i++) {
            t.stringColumn("name").append("row<" + i + ">");
            t.doubleColumn("ppl").append(10.5 + i);
        }
        return t;
    }

    @Test
    void figuresAreThePlotlyMimeTypeWithoutTheLibrary() throws Exception {
        var b = Display.figure(Charts.bars(table(3), "name", "ppl", "a"));
        assertEquals(List.of("application/vnd.plotly.v1+json", "text/plain"), List.copyOf(b.data().keySet()));
        var fig = new com.fasterxml.jackson.databind.ObjectMapper().readTree(b.data().get(Display.PLOTLY_MIME));
        assertEquals("bar", fig.at("/data/0/type").asText());
        assertEquals("row<2>", fig.at("/data/0/x/0").asText(), "the largest ppl first");
        assertEquals("a", fig.at("/layout/title/text").asText());
        assertTrue(b.data().get(Display.PLOTLY_MIME).length() < 2_000, "a few hundred bytes of data, no plotly.js");
        assertEquals("<plotly figure: a>", b.text());
    }

    @Test
    void tablesAreEscapedAndCapped() {
        var b = Display.table(table(5), 2);
        assertTrue(b.html().contains("<td>row&lt;0&gt;</td>"), b.html());
        assertFalse(b.html().contains("row&lt;2&gt;"));
        assertTrue(b.html().contains("3 of 5 rows not shown"));
        assertTrue(b.text().contains("row<0>"));
        assertEquals(List.of("text/html", "text/plain"), List.copyOf(b.data().keySet()));
    }

    @Test
    void progressShowsOnceThenUpdatesInPlaceThrottled() {
        List<String> shown = new ArrayList<>();
        List<String> updates = new ArrayList<>();
        AtomicLong now = new AtomicLong();
        Progress p = new NotebookProgress(b -> {
            shown.add(b.text());
            return "id-" + shown.size();
        }, (id, b) -> updates.add(id + " " + b.text()), 250, now::get);
        try (var task = p.start("ppl", 4, "window")) {
            now.set(100_000_000L); // 0.1 s: within the interval, no update
            task.step(1);
            now.set(2_000_000_000L); // 2 s
            task.step(1);
            task.message("ppl 12.5");
        }
        assertEquals(List.of("ppl 0/4 window, 0:00 elapsed"), shown);
        assertEquals(2, updates.size(), updates.toString());
        assertEquals("id-1 ppl 2/4 window, 1.00 window/s, 0:02 elapsed, ETA 0:02", updates.get(0));
        assertEquals("id-1 ppl 2/4 window, 1.00 window/s, done in 0:02 | ppl 12.5", updates.get(1));
    }

    @Test
    void resultLinesKeepEveryDigit() {
        assertEquals("RESULT float.ppl=17.123456789012344", Lab.resultLine("float.ppl", 17.123456789012344));
        assertEquals("RESULT x=nan", Lab.resultLine("x", Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> Lab.resultLine("has space", 1));
    }

    @Test
    void skipIsOneLineWithItsReason() {
        assertEquals("SKIPPED no weights: provide them", Lab.skipLine("no weights:\n   provide them "));
        assertThrows(IllegalArgumentException.class, () -> Lab.skipLine(" "));
    }

    @Test
    void modelSourcesUnderTheDataDirectoryShowNoMachinePath() {
        String inData = lowbit.io.DataDir.root().resolve("models/x.gguf").toString();
        assertEquals(java.nio.file.Path.of("data", "models", "x.gguf").toString(), Model.shown(inData));
        assertEquals("/elsewhere/m.gguf", Model.shown("/elsewhere/m.gguf"), "the user's own path stays as given");
        assertEquals("hf:facebook/opt-125m", Model.shown("hf:facebook/opt-125m"));
    }

    @Test
    void modelNamesResolveUnderTheDataDirectory() {
        assertEquals("default", Model.resolve("default"));
        assertEquals("hf:facebook/opt-125m", Model.resolve("hf:facebook/opt-125m"));
        assertTrue(Model.resolve("stories260K").endsWith("models/stories260K/stories260K.bin"));
        var e = assertThrows(IllegalArgumentException.class, () -> Model.resolve("no-such-model"));
        assertTrue(e.getMessage().contains("no-such-model"));
        assertFalse(Model.available("no-such-model"));
        assertFalse(Model.available("hf:facebook/opt-125m"));
    }

    private static int count(String s, String sub) {
        int n = 0;
        for (int i = s.indexOf(sub); i >= 0; i = s.indexOf(sub, i + 1)) n++;
        return n;
    }
}
