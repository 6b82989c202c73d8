package lowbit.plots;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.Base64;
import java.util.Deque;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

public class HtmlTest {
    /** gzip -9 of plotly.js 2.35.3 is 2.41 MB, 3.21 MB as base64; the rest of a report is small. */
    static final long PAGE_BOUND = 3_400_000;

    static final List<String> TITLES = List.of("Weight kurtosis by block", "Sensitivity at 3 bits", "PPL vs bits",
            "Calibration size", "Mixed vs uniform");

    static List<Object> report() {
        Table stats = Table.create("stats",
                IntColumn.create("layer", 0, 0, 1, 1),
                StringColumn.create("module", "q_proj", "down_proj", "q_proj", "down_proj"),
                DoubleColumn.create("kurtosis", 3.2, 12.5, 3.5, 40.0));
        Table sens = Table.create("sensitivity",
                StringColumn.create("linear", "0.q_proj", "0.down_proj", "1.down_proj</script>"),
                DoubleColumn.create("dppl", 0.3, 4.2, 1.7));
        Table ppl = Table.create("ppl & bits",
                DoubleColumn.create("bits", 2, 3, 4, 2, 3, 4),
                StringColumn.create("method", "RTN", "RTN", "RTN", "GPTQ", "GPTQ", "GPTQ"),
                DoubleColumn.create("ppl", 3000, 80, 25, 400, 30, 21.5));
        Table cal = Table.create("calibration",
                DoubleColumn.create("samples", 8, 32, 128),
                DoubleColumn.create("mean", 25.0, 23.5, 22.5),
                DoubleColumn.create("lo", 24.0, 23.0, 22.25),
                DoubleColumn.create("hi", 26.0, 24.0, 22.75),
                StringColumn.create("method", "GPTQ", "GPTQ", "GPTQ"));
        Table mix = Table.create("mixed",
                DoubleColumn.create("avg_bits", 3, 3, 4, 4),
                StringColumn.create("allocation", "uniform", "mixed", "uniform", "mixed"),
                DoubleColumn.create("ppl", 80, 45, 25, 23));
        return List.of(
                new Html.Heading("Statistics"),
                Charts.heatmap(stats, "layer", "module", "kurtosis", TITLES.get(0)),
                Charts.bars(sens, "linear", "dppl", TITLES.get(1)),
                Charts.lines(ppl, "bits", "ppl", "method", TITLES.get(2), true),
                Charts.band(cal, "samples", "mean", "lo", "hi", "method", TITLES.get(3), true),
                Charts.groupedBars(mix, "avg_bits", "ppl", "allocation", TITLES.get(4)),
                "Numbers <are> from a hand-made table.",
                ppl);
    }

    static int count(String s, String what) {
        return (int) Pattern.compile(Pattern.quote(what)).matcher(s).results().count();
    }

    @Test
    void pageHoldsPlotlyOnceAndEveryFigureTitleAndTable() {
        String page = Html.page("lowbit report", report());
        assertEquals(1, count(page, "id=\"" + Html.PLOTLY_MARKER + "\""));
        assertEquals(1, count(page, "atob("));
        assertEquals(5, count(page, "<div class=\"lowbit-figure\""));
        assertEquals(5, count(page, "Plotly.newPlot("));
        for (int i = 0; i < 5; i++) assertTrue(page.contains("<div class=\"lowbit-figure\" id=\"fig_" + i + "\">"));
        for (String t : TITLES) assertTrue(page.contains("\"title\":{\"text\":\"" + t + "\"}"), t);
        assertTrue(page.contains("<title>lowbit report</title>"));
        assertTrue(page.contains("<h2>Statistics</h2>"));
        assertTrue(page.contains("<p>Numbers &lt;are&gt; from a hand-made table.</p>"));
        assertTrue(page.contains("<caption>ppl &amp; bits</caption>"));
        assertTrue(page.contains("<th>bits</th><th>method</th><th>ppl</th>"));
        // ppl's median magnitude is 80: two decimals give it 4 significant digits, and the column lines up.
        assertTrue(page.contains("<td class=\"num\">3000.00</td>") && page.contains("<td class=\"num\">21.50</td>"),
                "every table row is there, rounded per column");
        assertTrue(page.length() < PAGE_BOUND, "page is " + page.length() + " bytes");
        // The library is in the head, the figures in the body: one parse, no stray script end.
        assertTrue(page.indexOf(Html.PLOTLY_MARKER) < page.indexOf("<body>"));
        assertBalanced(page);
    }

    @Test
    void dataCannotCloseTheScriptEarly() {
        String page = Html.page("r", report());
        assertFalse(page.contains("1.down_proj</script>"));
        assertTrue(page.contains("1.down_proj<\\/script>"), "escaped inside the JavaScript string");
    }

    @Test
    void inlinedLibraryIsExactlyTheWebjarsPlotly() throws IOException {
        Matcher m = Pattern.compile("atob\\('([A-Za-z0-9+/=]+)'\\)").matcher(Html.plotlyScriptTag());
        assertTrue(m.find());
        byte[] gz = Base64.getDecoder().decode(m.group(1));
        byte[] inflated;
        try (InputStream in = new GZIPInputStream(new ByteArrayInputStream(gz))) {
            inflated = in.readAllBytes();
        }
        byte[] original;
        try (InputStream in = getClass().getClassLoader().getResourceAsStream(Html.PLOTLY_RESOURCE)) {
            original = in.readAllBytes();
        }
        assertArrayEquals(original, inflated);
        assertTrue(new String(inflated, 0, 200, StandardCharsets.UTF_8).contains("plotly.js v2.35.3"));
        assertTrue(gz.length < original.length / 4, "compressed " + gz.length + " of " + original.length);
    }

    @Test
    void pageWithoutFiguresCarriesNoLibrary() {
        Table t = Table.create("t", DoubleColumn.create("x", 1.5));
        String page = Html.page("tables only", List.of(t, "text"));
        assertFalse(page.contains(Html.PLOTLY_MARKER));
        assertTrue(page.length() < 5_000);
        assertBalanced(page);
    }

    @Test
    void figureDivWaitsForTheLibraryAndChecksItsId() {
        Figure f = (Figure) report().get(2);
        String div = Html.figureDiv(f, "sens_1");
        assertTrue(div.startsWith("<div class=\"lowbit-figure\" id=\"sens_1\"></div>"));
        assertTrue(div.contains("window.lowbitPlotly.then(draw)"));
        assertTrue(div.contains("lowbitPlotlyPending"));
        assertTrue(div.contains("Plotly.newPlot('sens_1', fig.data, fig.layout)"));
        assertFalse(div.contains(Html.PLOTLY_MARKER), "the library is on the page once, separately");
        assertBalanced(div);
        var e = assertThrows(IllegalArgumentException.class, () -> Html.figureDiv(f, "fig-1"));
        assertTrue(e.getMessage().contains("'fig-1'"), e.getMessage());
    }

    @Test
    void longTablesFoldUnderTheirCaption() {
        Table t = Table.create("per-layer", IntColumn.create("i", 1, 2, 3), DoubleColumn.create("x", 0.123456789, 12.5, 1e-9));
        String page = Html.page("r", List.of(new Html.Collapsed(t)));
        assertTrue(page.contains("<details class=\"lowbit-table\"><summary>per-layer (3 rows, 2 columns)</summary>"), page);
        // Median magnitude 0.12: four decimals; 1e-9 would round to zero there, so it is written in full.
        assertTrue(page.contains("<td class=\"num\">0.1235</td>") && page.contains("<td class=\"num\">12.5000</td>")
                && page.contains("<td class=\"num\">1e-9</td>"), page);
        assertBalanced(page);
    }

    @Test
    void numbersKeepMeaningfulDigits() {
        assertEquals("18.98", Numbers.significant(18.97750475407489, 4));
        assertEquals("631300", Numbers.significant(631317.3322878353, 4));
        assertEquals("6.313e6", Numbers.significant(6313173.322878353, 4));
        assertEquals("0.002565", Numbers.significant(0.002565007952874897, 4));
        assertEquals("1000", Numbers.significant(1000, 3));
        assertEquals(2, Numbers.decimals(new double[] {18.978, 23.773, 712.4}), "median 23.8: 4 significant digits");
        assertEquals(0, Numbers.decimals(new double[] {25268, 5281}));
        assertEquals(6, Numbers.decimals(new double[] {1e-8, 2e-8}), "capped at 6");
        assertEquals("4.2e7", Numbers.fixed(4.2e7, 2), "huge values in scientific notation");
        assertEquals("-0.0060", Numbers.fixed(-0.006, 4));
        assertEquals("NaN", Numbers.fixed(Double.NaN, 2));
    }

    @Test
    void unknownPartIsRejectedByType() {
        var e = assertThrows(IllegalArgumentException.class, () -> Html.page("r", List.of(42)));
        assertTrue(e.getMessage().contains("java.lang.Integer"), e.getMessage());
    }

    @Test
    void tableHtmlCutsRowsWithANote() {
        Table t = Table.create("t", IntColumn.create("i", 1, 2, 3), StringColumn.create("s", "a<b", "c", "d"));
        String h = Html.tableHtml(t, 2);
        assertTrue(h.contains("<td>a&lt;b</td>"));
        assertFalse(h.contains("<td>d</td>"));
        assertTrue(h.contains("1 of 3 rows not shown"));
        assertBalanced(h);
    }

    @Test
    void writeCreatesDirectories(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("results/index.html");
        Html.write(file, "r", report());
        String page = Files.readString(file);
        assertEquals(Html.page("r", report()).length(), page.length());
        assertTrue(Files.size(file) < PAGE_BOUND, Files.size(file) + " bytes");
    }

    /**
     * Renders the report in headless Chromium when there is one and checks that plotly.js drew every figure with
     * its title (the SVG a browser makes, not our script text). Skipped where Chromium is not installed.
     */
    @Test
    void chromiumDrawsEveryFigureWithItsTitle(@TempDir Path dir) throws Exception {
        String chromium = onPath("chromium", "chromium-browser", "google-chrome");
        Assumptions.assumeTrue(chromium != null,
                "no Chromium on PATH (chromium, chromium-browser or google-chrome): ./lowbit setup installs it from Debian's packages when run as root");
        Path file = dir.resolve("report.html");
        Html.write(file, "r", report());
        Process p = new ProcessBuilder(chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--user-data-dir=" + dir.resolve("profile"), "--virtual-time-budget=20000", "--dump-dom",
                file.toUri().toString())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String dom = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS));
        for (String t : TITLES) {
            assertTrue(dom.contains("class=\"gtitle\"") && dom.contains(">" + t + "</text>"), "no drawn title " + t);
        }
        assertEquals(5, count(dom, "class=\"plot-container plotly\""), "five drawn figures");
        assertTrue(dom.contains(">kurtosis</text>") || dom.contains(">module</text>"), "axis titles drawn");
    }

    static String onPath(String... names) {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            for (String n : names) {
                if (Files.isExecutable(Path.of(dir, n))) return Path.of(dir, n).toString();
            }
        }
        return null;
    }

    private static final Set<String> VOID = Set.of("meta", "br", "hr", "img", "input", "link");
    private static final Pattern TAG = Pattern.compile("<(/?)([a-zA-Z][a-zA-Z0-9]*)[^>]*?(/?)>");

    /** Every element closed in order; script bodies are skipped as a browser does, up to the first "</script". */
    public static void assertBalanced(String html) {
        Deque<String> open = new ArrayDeque<>();
        Matcher m = TAG.matcher(html);
        int pos = 0;
        while (m.find(pos)) {
            String name = m.group(2).toLowerCase();
            pos = m.end();
            if (m.group(1).isEmpty()) {
                if (VOID.contains(name) || !m.group(3).isEmpty()) continue;
                if (name.equals("script")) {
                    int end = html.indexOf("</script", pos);
                    assertTrue(end >= 0, "unclosed script at " + m.start());
                    String body = html.substring(pos, end);
                    assertFalse(body.contains("<script"), "script holds another script start at " + m.start());
                    pos = end;
                }
                open.push(name);
            } else {
                assertFalse(open.isEmpty(), "</" + name + "> closes nothing at " + m.start());
                assertEquals(open.pop(), name, "mismatched </" + name + "> at " + m.start());
            }
        }
        assertTrue(open.isEmpty(), "unclosed " + open);
    }
}
