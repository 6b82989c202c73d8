package lowbit.notebook;

import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.plots.Figure;
import lowbit.plots.Html;
import tech.tablesaw.api.Table;

/**
 * What a notebook shows for lowbit's objects, as Jupyter MIME bundles (MIME type to content), so the library
 * needs no kernel on its classpath: the kernel's startup script (environment/notebook-startup.jshell) hands
 * these {@link Bundle}s to JJava's renderer. A Tablesaw {@link Table} becomes an HTML table; a {@link Figure} an
 * interactive chart drawn by JupyterLab's Plotly extension.
 */
public final class Display {
    private Display() {}

    /** Rows an HTML table shows before it says how many were left out; a full table is one {@link #table(Table, int)} away. */
    public static final int DEFAULT_MAX_ROWS = 60;

    /** The bundle for a table: HTML (at most {@link #DEFAULT_MAX_ROWS} rows) and Tablesaw's plain-text print. */
    public static Bundle table(Table t) {
        return table(t, DEFAULT_MAX_ROWS);
    }

    public static Bundle table(Table t, int maxRows) {
        return bundle(Html.tableHtml(t, maxRows), t.printAll().lines().limit(maxRows + 3L).reduce((a, b) -> a + "\n" + b).orElse(""));
    }

    /** Plotly's MIME type: JupyterLab's Plotly extension (the {@code plotly} package in .venv) draws it. */
    public static final String PLOTLY_MIME = "application/vnd.plotly.v1+json";

    /**
     * The bundle for a figure: its plotly.js JSON under {@link #PLOTLY_MIME}, and its title as plain text for
     * front ends without the extension. A MIME renderer, unlike a script in HTML, draws in an untrusted notebook,
     * and the notebook holds a few kilobytes of data per chart instead of a copy of plotly.js.
     */
    public static Bundle figure(Figure f) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put(PLOTLY_MIME, f.json());
        m.put("text/plain", f.toString());
        return new Bundle(m);
    }

    /** A bundle of HTML with its plain-text fallback. */
    public static Bundle bundle(String html, String text) {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("text/html", html);
        m.put("text/plain", text);
        return new Bundle(m);
    }

    /**
     * Jupyter display data: MIME type to content, in the order a front end should prefer them. The kernel's
     * startup script registers a renderer that copies it into the kernel's output, JSON types ({@code ...json})
     * parsed into JSON objects as Jupyter requires.
     */
    public record Bundle(Map<String, String> data) {
        public Bundle {
            if (data == null || data.isEmpty()) throw new IllegalArgumentException("a display bundle needs at least one MIME type");
            data = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(data));
        }

        public String html() {
            return data.get("text/html");
        }

        public String text() {
            return data.get("text/plain");
        }
    }
}
