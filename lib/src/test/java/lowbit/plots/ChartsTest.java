package lowbit.plots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.plotly.components.Figure;

class ChartsTest {

    /** One trace of a figure's generated JavaScript: its raw text and its data arrays as strings. */
    record Trace(String js) {
        List<String> array(String key) {
            Matcher m = Pattern.compile("(?m)^" + key + ": (\\[.*\\]),$").matcher(js);
            assertTrue(m.find(), () -> "no " + key + " array in trace:\n" + js);
            String body = m.group(1).trim();
            body = body.substring(1, body.length() - 1);
            List<String> out = new ArrayList<>();
            for (String s : body.split(",")) {
                String v = s.trim();
                if (v.isEmpty()) continue;
                if (v.startsWith("\"")) v = v.substring(1, v.length() - 1);
                out.add(v);
            }
            return out;
        }

        double[] numbers(String key) {
            return array(key).stream().mapToDouble(Double::parseDouble).toArray();
        }

        double[][] matrix(String key) {
            Matcher m = Pattern.compile("(?m)^" + key + ": \\[(.*)\\],$").matcher(js);
            assertTrue(m.find(), () -> "no " + key + " matrix in trace:\n" + js);
            return Arrays.stream(m.group(1).split("\\],?"))
                    .map(r -> r.replace("[", "").trim())
                    .filter(r -> !r.isEmpty())
                    .map(r -> Arrays.stream(r.split(",")).map(String::trim).filter(s -> !s.isEmpty())
                            .mapToDouble(Double::parseDouble).toArray())
                    .toArray(double[][]::new);
        }

        String field(String key) {
            Matcher m = Pattern.compile("(?m)^" + key + ": '([^']*)',$").matcher(js);
            return m.find() ? m.group(1) : null;
        }
    }

    static String js(Figure f) {
        return f.asJavascript("t");
    }

    static List<Trace> traces(Figure f) {
        String js = js(f);
        List<Trace> out = new ArrayList<>();
        String[] parts = js.split("var trace\\d+ =");
        // parts[0] is the layout, before the first trace.
        for (int i = 1; i < parts.length; i++) out.add(new Trace(parts[i].substring(0, parts[i].indexOf("};") + 2)));
        assertEquals(f.getTraces().length, out.size(), js);
        return out;
    }

    static Table stats() {
        // Rows deliberately out of layer order: the heatmap must sort them numerically.
        return Table.create("stats",
                IntColumn.create("layer", 1, 0, 1, 0, 2),
                StringColumn.create("module", "q_proj", "q_proj", "down_proj", "down_proj", "q_proj"),
                DoubleColumn.create("kurtosis", 3.5, 3.25, 40.0, 12.5, 7.75));
    }

    @Test
    void heatmapPlacesEachValueInItsCell() {
        Figure f = Charts.heatmap(stats(), "layer", "module", "kurtosis", "Weight kurtosis");
        List<Trace> t = traces(f);
        assertEquals(1, t.size());
        assertEquals("heatmap", t.get(0).field("type"));
        assertEquals(List.of("q_proj", "down_proj"), t.get(0).array("x"));
        assertEquals(List.of("0", "1", "2"), t.get(0).array("y"));
        double[][] z = t.get(0).matrix("z");
        assertEquals(3, z.length);
        assertTrue(Arrays.equals(new double[] {3.25, 12.5}, z[0]), Arrays.toString(z[0]));
        assertTrue(Arrays.equals(new double[] {3.5, 40.0}, z[1]), Arrays.toString(z[1]));
        assertEquals(7.75, z[2][0]);
        assertTrue(Double.isNaN(z[2][1]), "layer 2 has no down_proj: a gap");
        String js = js(f);
        assertTrue(js.contains("title: 'Weight kurtosis'"), js);
        assertTrue(js.contains("title: 'module'") && js.contains("title: 'layer'"), js);
        assertTrue(js.contains("autorange: 'reversed'"), "layer 0 on top: " + js);
    }

    @Test
    void heatmapRejectsTwoRowsInOneCell() {
        Table t = stats();
        t.append(stats().first(1));
        var e = assertThrows(IllegalArgumentException.class,
                () -> Charts.heatmap(t, "layer", "module", "kurtosis", "k"));
        assertTrue(e.getMessage().contains("layer=1") && e.getMessage().contains("module=q_proj"), e.getMessage());
    }

    @Test
    void barsAreSortedDescendingWithMissingLast() {
        Table t = Table.create("sens",
                StringColumn.create("linear", "a", "b", "c", "d"),
                DoubleColumn.create("dppl", new double[] {0.3, 4.2, Double.NaN, 1.7}));
        Figure f = Charts.bars(t, "linear", "dppl", "Sensitivity");
        Trace bar = traces(f).get(0);
        assertEquals("bar", bar.field("type"));
        assertEquals(List.of("b", "d", "a", "c"), bar.array("x"));
        double[] y = bar.numbers("y");
        assertEquals(4.2, y[0]);
        assertEquals(1.7, y[1]);
        assertEquals(0.3, y[2]);
        assertTrue(Double.isNaN(y[3]));
        assertTrue(js(f).contains("title: 'Sensitivity'"));
    }

    @Test
    void linesHaveOneSortedTracePerSeriesAndLogAxis() {
        Table t = Table.create("ppl",
                DoubleColumn.create("bits", 4, 2, 3, 2, 4),
                StringColumn.create("method", "RTN", "RTN", "RTN", "GPTQ", "GPTQ"),
                DoubleColumn.create("ppl", 25.0, 3000.0, 80.0, 400.0, 21.5));
        Figure f = Charts.lines(t, "bits", "ppl", "method", "PPL vs bits", true);
        List<Trace> tr = traces(f);
        assertEquals(2, tr.size());
        assertEquals("RTN", tr.get(0).field("name"));
        assertEquals("GPTQ", tr.get(1).field("name"));
        assertTrue(Arrays.equals(new double[] {2, 3, 4}, tr.get(0).numbers("x")));
        assertTrue(Arrays.equals(new double[] {3000, 80, 25}, tr.get(0).numbers("y")));
        assertTrue(Arrays.equals(new double[] {2, 4}, tr.get(1).numbers("x")));
        assertTrue(Arrays.equals(new double[] {400, 21.5}, tr.get(1).numbers("y")));
        assertEquals("lines+markers", tr.get(0).field("mode"));
        String js = js(f);
        assertTrue(js.contains("title: 'PPL vs bits'"), js);
        assertTrue(js.matches("(?s).*yaxis: \\{\\s*title: 'ppl',\\s*type: 'log'.*"), js);
        assertTrue(js.matches("(?s).*xaxis: \\{\\s*title: 'bits',\\s*type: 'linear'.*"), js);
    }

    @Test
    void bandFillsBetweenLowAndHighUnderTheMeanLine() {
        Table t = Table.create("cal",
                DoubleColumn.create("n", 32, 8, 8, 32),
                DoubleColumn.create("mean", 22.0, 25.0, 26.0, 23.0),
                DoubleColumn.create("lo", 21.5, 24.0, 25.0, 22.5),
                DoubleColumn.create("hi", 22.5, 26.0, 27.0, 23.5),
                StringColumn.create("method", "GPTQ", "GPTQ", "AWQ", "AWQ"));
        Figure f = Charts.band(t, "n", "mean", "lo", "hi", "method", "Calibration size", true);
        List<Trace> tr = traces(f);
        assertEquals(6, tr.size(), "low edge, high edge, mean per series");
        Trace low = tr.get(0), high = tr.get(1), mean = tr.get(2);
        assertTrue(Arrays.equals(new double[] {8, 32}, low.numbers("x")));
        assertTrue(Arrays.equals(new double[] {24.0, 21.5}, low.numbers("y")));
        assertTrue(Arrays.equals(new double[] {26.0, 22.5}, high.numbers("y")));
        assertTrue(Arrays.equals(new double[] {25.0, 22.0}, mean.numbers("y")));
        assertEquals(null, low.field("fill"));
        assertEquals("tonexty", high.field("fill"));
        assertEquals("rgba(31,119,180,0.2)", high.field("fillcolor"));
        assertTrue(low.js().contains("showlegend: false") && high.js().contains("showlegend: false"));
        assertEquals("GPTQ", mean.field("name"));
        assertEquals("AWQ", tr.get(5).field("name"));
        assertEquals("rgba(255,127,14,0.2)", tr.get(4).field("fillcolor"), "second series, second colour");
        assertTrue(Arrays.equals(new double[] {26.0, 23.0}, tr.get(5).numbers("y")));
        String js = js(f);
        assertTrue(js.contains("title: 'Calibration size'"), js);
        assertTrue(js.matches("(?s).*xaxis: \\{\\s*title: 'n',\\s*type: 'log'.*"), js);
    }

    @Test
    void groupedBarsAlignSeriesOnSharedCategories() {
        Table t = Table.create("mix",
                DoubleColumn.create("avg_bits", 4, 3.5, 3.5, 3),
                StringColumn.create("allocation", "uniform", "uniform", "mixed", "mixed"),
                DoubleColumn.create("ppl", 25.0, 40.0, 28.0, 45.0));
        Figure f = Charts.groupedBars(t, "avg_bits", "ppl", "allocation", "Mixed vs uniform");
        List<Trace> tr = traces(f);
        assertEquals(2, tr.size());
        assertEquals(List.of("3", "3.5", "4"), tr.get(0).array("x"));
        double[] uniform = tr.get(0).numbers("y");
        assertTrue(Double.isNaN(uniform[0]));
        assertEquals(40.0, uniform[1]);
        assertEquals(25.0, uniform[2]);
        double[] mixed = tr.get(1).numbers("y");
        assertEquals(45.0, mixed[0]);
        assertEquals(28.0, mixed[1]);
        assertTrue(Double.isNaN(mixed[2]));
        assertEquals("mixed", tr.get(1).field("name"));
        String js = js(f);
        assertTrue(!js.contains("barmode"), "plotly.js's default barmode, group, must not be overridden: " + js);
        assertTrue(js.contains("title: 'Mixed vs uniform'"), js);
    }

    @Test
    void missingColumnNamesItAndTheAvailableOnes() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Charts.heatmap(stats(), "layer", "modul", "kurtosis", "k"));
        assertTrue(e.getMessage().contains("'modul'"), e.getMessage());
        assertTrue(e.getMessage().contains("[layer, module, kurtosis]"), e.getMessage());
        var e2 = assertThrows(IllegalArgumentException.class,
                () -> Charts.band(stats(), "layer", "kurtosis", "lo", "hi", "module", "b", false));
        assertTrue(e2.getMessage().contains("'lo'") && e2.getMessage().contains("stats"), e2.getMessage());
    }

    @Test
    void textColumnWhereNumbersAreNeededIsRejected() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Charts.bars(stats(), "layer", "module", "b"));
        assertTrue(e.getMessage().contains("'module'") && e.getMessage().contains("numeric"), e.getMessage());
        assertTrue(e.getMessage().contains("[layer, kurtosis]"), e.getMessage());
    }

    @Test
    void labelsWithBackslashesOrLineBreaksCannotBreakTheScript() {
        Table t = Table.create("s", StringColumn.create("l", "a"), DoubleColumn.create("v", 1.0));
        String js = js(Charts.bars(t, "l", "v", "C:\\path\nnext 'quoted'"));
        assertTrue(js.contains("title: 'C:\u29F5path next &#39;quoted&#39;'"), js);
    }
}
