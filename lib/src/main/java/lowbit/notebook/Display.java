package lowbit.notebook;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import lowbit.plots.Html;
import tech.tablesaw.api.Table;
import tech.tablesaw.plotly.components.Figure;

/**
 * What a notebook shows for lowbit's objects, as Jupyter MIME bundles (MIME type to content), so the library
 * needs no kernel on its classpath: the kernel's startup script (environment/notebook-startup.jshell) hands
 * these {@link Bundle}s to JJava's renderer. A Tablesaw {@link Table} becomes an HTML table; a Plotly {@link Figure}
 * an interactive chart, with plotly.js inlined only in the first figure's output, so a notebook carries the
 * 3 MB library once however many charts it has.
 */
public final class Display {
    private Display() {}

    /** Rows an HTML table shows before it says how many were left out; a full table is one {@link #table(Table, int)} away. */
    public static final int DEFAULT_MAX_ROWS = 60;

    // One kernel runs one notebook: once the library block has been emitted, every later figure finds it.
    private static final AtomicBoolean PLOTLY_EMITTED = new AtomicBoolean();

    /** The bundle for a table: HTML (at most {@link #DEFAULT_MAX_ROWS} rows) and Tablesaw's plain-text print. */
    public static Bundle table(Table t) {
        return table(t, DEFAULT_MAX_ROWS);
    }

    public static Bundle table(Table t, int maxRows) {
        return bundle(Html.tableHtml(t, maxRows), t.printAll().lines().limit(maxRows + 3L).reduce((a, b) -> a + "\n" + b).orElse(""));
    }

    /** The bundle for a figure; the first one of the session also carries plotly.js. */
    public static Bundle figure(Figure f) {
        return bundle(figureHtml(f), "<plotly figure>");
    }

    /** The figure's div and drawing script, preceded by the plotly.js block when no earlier output had it. */
    public static String figureHtml(Figure f) {
        String div = Html.figureDiv(f);
        return PLOTLY_EMITTED.compareAndSet(false, true) ? Html.plotlyScriptTag() + "\n" + div : div;
    }

    /**
     * Makes the next figure carry plotly.js again: for a front end that lost it (the page was reloaded and the
     * cell holding the library was cleared), or a new notebook on the same kernel.
     */
    public static void resetPlotly() {
        PLOTLY_EMITTED.set(false);
    }

    /** Whether plotly.js has been emitted in this session. */
    public static boolean plotlyEmitted() {
        return PLOTLY_EMITTED.get();
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
     * startup script registers a renderer that copies it into the kernel's output as it is.
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
