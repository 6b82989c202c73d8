package lowbit.plots;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import tech.tablesaw.api.NumericColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.columns.Column;

/**
 * The study's Plotly figures, each a function of a results table so that a notebook cell is one line, e.g.
 * {@code Charts.heatmap(stats.where(stats.stringColumn("kind").isEqualTo("weight")), "layer", "module",
 * "kurtosis", "Weight kurtosis")}. Axis titles default to the column names; give readers words and units with
 * {@link Figure#withAxisTitles}. Render them with {@link Html} or, in a notebook, with {@code lowbit.notebook.Display}.
 *
 * <p>Series, rows and columns appear in the order of first appearance in the table (rows of a heatmap sorted
 * numerically when the row column is numeric); points of a line in increasing x. Missing values are gaps.
 */
public final class Charts {
    private Charts() {}

    /** plotly.js's own default colour cycle, repeated here because a band must share its line's colour. */
    static final List<String> PALETTE = List.of("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf");

    static final int WIDTH = 860;
    static final int HEIGHT = 480;

    /**
     * Bars switch to a log axis when every value is positive and the largest is this many times the median:
     * one bar would otherwise flatten the others into the axis.
     */
    static final double LOG_BARS_RATIO = 20;

    /**
     * A heatmap of {@code valueCol} with one row per distinct {@code rowCol} value (first at the top) and one
     * column per distinct {@code colCol} value, e.g. kurtosis by block (layer) x module. Missing cells are
     * gaps; two rows of the table landing in one cell are an error (filter the table first, e.g. by kind).
     */
    public static Figure heatmap(Table t, String rowCol, String colCol, String valueCol, String title) {
        Grid g = grid(t, rowCol, colCol, valueCol);
        Map<String, Object> trace = heatmapTrace(g, g.z);
        trace.put("colorbar", map("title", title(valueCol)));
        return new Figure(List.of(trace), heatmapLayout(title, g, rowCol, colCol));
    }

    /**
     * {@link #heatmap} with the colour on a log10 scale, for values that span decades (kurtosis from 3 to 1e6,
     * Hessian traces), where a linear scale saturates on the few largest cells. The colour bar is labelled in the
     * values themselves and hovering shows each cell's value. Values must be positive.
     */
    public static Figure logHeatmap(Table t, String rowCol, String colCol, String valueCol, String title) {
        Grid g = grid(t, rowCol, colCol, valueCol);
        double[][] logZ = new double[g.z.length][];
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        List<List<String>> text = new ArrayList<>();
        for (int r = 0; r < g.z.length; r++) {
            logZ[r] = new double[g.z[r].length];
            List<String> row = new ArrayList<>();
            for (int c = 0; c < g.z[r].length; c++) {
                double v = g.z[r][c];
                if (!Double.isNaN(v) && !(v > 0)) {
                    throw new IllegalArgumentException("log heatmap of table '" + t.name() + "': " + valueCol + " = " + v + " at "
                            + rowCol + "=" + g.rowKeys.get(r) + ", " + colCol + "=" + g.colKeys.get(c) + "; a log scale needs positive values");
                }
                logZ[r][c] = Math.log10(v);
                row.add(Double.isNaN(v) ? "" : Numbers.significant(v, 4));
                if (!Double.isNaN(v)) {
                    lo = Math.min(lo, logZ[r][c]);
                    hi = Math.max(hi, logZ[r][c]);
                }
            }
            text.add(row);
        }
        Map<String, Object> trace = heatmapTrace(g, logZ);
        trace.put("text", text);
        trace.put("hovertemplate", rowCol + " %{y}, " + colCol + " %{x}: %{text}<extra></extra>");
        List<Double> tickvals = new ArrayList<>();
        List<String> ticktext = new ArrayList<>();
        if (lo <= hi) {
            // Decades, with more steps in between the fewer decades the data spans, so there are always a few labels.
            int[] steps = hi - lo < 1 ? new int[] {1, 2, 3, 4, 5, 6, 7, 8, 9} : hi - lo < 2 ? new int[] {1, 2, 5} : new int[] {1};
            for (int e = (int) Math.floor(lo); e <= Math.ceil(hi); e++)
                for (int s : steps) {
                    double v = Math.log10(s) + e;
                    if (v >= lo - 1e-9 && v <= hi + 1e-9) {
                        tickvals.add(v);
                        ticktext.add(Numbers.significant(s * Math.pow(10, e), 3));
                    }
                }
        }
        trace.put("colorbar", map("title", title(valueCol + " (log scale)"), "tickvals", tickvals, "ticktext", ticktext));
        return new Figure(List.of(trace), heatmapLayout(title, g, rowCol, colCol));
    }

    /** One bar per row, labelled by {@code labelCol}, sorted by {@code valueCol} descending (missing last). */
    public static Figure bars(Table t, String labelCol, String valueCol, String title) {
        return bars(t, labelCol, valueCol, null, title);
    }

    /**
     * {@link #bars} with a hover text per bar from {@code hoverCol} (e.g. a linear's full name behind a short
     * label), or the label when it is null. The value axis is logarithmic when one bar would flatten the rest
     * ({@link #LOG_BARS_RATIO}).
     */
    public static Figure bars(Table t, String labelCol, String valueCol, String hoverCol, String title) {
        Column<?> labels = column(t, labelCol);
        NumericColumn<?> values = numeric(t, valueCol);
        Column<?> hover = hoverCol == null ? labels : column(t, hoverCol);
        Integer[] order = new Integer[t.rowCount()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> {
            double v = values.getDouble(i);
            return Double.isNaN(v) ? Double.POSITIVE_INFINITY : -v;
        }));
        List<String> x = new ArrayList<>();
        List<String> text = new ArrayList<>();
        double[] y = new double[order.length];
        for (int k = 0; k < order.length; k++) {
            x.add(labels.getString(order[k]));
            y[k] = values.getDouble(order[k]);
            text.add(hover.getString(order[k]) + ": " + Numbers.significant(y[k], 4));
        }
        Map<String, Object> trace = map("type", "bar", "x", x, "y", numbers(y), "name", valueCol,
                "marker", map("color", PALETTE.get(0)), "hovertext", text, "hoverinfo", "text");
        Map<String, Object> layout = categoryLayout(title, labelCol, valueCol);
        if (flattens(y)) axis(layout, "yaxis").put("type", "log");
        return new Figure(List.of(trace), layout);
    }

    /** One line per distinct {@code seriesCol} value through its (x, y) points, e.g. perplexity vs bits per method. */
    public static Figure lines(Table t, String xCol, String yCol, String seriesCol, String title, boolean logY) {
        NumericColumn<?> x = numeric(t, xCol);
        NumericColumn<?> y = numeric(t, yCol);
        List<Map<String, Object>> traces = new ArrayList<>();
        int s = 0;
        for (var e : groups(t, seriesCol).entrySet()) {
            List<Integer> rows = sortedBy(e.getValue(), x);
            String color = PALETTE.get(s++ % PALETTE.size());
            traces.add(map("type", "scatter", "x", numbers(values(rows, x)), "y", numbers(values(rows, y)), "name", e.getKey(),
                    "mode", "lines+markers", "line", map("color", color, "width", 2), "marker", map("color", color)));
        }
        return new Figure(traces, xyLayout(title, xCol, yCol, false, logY));
    }

    /**
     * Per series, a shaded band between {@code lowCol} and {@code highCol} (e.g. a 95% interval over seeds)
     * and the {@code meanCol} line over it, e.g. perplexity vs number of calibration samples per method.
     */
    public static Figure band(Table t, String xCol, String meanCol, String lowCol, String highCol, String seriesCol,
                              String title, boolean logX) {
        return band(t, xCol, meanCol, lowCol, highCol, seriesCol, title, logX, false);
    }

    /** {@link #band} with a choice of log y axis (for perplexity, whose intervals are multiplicative). */
    public static Figure band(Table t, String xCol, String meanCol, String lowCol, String highCol, String seriesCol,
                              String title, boolean logX, boolean logY) {
        NumericColumn<?> x = numeric(t, xCol);
        NumericColumn<?> mean = numeric(t, meanCol);
        NumericColumn<?> low = numeric(t, lowCol);
        NumericColumn<?> high = numeric(t, highCol);
        List<Map<String, Object>> traces = new ArrayList<>();
        int s = 0;
        for (var e : groups(t, seriesCol).entrySet()) {
            List<Integer> rows = sortedBy(e.getValue(), x);
            String color = PALETTE.get(s++ % PALETTE.size());
            List<Double> xs = numbers(values(rows, x));
            String name = e.getKey();
            // 'tonexty' fills down to the trace just before it, so the low edge must immediately precede the high.
            traces.add(edge(xs, values(rows, low), name + " " + lowCol, color, false));
            traces.add(edge(xs, values(rows, high), name + " " + highCol, color, true));
            traces.add(map("type", "scatter", "x", xs, "y", numbers(values(rows, mean)), "name", name, "mode", "lines+markers",
                    "line", map("color", color, "width", 2), "marker", map("color", color)));
        }
        return new Figure(traces, xyLayout(title, xCol, meanCol, logX, logY));
    }

    /**
     * Bars grouped by {@code xCol}, one bar per distinct {@code seriesCol} value in each group, e.g. perplexity
     * per average bits with mixed and uniform allocation side by side; a log axis when one bar would flatten the rest.
     */
    public static Figure groupedBars(Table t, String xCol, String yCol, String seriesCol, String title) {
        return groupedBars(t, xCol, yCol, null, null, seriesCol, title);
    }

    /**
     * {@link #groupedBars} with an error bar from {@code lowCol} to {@code highCol} on each bar (e.g. a 95%
     * interval over seeds); the bounds may be asymmetric around the bar.
     */
    public static Figure groupedBars(Table t, String xCol, String yCol, String lowCol, String highCol, String seriesCol, String title) {
        Column<?> xc = column(t, xCol);
        NumericColumn<?> y = numeric(t, yCol);
        NumericColumn<?> low = lowCol == null ? null : numeric(t, lowCol);
        NumericColumn<?> high = highCol == null ? null : numeric(t, highCol);
        List<String> xKeys = distinct(xc);
        if (xc instanceof NumericColumn<?> nx) {
            Map<String, Double> order = new LinkedHashMap<>();
            for (int i = 0; i < t.rowCount(); i++) order.putIfAbsent(xc.getString(i), nx.getDouble(i));
            xKeys.sort(Comparator.comparingDouble(order::get));
        }
        List<Map<String, Object>> traces = new ArrayList<>();
        int s = 0;
        for (var e : groups(t, seriesCol).entrySet()) {
            double[] ys = nan(xKeys.size()), plus = nan(xKeys.size()), minus = nan(xKeys.size());
            boolean[] seen = new boolean[xKeys.size()];
            for (int i : e.getValue()) {
                int k = xKeys.indexOf(xc.getString(i));
                if (seen[k]) {
                    throw new IllegalArgumentException("grouped bars of table '" + t.name() + "': more than one row for "
                            + seriesCol + "=" + e.getKey() + ", " + xCol + "=" + xc.getString(i)
                            + "; aggregate the table to one " + yCol + " per bar first");
                }
                seen[k] = true;
                ys[k] = y.getDouble(i);
                if (low != null) {
                    plus[k] = Math.max(0, high.getDouble(i) - ys[k]);
                    minus[k] = Math.max(0, ys[k] - low.getDouble(i));
                }
            }
            Map<String, Object> trace = map("type", "bar", "x", xKeys, "y", numbers(ys), "name", e.getKey(),
                    "marker", map("color", PALETTE.get(s++ % PALETTE.size())));
            if (low != null)
                trace.put("error_y", map("type", "data", "symmetric", false, "array", numbers(plus), "arrayminus", numbers(minus),
                        "color", "#333"));
            traces.add(trace);
        }
        // plotly.js's default barmode, 'group', is what grouped bars need.
        Map<String, Object> layout = categoryLayout(title, xCol, yCol);
        double[] all = new double[t.rowCount()];
        for (int i = 0; i < all.length; i++) all[i] = y.getDouble(i);
        if (flattens(all)) axis(layout, "yaxis").put("type", "log");
        return new Figure(traces, layout);
    }

    /** A dashed horizontal reference line across the figure's x range, e.g. the float model's perplexity, in the legend as {@code name}. */
    public static Figure withReferenceLine(Figure f, double y, String name) {
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (Map<String, Object> trace : f.data())
            if (trace.get("x") instanceof List<?> xs)
                for (Object v : xs)
                    if (v instanceof Number n) {
                        lo = Math.min(lo, n.doubleValue());
                        hi = Math.max(hi, n.doubleValue());
                    }
        if (lo > hi) throw new IllegalArgumentException("figure '" + f.title() + "' has no numeric x values to draw a reference line across");
        List<Map<String, Object>> data = new ArrayList<>(f.data());
        data.add(map("type", "scatter", "x", List.of(lo, hi), "y", List.of(y, y), "name", name, "mode", "lines",
                "line", map("color", "#444", "width", 1.5, "dash", "dash"), "hoverinfo", "name"));
        return new Figure(data, f.layout());
    }

    /** The series named {@code name} drawn as points only: for values that exist only at those x (no line implies values between). */
    public static Figure withPointsOnly(Figure f, String name) {
        List<Map<String, Object>> data = new ArrayList<>();
        boolean found = false;
        for (Map<String, Object> trace : f.data()) {
            Map<String, Object> t = new LinkedHashMap<>(trace);
            if (name.equals(t.get("name"))) {
                t.put("mode", "markers");
                t.put("marker", map("color", ((Map<?, ?>) trace.get("marker")).get("color"), "size", 11, "symbol", "diamond"));
                found = true;
            }
            data.add(t);
        }
        if (!found) throw new IllegalArgumentException("figure '" + f.title() + "' has no series '" + name + "'");
        return new Figure(data, f.layout());
    }

    /** A title object, as plotly.js 2 and later read it. */
    static Map<String, Object> title(String text) {
        return map("text", text == null ? "" : text);
    }

    private record Grid(List<String> rowKeys, List<String> colKeys, double[][] z) {}

    private static Grid grid(Table t, String rowCol, String colCol, String valueCol) {
        Column<?> rows = column(t, rowCol);
        Column<?> cols = column(t, colCol);
        NumericColumn<?> values = numeric(t, valueCol);
        List<String> rowKeys = distinct(rows);
        if (rows instanceof NumericColumn<?> nr) {
            Map<String, Double> order = new LinkedHashMap<>();
            for (int i = 0; i < t.rowCount(); i++) order.putIfAbsent(rows.getString(i), nr.getDouble(i));
            rowKeys.sort(Comparator.comparingDouble(order::get));
        }
        List<String> colKeys = distinct(cols);
        double[][] z = new double[rowKeys.size()][colKeys.size()];
        for (double[] r : z) Arrays.fill(r, Double.NaN);
        boolean[][] seen = new boolean[rowKeys.size()][colKeys.size()];
        for (int i = 0; i < t.rowCount(); i++) {
            int r = rowKeys.indexOf(rows.getString(i));
            int c = colKeys.indexOf(cols.getString(i));
            if (seen[r][c]) {
                throw new IllegalArgumentException("heatmap of table '" + t.name() + "': more than one row for cell "
                        + rowCol + "=" + rows.getString(i) + ", " + colCol + "=" + cols.getString(i)
                        + "; filter the table to one " + valueCol + " per cell first");
            }
            seen[r][c] = true;
            z[r][c] = values.getDouble(i);
        }
        return new Grid(rowKeys, colKeys, z);
    }

    private static Map<String, Object> heatmapTrace(Grid g, double[][] z) {
        List<List<Double>> rows = new ArrayList<>();
        for (double[] r : z) rows.add(numbers(r));
        return map("type", "heatmap", "x", g.colKeys, "y", g.rowKeys, "z", rows, "colorscale", "Viridis");
    }

    private static Map<String, Object> heatmapLayout(String title, Grid g, String rowCol, String colCol) {
        Map<String, Object> layout = map("title", title(title), "width", WIDTH, "height", Math.max(HEIGHT, 160 + 24 * g.rowKeys.size()));
        layout.put("xaxis", map("title", title(colCol), "type", "category"));
        layout.put("yaxis", map("title", title(rowCol), "type", "category", "autorange", "reversed"));
        return layout;
    }

    private static Map<String, Object> edge(List<Double> xs, double[] ys, String name, String color, boolean fill) {
        Map<String, Object> t = map("type", "scatter", "x", xs, "y", numbers(ys), "name", name, "mode", "lines", "showlegend", false,
                "line", map("color", color, "width", 0), "hoverinfo", "x+y");
        if (fill) {
            t.put("fill", "tonexty");
            t.put("fillcolor", translucent(color, 0.2));
        }
        return t;
    }

    private static Map<String, Object> xyLayout(String title, String xCol, String yCol, boolean logX, boolean logY) {
        Map<String, Object> layout = map("title", title(title), "width", WIDTH, "height", HEIGHT);
        layout.put("xaxis", map("title", title(xCol), "type", logX ? "log" : "linear"));
        layout.put("yaxis", map("title", title(yCol), "type", logY ? "log" : "linear"));
        return layout;
    }

    private static Map<String, Object> categoryLayout(String title, String xCol, String yCol) {
        Map<String, Object> layout = map("title", title(title), "width", WIDTH, "height", HEIGHT);
        // Category type keeps numeric labels (bits, layer numbers) in the given order, evenly spaced.
        layout.put("xaxis", map("title", title(xCol), "type", "category", "automargin", true));
        layout.put("yaxis", map("title", title(yCol), "type", "linear"));
        return layout;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> axis(Map<String, Object> layout, String name) {
        return (Map<String, Object>) layout.get(name);
    }

    /** Whether every value is positive and the largest at least {@link #LOG_BARS_RATIO} times the median. */
    static boolean flattens(double[] y) {
        double[] finite = Arrays.stream(y).filter(v -> !Double.isNaN(v)).sorted().toArray();
        if (finite.length < 2 || finite[0] <= 0) return false;
        double median = finite[finite.length / 2];
        return finite[finite.length - 1] >= LOG_BARS_RATIO * median;
    }

    static String translucent(String hex, double alpha) {
        int rgb = Integer.parseInt(hex.substring(1), 16);
        return "rgba(" + (rgb >> 16) + "," + ((rgb >> 8) & 0xff) + "," + (rgb & 0xff) + "," + alpha + ")";
    }

    /** Alternating keys and values, in order. */
    static Map<String, Object> map(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    /** The values as a JSON array, non-finite ones as null (a gap in plotly.js). */
    static List<Double> numbers(double[] v) {
        List<Double> out = new ArrayList<>(v.length);
        for (double d : v) out.add(Double.isFinite(d) ? d : null);
        return out;
    }

    private static double[] nan(int n) {
        double[] v = new double[n];
        Arrays.fill(v, Double.NaN);
        return v;
    }

    private static double[] values(List<Integer> rows, NumericColumn<?> c) {
        double[] v = new double[rows.size()];
        for (int k = 0; k < v.length; k++) v[k] = c.getDouble(rows.get(k));
        return v;
    }

    private static List<Integer> sortedBy(List<Integer> rows, NumericColumn<?> x) {
        List<Integer> sorted = new ArrayList<>(rows);
        sorted.sort(Comparator.comparingDouble(x::getDouble));
        return sorted;
    }

    private static Map<String, List<Integer>> groups(Table t, String col) {
        Column<?> c = column(t, col);
        Map<String, List<Integer>> g = new LinkedHashMap<>();
        for (int i = 0; i < t.rowCount(); i++) g.computeIfAbsent(c.getString(i), k -> new ArrayList<>()).add(i);
        return g;
    }

    private static List<String> distinct(Column<?> c) {
        List<String> keys = new ArrayList<>();
        for (int i = 0; i < c.size(); i++) {
            String k = c.getString(i);
            if (!keys.contains(k)) keys.add(k);
        }
        return keys;
    }

    /** The named column, or an error naming the table, the column and the columns there are. */
    static Column<?> column(Table t, String name) {
        if (t == null) throw new IllegalArgumentException("no table given (null) for column '" + name + "'");
        if (name == null || !t.containsColumn(name)) {
            throw new IllegalArgumentException("table '" + t.name() + "' has no column '" + name
                    + "'; available columns: " + t.columnNames());
        }
        return t.column(name);
    }

    static NumericColumn<?> numeric(Table t, String name) {
        Column<?> c = column(t, name);
        if (c instanceof NumericColumn<?> n) return n;
        throw new IllegalArgumentException("column '" + name + "' of table '" + t.name() + "' must be numeric, is "
                + c.type().name() + "; numeric columns: "
                + t.columns().stream().filter(x -> x instanceof NumericColumn<?>).map(Column::name).toList());
    }
}
