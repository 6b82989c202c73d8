package lowbit.studies;

import static org.junit.jupiter.api.Assertions.*;

import java.util.ArrayList;
import java.util.List;
import lowbit.plots.Figure;
import lowbit.quant.QuantSpec;
import lowbit.results.Row;
import org.junit.jupiter.api.Test;
import tech.tablesaw.api.Table;

class RotationReportTest {
    /** A methods table as the study builds it, from hand-made rows. */
    private static Table methods(String... specAndPpl) {
        List<QuantSpec> specs = new ArrayList<>();
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < specAndPpl.length; i += 2) {
            specs.add(QuantSpec.parse(specAndPpl[i]));
            rows.add(Row.of("r" + i).with("ppl", Double.parseDouble(specAndPpl[i + 1])).with("bits_per_weight", 4.0).with("seconds", 1.0));
        }
        return Study.perplexityTable(specs, rows);
    }

    @Test
    void rotationBarsPairEachActivationWidthWithAndWithoutQuaRot() {
        Table m = methods("fp", "19.0", "rtn:w4", "25.0", "rtn:w4a8", "27.0", "quarot+rtn:w4a8", "24.0", "rtn:w4a4", "900.0",
                "quarot+rtn:w4a4", "40.0", "quarot+rtn:w4a4+kv4", "45.0", "gptq:w4g128", "22.0", "rtn:w3g128", "60.0");
        assertEquals(List.of("none", "none", "none", "quarot", "none", "quarot", "quarot", "none", "none"), m.stringColumn("rotation").asList());
        Table t = StudyReport.rotationTable(m);
        // gptq g128 and the 3-bit row have no quantized-activation counterpart: not in QuaRot's comparison
        assertEquals(List.of("rtn:w4", "rtn:w4a8", "quarot+rtn:w4a8", "rtn:w4a4", "quarot+rtn:w4a4", "quarot+rtn:w4a4+kv4"), t.stringColumn("spec").asList());
        assertEquals(List.of("W4A16", "W4A8", "W4A8", "W4A4", "W4A4", "W4A4 KV4"), t.stringColumn("precision").asList());
        assertEquals("rtn per-channel + QuaRot", t.stringColumn("series").get(2));
        Figure f = StudyReport.rotationChart(m, "wikitext2");
        assertEquals(2, f.data().size(), "one bar series with and one without rotation");
        assertEquals("log", ((java.util.Map<?, ?>) f.layout().get("yaxis")).get("type"), "the collapsed W4A4 bar would flatten the rest");
        assertTrue(f.title().contains("19.00"));
        List<String> findings = StudyReport.rotationFindings(m);
        assertEquals("quarot+rtn:w4a8: perplexity 24.000, 27.000 without rotation, 25.000 with float activations and cache (rtn:w4).", findings.get(0));
        assertEquals(3, findings.size());
        assertTrue(findings.get(2).startsWith("quarot+rtn:w4a4+kv4: perplexity 45.000, 25.000 with float"), findings.get(2));
    }

    @Test
    void noRotatedRowNoChart() {
        assertEquals(0, StudyReport.rotationTable(methods("fp", "19.0", "rtn:w4", "25.0", "rtn:w4a4", "900.0")).rowCount());
        assertTrue(StudyReport.rotationFindings(methods("fp", "19.0", "rtn:w4a4", "900.0")).isEmpty());
    }
}
