package lowbit.plots;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import tech.tablesaw.api.NumericColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.plotly.components.Figure;

/**
 * Standalone, offline HTML for figures and tables: plotly.js 2.x is inlined once per page (or once per notebook,
 * via {@link #plotlyScriptTag()}), and each figure is a div plus a script that draws it once plotly.js is there.
 *
 * <p>plotly.js 2.35.3 (from the webjar; no minified build is published as a jar) is 10.8 MB, more than a
 * 5 MB notebook can hold. It is inlined gzip-compressed as base64 (about 3.2 MB) and inflated in the browser
 * with the standard {@code DecompressionStream('gzip')} (Chromium 80+, Firefox 113+, Safari 16.4+), which is
 * asynchronous: so figure scripts queue on a promise ({@code window.lowbitPlotly}) rather than calling
 * {@code Plotly.newPlot} straight away, and they may even run before the library block.
 */
public final class Html {
    private Html() {}

    /** A section heading in a {@link #page}. */
    public record Heading(String text) {}

    /** Markup inserted into a {@link #page} as it is, not escaped. */
    public record Raw(String html) {}

    static final String PLOTLY_VERSION = "2.35.3";
    static final String PLOTLY_RESOURCE = "META-INF/resources/webjars/plotly.js-dist/" + PLOTLY_VERSION + "/plotly.js";

    /** Marks the one library block, so tests and tools can count it. */
    static final String PLOTLY_MARKER = "lowbit-plotly-js";

    private static final Pattern DIV_ID = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");
    private static final AtomicLong FIGURES = new AtomicLong();
    // Distinguishes divs of different kernel sessions in one notebook, whose counters both start at zero.
    private static final String SESSION = Long.toString(System.nanoTime() & 0xffffffL, 36);

    private static final String STYLE = """
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
                   padding: 0 1em; color: #222; }
            table.lowbit-table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
            table.lowbit-table caption { text-align: left; font-weight: 600; padding: 4px 0; }
            table.lowbit-table th, table.lowbit-table td { border: 1px solid #ccc; padding: 3px 8px; }
            table.lowbit-table th { background: #f2f2f2; }
            table.lowbit-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
            div.lowbit-figure { margin: 1em 0; }
            """;

    /** A whole HTML document: the title as heading, then each part in order, plotly.js once if any part is a figure. */
    public static String page(String title, List<?> parts) {
        StringBuilder body = new StringBuilder();
        boolean figures = false;
        int n = 0;
        for (Object part : parts) {
            switch (part) {
                case Figure f -> {
                    figures = true;
                    body.append(figureDiv(f, "fig_" + n++)).append('\n');
                }
                case Table t -> body.append(tableHtml(t)).append('\n');
                case Heading h -> body.append("<h2>").append(escape(h.text())).append("</h2>\n");
                case Raw r -> body.append(r.html()).append('\n');
                case String s -> body.append("<p>").append(escape(s)).append("</p>\n");
                case null -> throw new IllegalArgumentException("page '" + title + "': part is null");
                default -> throw new IllegalArgumentException("page '" + title + "': cannot render a "
                        + part.getClass().getName() + "; parts are Figure, Table, String, Html.Heading or Html.Raw");
            }
        }
        return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + escape(title)
                + "</title>\n<style>\n" + STYLE + "</style>\n"
                + (figures ? plotlyScriptTag() + "\n" : "")
                + "</head>\n<body>\n<h1>" + escape(title) + "</h1>\n" + body + "</body>\n</html>\n";
    }

    /** Writes {@link #page} as UTF-8, creating the parent directories. */
    public static void write(Path file, String title, List<?> parts) {
        try {
            Path parent = file.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            Files.writeString(file, page(title, parts), StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write report " + file, e);
        }
    }

    /** {@link #figureDiv(Figure, String)} with an id unique in this JVM and very likely across kernel sessions. */
    public static String figureDiv(Figure f) {
        return figureDiv(f, "lowbit_fig_" + SESSION + "_" + FIGURES.incrementAndGet());
    }

    /**
     * The figure's div and the script that draws it once plotly.js has loaded ({@link #plotlyScriptTag} must be
     * somewhere on the page, before or after). {@code divId} must be a JavaScript identifier (Tablesaw names a
     * variable after it) and unique on the page.
     */
    public static String figureDiv(Figure f, String divId) {
        if (f == null) throw new IllegalArgumentException("no figure given (null) for div '" + divId + "'");
        if (divId == null || !DIV_ID.matcher(divId).matches()) {
            throw new IllegalArgumentException("div id '" + divId + "' must be letters, digits and '_', not starting "
                    + "with a digit (Tablesaw uses it in a JavaScript variable name)");
        }
        String js = f.asJavascript(divId);
        int open = js.indexOf("<script>");
        int close = js.lastIndexOf("</script>");
        if (open < 0 || close < open) throw new IllegalStateException("unexpected Tablesaw figure script: " + js);
        // Data strings are JSON-quoted but not HTML-safe: "</" inside one would end the script element early.
        String draw = js.substring(open + "<script>".length(), close).strip()
                .replace("</", "<\\/").replace("<!--", "<\\!--");
        return "<div class=\"lowbit-figure\" id=\"" + divId + "\"></div>\n<script>\n(function () {\n"
                + "  function draw() {\n" + draw + "\n  }\n"
                + "  var tries = 0;\n"
                // A notebook front end may run the script before it attaches the output to the document.
                + "  function go() {\n"
                + "    if (document.getElementById('" + divId + "')) return draw();\n"
                + "    if (tries++ < 200) setTimeout(go, 50);\n"
                + "  }\n"
                + "  if (window.lowbitPlotly) window.lowbitPlotly.then(go);\n"
                + "  else (window.lowbitPlotlyPending = window.lowbitPlotlyPending || []).push(go);\n"
                + "})();\n</script>";
    }

    /**
     * The {@code <script>} block with plotly.js gzip-compressed and base64-encoded, which inflates and evaluates
     * it once per window (a second copy does nothing) and then draws the queued figures.
     */
    public static String plotlyScriptTag() {
        return "<script id=\"" + PLOTLY_MARKER + "\" data-plotly-version=\"" + PLOTLY_VERSION + "\">\n"
                + "(function () {\n"
                + "  if (window.lowbitPlotly) return;\n"
                + "  var pending = window.lowbitPlotlyPending = window.lowbitPlotlyPending || [];\n"
                + "  function load() {\n"
                + "    if (window.Plotly && window.Plotly.newPlot) return Promise.resolve(window.Plotly);\n"
                + "    var b = atob('" + Library.BASE64 + "');\n"
                + "    var bytes = new Uint8Array(b.length);\n"
                + "    for (var i = 0; i < b.length; i++) bytes[i] = b.charCodeAt(i);\n"
                + "    var text = new Response(new Blob([bytes]).stream()"
                + ".pipeThrough(new DecompressionStream('gzip'))).text();\n"
                + "    return text.then(function (src) {\n"
                // plotly.js is a UMD bundle: hand it a CommonJS module so that an AMD loader on the page
                // (classic Jupyter's RequireJS) does not capture it instead of window.Plotly.
                + "      var m = { exports: {} };\n"
                + "      new Function('module', 'exports', 'define', src)(m, m.exports, undefined);\n"
                + "      window.Plotly = m.exports;\n"
                + "      return m.exports;\n"
                + "    });\n"
                + "  }\n"
                + "  window.lowbitPlotly = load();\n"
                + "  window.lowbitPlotly.then(function () { pending.splice(0).forEach(function (f) { f(); }); },\n"
                + "    function (e) { console.error('lowbit: plotly.js failed to load', e); });\n"
                + "})();\n</script>";
    }

    /** A table as an HTML {@code <table>} with its name as caption, every row. */
    public static String tableHtml(Table t) {
        return tableHtml(t, Integer.MAX_VALUE);
    }

    /** A table as an HTML {@code <table>}, at most {@code maxRows} rows and a note of how many were left out. */
    public static String tableHtml(Table t, int maxRows) {
        if (t == null) throw new IllegalArgumentException("no table given (null)");
        StringBuilder sb = new StringBuilder("<table class=\"lowbit-table\">\n");
        if (t.name() != null && !t.name().isBlank()) {
            sb.append("<caption>").append(escape(t.name())).append("</caption>\n");
        }
        sb.append("<thead><tr>");
        for (String c : t.columnNames()) sb.append("<th>").append(escape(c)).append("</th>");
        sb.append("</tr></thead>\n<tbody>\n");
        int shown = Math.min(t.rowCount(), Math.max(0, maxRows));
        for (int r = 0; r < shown; r++) {
            sb.append("<tr>");
            for (var c : t.columns()) {
                sb.append(c instanceof NumericColumn<?> ? "<td class=\"num\">" : "<td>")
                        .append(escape(c.getString(r))).append("</td>");
            }
            sb.append("</tr>\n");
        }
        sb.append("</tbody>\n</table>");
        if (shown < t.rowCount()) {
            sb.append("\n<p><em>").append(t.rowCount() - shown).append(" of ").append(t.rowCount())
                    .append(" rows not shown</em></p>");
        }
        return sb.toString();
    }

    static String escape(String s) {
        if (s == null) return "";
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> sb.append("&amp;");
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }

    /** plotly.js compressed once per JVM on first use (about a second), not per page. */
    private static final class Library {
        static final String BASE64 = Base64.getEncoder().encodeToString(gzip(read()));

        private static byte[] read() {
            try (InputStream in = Html.class.getClassLoader().getResourceAsStream(PLOTLY_RESOURCE)) {
                if (in == null) {
                    throw new IllegalStateException("plotly.js " + PLOTLY_VERSION + " not on the classpath (" + PLOTLY_RESOURCE
                            + "): add the org.webjars.npm:plotly.js-dist:" + PLOTLY_VERSION + " jar");
                }
                return in.readAllBytes();
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read " + PLOTLY_RESOURCE, e);
            }
        }

        private static byte[] gzip(byte[] data) {
            var out = new ByteArrayOutputStream(data.length / 4);
            try (var gz = new GZIPOutputStream(out, 1 << 16) {
                {
                    def.setLevel(Deflater.BEST_COMPRESSION);
                }
            }) {
                gz.write(data);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return out.toByteArray();
        }
    }
}
