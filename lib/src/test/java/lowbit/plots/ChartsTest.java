package lowbit.plots;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class ChartsTest {

    /** The figure as plotly.js receives it: parsed back from {@link Figure#json()}, so what is tested is what is sent. */
    static JsonNode json(Figure f) {
        try {
            return new ObjectMapper().readTree(f.json());
        } catch (Exception e) {
            throw new AssertionError("figure JSON does not parse: " + f.json(), e);
        }
    }

    static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }

    /** Numbers of a JSON array, null (a gap) as NaN. */
    static double[] numbers(JsonNode array) {
        double[] out = new double[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).isNull() ? Double.NaN : array.get(i).asDouble();
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
        JsonNode f = json(Charts.heatmap(stats(), "layer", "module", "kurtosis", "Weight kurtosis"));
        assertEquals(1, f.get("data").size());
        JsonNode t = f.get("data").get(0);
        assertEquals("heatmap", t.get("type").asText());
        assertEquals(List.of("q_proj", "down_proj"), strings(t.get("x")));
        assertEquals(List.of("0", "1", "2"), strings(t.get("y")));
        JsonNode z = t.get("z");
        assertEquals(3, z.size());
        assertTrue(Arrays.equals(new double[] {3.25, 12.5}, numbers(z.get(0))));
        assertTrue(Arrays.equals(new double[] {3.5, 40.0}, numbers(z.get(1))));
        assertEquals(7.75, z.get(2).get(0).asDouble());
        assertTrue(z.get(2).get(1).isNull(), "layer 2 has no down_proj: a gap (null, not NaN, which JSON lacks)");
        JsonNode layout = f.get("layout");
        assertEquals("Weight kurtosis", layout.at("/title/text").asText(), "titles are objects: plotly.js 3 ignores plain strings");
        assertEquals("module", layout.at("/xaxis/title/text").asText());
        assertEquals("layer", layout.at("/yaxis/title/text").asText());
        assertEquals("reversed", layout.at("/yaxis/autorange").asText(), "layer 0 on top");
    }

    @Test
    void logHeatmapColoursByLog10AndLabelsTheBarInValues() {
        Table t = Table.create("k", IntColumn.create("layer", 0, 0, 1, 1),
                StringColumn.create("module", "a", "b", "a", "b"), DoubleColumn.create("kurtosis", 3, 30, 300, 3000));
        JsonNode trace = json(Charts.logHeatmap(t, "layer", "module", "kurtosis", "K")).get("data").get(0);
        assertTrue(Arrays.equals(new double[] {Math.log10(3), Math.log10(30)}, numbers(trace.get("z").get(0))));
        assertEquals(List.of("3", "30"), strings(trace.get("text").get(0)), "hover shows the value itself");
        // 3..3000 spans three decades: ticks at each decade inside the range, labelled in values.
        assertTrue(Arrays.equals(new double[] {1, 2, 3}, numbers(trace.at("/colorbar/tickvals"))));
        assertEquals(List.of("10", "100", "1000"), strings(trace.at("/colorbar/ticktext")));
        assertEquals("kurtosis (log scale)", trace.at("/colorbar/title/text").asText());

        Table narrow = Table.create("n", IntColumn.create("layer", 0, 1), StringColumn.create("module", "a", "a"),
                DoubleColumn.create("v", 2.5, 7.5));
        JsonNode bar = json(Charts.logHeatmap(narrow, "layer", "module", "v", "N")).at("/data/0/colorbar");
        assertEquals(List.of("3", "4", "5", "6", "7"), strings(bar.get("ticktext")), "less than a decade: a tick per unit step");

        Table zero = Table.create("z", IntColumn.create("layer", new int[] {0}), StringColumn.create("module", "a"), DoubleColumn.create("v", 0.0));
        var e = assertThrows(IllegalArgumentException.class, () -> Charts.logHeatmap(zero, "layer", "module", "v", "Z"));
        assertTrue(e.getMessage().contains("v = 0.0") && e.getMessage().contains("positive"), e.getMessage());
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
    void barsAreSortedDescendingWithMissingLastAndHoverNames() {
        Table t = Table.create("sens",
                StringColumn.create("linear", "a", "b", "c", "d"),
                StringColumn.create("name", "model.a", "model.b", "model.c", "model.d"),
                DoubleColumn.create("dppl", new double[] {0.3, 4.2, Double.NaN, 1.7}));
        JsonNode f = json(Charts.bars(t, "linear", "dppl", "name", "Sensitivity"));
        JsonNode bar = f.get("data").get(0);
        assertEquals("bar", bar.get("type").asText());
        assertEquals(List.of("b", "d", "a", "c"), strings(bar.get("x")));
        double[] y = numbers(bar.get("y"));
        assertEquals(4.2, y[0]);
        assertEquals(1.7, y[1]);
        assertEquals(0.3, y[2]);
        assertTrue(Double.isNaN(y[3]));
        assertEquals("model.b: 4.2", bar.get("hovertext").get(0).asText(), "the full name behind the short label");
        assertEquals("Sensitivity", f.at("/layout/title/text").asText());
        assertEquals("linear", f.at("/layout/yaxis/type").asText(), "4.2 against a median of 1.7: no bar flattens the rest");
    }

    @Test
    void barsTurnLogWhenOneBarWouldFlattenTheRest() {
        Table t = Table.create("ppl", StringColumn.create("spec", "fp", "kv4", "kv2"), DoubleColumn.create("ppl", 19.0, 31.5, 712.0));
        assertEquals("log", json(Charts.bars(t, "spec", "ppl", "P")).at("/layout/yaxis/type").asText(), "712 >= 20 x the median 31.5");
        Table negative = Table.create("d", StringColumn.create("l", "a", "b", "c"), DoubleColumn.create("v", -0.1, 0.2, 100.0));
        assertEquals("linear", json(Charts.bars(negative, "l", "v", "D")).at("/layout/yaxis/type").asText(), "a log axis cannot show -0.1");
        assertFalse(Charts.flattens(new double[] {1, 2, 39.9}), "39.9 < 20 x 2");
        assertTrue(Charts.flattens(new double[] {1, 2, 40}));
    }

    @Test
    void linesHaveOneSortedTracePerSeriesAndLogAxis() {
        Table t = Table.create("ppl",
                DoubleColumn.create("bits", 4, 2, 3, 2, 4),
                StringColumn.create("method", "RTN", "RTN", "RTN", "GPTQ", "GPTQ"),
                DoubleColumn.create("ppl", 25.0, 3000.0, 80.0, 400.0, 21.5));
        JsonNode f = json(Charts.lines(t, "bits", "ppl", "method", "PPL vs bits", true).withAxisTitles("Bits per weight", "Perplexity"));
        JsonNode tr = f.get("data");
        assertEquals(2, tr.size());
        assertEquals("RTN", tr.get(0).get("name").asText());
        assertEquals("GPTQ", tr.get(1).get("name").asText());
        assertTrue(Arrays.equals(new double[] {2, 3, 4}, numbers(tr.get(0).get("x"))));
        assertTrue(Arrays.equals(new double[] {3000, 80, 25}, numbers(tr.get(0).get("y"))));
        assertTrue(Arrays.equals(new double[] {2, 4}, numbers(tr.get(1).get("x"))));
        assertTrue(Arrays.equals(new double[] {400, 21.5}, numbers(tr.get(1).get("y"))));
        assertEquals("lines+markers", tr.get(0).get("mode").asText());
        assertEquals("log", f.at("/layout/yaxis/type").asText());
        assertEquals("linear", f.at("/layout/xaxis/type").asText());
        assertEquals("Bits per weight", f.at("/layout/xaxis/title/text").asText());
        assertEquals("Perplexity", f.at("/layout/yaxis/title/text").asText());
    }

    @Test
    void referenceLineSpansTheDataAndPointsOnlyDropTheLine() {
        Table t = Table.create("m", DoubleColumn.create("bpw", 3.16, 4.17, 3.5, 3.16, 4.17),
                StringColumn.create("series", "uniform", "uniform", "mixed", "mixed", "mixed"),
                DoubleColumn.create("ppl", 113.0, 26.0, 60.0, 113.0, 29.0));
        Figure lines = Charts.lines(t, "bpw", "ppl", "series", "Mixed", true);
        Figure f = Charts.withPointsOnly(Charts.withReferenceLine(lines, 18.98, "float"), "uniform");
        JsonNode data = json(f).get("data");
        assertEquals(3, data.size());
        assertEquals("markers", data.get(0).get("mode").asText(), "no uniform line through 3.5, where no uniform model exists");
        assertEquals("lines+markers", data.get(1).get("mode").asText());
        JsonNode ref = data.get(2);
        assertTrue(Arrays.equals(new double[] {3.16, 4.17}, numbers(ref.get("x"))), "from the smallest to the largest x");
        assertTrue(Arrays.equals(new double[] {18.98, 18.98}, numbers(ref.get("y"))));
        assertEquals("dash", ref.at("/line/dash").asText());
        assertEquals("lines+markers", json(lines).get("data").get(0).get("mode").asText(), "figures are immutable");
        assertThrows(IllegalArgumentException.class, () -> Charts.withPointsOnly(lines, "none"));
    }

    @Test
    void bandFillsBetweenLowAndHighUnderTheMeanLine() {
        Table t = Table.create("cal",
                DoubleColumn.create("n", 32, 8, 8, 32),
                DoubleColumn.create("mean", 22.0, 25.0, 26.0, 23.0),
                DoubleColumn.create("lo", 21.5, 24.0, 25.0, 22.5),
                DoubleColumn.create("hi", 22.5, 26.0, 27.0, 23.5),
                StringColumn.create("method", "GPTQ", "GPTQ", "AWQ", "AWQ"));
        JsonNode f = json(Charts.band(t, "n", "mean", "lo", "hi", "method", "Calibration size", true, true));
        JsonNode tr = f.get("data");
        assertEquals(6, tr.size(), "low edge, high edge, mean per series");
        JsonNode low = tr.get(0), high = tr.get(1), mean = tr.get(2);
        assertTrue(Arrays.equals(new double[] {8, 32}, numbers(low.get("x"))));
        assertTrue(Arrays.equals(new double[] {24.0, 21.5}, numbers(low.get("y"))));
        assertTrue(Arrays.equals(new double[] {26.0, 22.5}, numbers(high.get("y"))));
        assertTrue(Arrays.equals(new double[] {25.0, 22.0}, numbers(mean.get("y"))));
        assertNull(low.get("fill"));
        assertEquals("tonexty", high.get("fill").asText());
        assertEquals("rgba(31,119,180,0.2)", high.get("fillcolor").asText());
        assertFalse(low.get("showlegend").asBoolean() || high.get("showlegend").asBoolean());
        assertEquals("GPTQ", mean.get("name").asText());
        assertEquals("AWQ", tr.get(5).get("name").asText());
        assertEquals("rgba(255,127,14,0.2)", tr.get(4).get("fillcolor").asText(), "second series, second colour");
        assertEquals("log", f.at("/layout/xaxis/type").asText());
        assertEquals("log", f.at("/layout/yaxis/type").asText());
    }

    @Test
    void groupedBarsAlignSeriesOnSharedCategoriesWithAsymmetricErrorBars() {
        Table t = Table.create("mix",
                DoubleColumn.create("avg_bits", 4, 3.5, 3.5, 3),
                StringColumn.create("allocation", "uniform", "uniform", "mixed", "mixed"),
                DoubleColumn.create("ppl", 25.0, 40.0, 28.0, 45.0),
                DoubleColumn.create("lo", 24.0, 30.0, 27.0, 44.0),
                DoubleColumn.create("hi", 27.0, 41.0, 30.0, 50.0));
        JsonNode f = json(Charts.groupedBars(t, "avg_bits", "ppl", "lo", "hi", "allocation", "Mixed vs uniform"));
        JsonNode tr = f.get("data");
        assertEquals(2, tr.size());
        assertEquals(List.of("3", "3.5", "4"), strings(tr.get(0).get("x")));
        double[] uniform = numbers(tr.get(0).get("y"));
        assertTrue(Double.isNaN(uniform[0]));
        assertEquals(40.0, uniform[1]);
        assertEquals(25.0, uniform[2]);
        assertTrue(Arrays.equals(new double[] {Double.NaN, 1.0, 2.0}, numbers(tr.get(0).at("/error_y/array"))));
        assertTrue(Arrays.equals(new double[] {Double.NaN, 10.0, 1.0}, numbers(tr.get(0).at("/error_y/arrayminus"))));
        assertFalse(tr.get(0).at("/error_y/symmetric").asBoolean());
        double[] mixed = numbers(tr.get(1).get("y"));
        assertEquals(45.0, mixed[0]);
        assertEquals(28.0, mixed[1]);
        assertTrue(Double.isNaN(mixed[2]));
        assertEquals("mixed", tr.get(1).get("name").asText());
        assertNull(f.get("layout").get("barmode"), "plotly.js's default barmode, group, must not be overridden");
        assertNull(json(Charts.groupedBars(t, "avg_bits", "ppl", "allocation", "M")).at("/data/0").get("error_y"));
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
    void figureDataIsReadOnlyAndTitlesAreReported() {
        Figure f = Charts.bars(stats(), "module", "kurtosis", "K").withAxisTitles("Module", "Kurtosis");
        assertEquals("K", f.title());
        assertEquals(List.of("Module", "Kurtosis"), f.axisTitles());
        assertThrows(UnsupportedOperationException.class, () -> f.layout().put("title", Map.of()));
        assertEquals("<plotly figure: K>", f.toString());
    }
}
