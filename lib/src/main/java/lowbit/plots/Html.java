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
import java.util.regex.Pattern;
import java.util.zip.Deflater;
import java.util.zip.GZIPOutputStream;
import java.util.HashMap;
import java.util.Map;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.FloatColumn;
import tech.tablesaw.api.NumericColumn;
import tech.tablesaw.api.Table;

/**
 * Standalone, offline HTML for figures and tables: plotly.js 2.x is inlined once per page, and each figure is a
 * div plus a script that draws its {@link Figure#json()} once plotly.js is there. (Notebooks do not use this: they
 * carry each figure as Plotly's MIME type, which JupyterLab's Plotly extension draws; see lowbit.notebook.Display.)
 *
 * <p>plotly.js 2.35.3 (from the webjar; no minified build is published as a jar) is 10.8 MB. It is inlined
 * gzip-compressed as base64 (about 3.2 MB) and inflated in the browser
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

    /** A table folded under its caption and row count ({@code <details>}): long tables after the charts they feed. */
    public record Collapsed(Table table) {}

    static final String PLOTLY_VERSION = "2.35.3";
    static final String PLOTLY_RESOURCE = "META-INF/resources/webjars/plotly.js-dist/" + PLOTLY_VERSION + "/plotly.js";

    /** Marks the one library block, so tests and tools can count it. */
    static final String PLOTLY_MARKER = "lowbit-plotly-js";

    private static final Pattern DIV_ID = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*");

    private static final String STYLE = """
            body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
                   padding: 0 1em; color: #222; }
            table.lowbit-table { border-collapse: collapse; margin: 1em 0; font-size: 13px; }
            table.lowbit-table caption { text-align: left; font-weight: 600; padding: 4px 0; }
            table.lowbit-table th, table.lowbit-table td { border: 1px solid #ccc; padding: 3px 8px; }
            table.lowbit-table th { background: #f2f2f2; }
            table.lowbit-table td.num { text-align: right; font-variant-numeric: tabular-nums; }
            div.lowbit-figure { margin: 1em 0; }
            details.lowbit-table { margin: 0.5em 0; }
            details.lowbit-table summary { cursor: pointer; font-weight: 600; }
            details.lowbit-table table.lowbit-table { display: block; overflow-x: auto; max-width: 100%; }
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
                case Collapsed c -> body.append(collapsedHtml(c.table())).append('\n');
                case Heading h -> body.append("<h2>").append(escape(h.text())).append("</h2>\n");
                case Raw r -> body.append(r.html()).append('\n');
                case String s -> body.append("<p>").append(escape(s)).append("</p>\n");
                case null -> throw new IllegalArgumentException("page '" + title + "': part is null");
                default -> throw new IllegalArgumentException("page '" + title + "': cannot render a "
                        + part.getClass().getName() + "; parts are Figure, Table, String, Html.Heading, Html.Collapsed or Html.Raw");
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

    /**
     * The figure's div and the script that draws it once plotly.js has loaded ({@link #plotlyScriptTag} must be
     * somewhere on the page, before or after). {@code divId} must be letters, digits and '_', unique on the page.
     */
    public static String figureDiv(Figure f, String divId) {
        if (f == null) throw new IllegalArgumentException("no figure given (null) for div '" + divId + "'");
        if (divId == null || !DIV_ID.matcher(divId).matches()) {
            throw new IllegalArgumentException("div id '" + divId + "' must be letters, digits and '_', not starting with a digit");
        }
        // Data strings are JSON-quoted but not HTML-safe: "</" inside one would end the script element early.
        String json = f.json().replace("</", "<\\/").replace("<!--", "<\\!--");
        return "<div class=\"lowbit-figure\" id=\"" + divId + "\"></div>\n<script>\n(function () {\n"
                + "  var fig = " + json + ";\n"
                + "  function draw() { window.Plotly.newPlot('" + divId + "', fig.data, fig.layout); }\n"
                + "  if (window.lowbitPlotly) window.lowbitPlotly.then(draw);\n"
                + "  else (window.lowbitPlotlyPending = window.lowbitPlotlyPending || []).push(draw);\n"
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
        // Fractional columns at the precision their typical value needs; integer columns as they are.
        Map<String, Integer> decimals = new HashMap<>();
        for (var c : t.columns())
            if (c instanceof DoubleColumn || c instanceof FloatColumn)
                decimals.put(c.name(), Numbers.decimals(((NumericColumn<?>) c).asDoubleArray()));
        for (int r = 0; r < shown; r++) {
            sb.append("<tr>");
            for (var c : t.columns()) {
                Integer d = decimals.get(c.name());
                String cell = d == null ? c.getString(r) : c.isMissing(r) ? "" : Numbers.fixed(((NumericColumn<?>) c).getDouble(r), d);
                sb.append(c instanceof NumericColumn<?> ? "<td class=\"num\">" : "<td>").append(escape(cell)).append("</td>");
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

    /** A table under {@code <details>}: its caption and row count as the summary, the rows shown when opened. */
    public static String collapsedHtml(Table t) {
        if (t == null) throw new IllegalArgumentException("no table given (null)");
        String name = t.name() == null || t.name().isBlank() ? "table" : t.name();
        return "<details class=\"lowbit-table\"><summary>" + escape(name) + " (" + t.rowCount() + " rows, " + t.columnCount()
                + " columns)</summary>\n" + tableHtml(t) + "\n</details>";
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
