package lowbit.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The notebooks as committed: small (figures are Plotly MIME data, not a copy of plotly.js each), free of the
 * paths of the machine that ran them, and every figure in the MIME type JupyterLab draws without trusting the
 * notebook.
 */
class CommittedNotebooksTest {
    /**
     * The largest notebook may be: today's are 8-180 kB (02's two 60-row statistics tables, HTML and text, are most
     * of its size); one copy of plotly.js would be 3.2 MB.
     */
    static final long MAX_BYTES = 250_000;

    static final Pattern MACHINE_PATH = Pattern.compile("(?<![\\w.])/(tmp|work|home|root)/[^\\s\"'\\\\]*");

    static Path notebooksDir() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("notebooks");
            if (Files.isDirectory(candidate) && Files.isRegularFile(dir.resolve("lowbit"))) return candidate;
        }
        throw new IllegalStateException("no notebooks/ beside a lowbit launcher above " + Path.of("").toAbsolutePath());
    }

    static List<Path> notebooks() throws IOException {
        try (Stream<Path> s = Files.list(notebooksDir())) {
            return s.filter(p -> p.getFileName().toString().endsWith(".ipynb")).sorted().toList();
        }
    }

    @Test
    void everyNotebookIsSmallAndNamesNoMachinePath() throws IOException {
        List<Path> all = notebooks();
        assertTrue(all.size() >= 6, "the six notebooks, found " + all);
        List<String> problems = new ArrayList<>();
        for (Path p : all) {
            long size = Files.size(p);
            if (size > MAX_BYTES) problems.add(p.getFileName() + ": " + size + " bytes > " + MAX_BYTES);
            String text = Files.readString(p);
            Matcher m = MACHINE_PATH.matcher(text);
            while (m.find()) problems.add(p.getFileName() + ": machine path " + m.group());
            if (text.contains("lowbit-plotly-js") || text.contains("plotly.js v"))
                problems.add(p.getFileName() + ": carries plotly.js");
        }
        assertEquals(List.of(), problems);
    }

    @Test
    void figuresArePlotlyMimeDataThatNeedsNoTrust() throws IOException {
        ObjectMapper json = new ObjectMapper();
        int figures = 0;
        for (Path p : notebooks()) {
            JsonNode nb = json.readTree(p.toFile());
            for (JsonNode cell : nb.path("cells"))
                for (JsonNode out : cell.path("outputs")) {
                    JsonNode data = out.path("data");
                    if (data.has("text/plain") && data.path("text/plain").toString().contains("<plotly figure")) {
                        JsonNode fig = data.path(Display.PLOTLY_MIME);
                        assertTrue(fig.isObject(), p.getFileName() + ": a figure output without " + Display.PLOTLY_MIME + " data");
                        assertTrue(fig.path("data").isArray() && fig.path("layout").isObject(), p.getFileName() + ": " + fig);
                        assertFalse(data.has("text/html"), p.getFileName() + ": a figure with HTML (a script needs a trusted notebook)");
                        figures++;
                    }
                }
        }
        assertTrue(figures >= 10, "the committed outputs hold the notebooks' charts, found " + figures);
    }

    @Test
    void machinePathPatternFindsAbsolutePathsOnly() {
        assertTrue(MACHINE_PATH.matcher("store /tmp/nbrun/results/x.jsonl").find());
        assertTrue(MACHINE_PATH.matcher("\"/work/wt/report/data\"").find());
        assertTrue(MACHINE_PATH.matcher("under /home/u/models").find());
        assertFalse(MACHINE_PATH.matcher("../results/notebooks/04-bits-map.json").find());
        assertFalse(MACHINE_PATH.matcher("data/models/opt-125m/ and results/work/x").find());
    }
}
