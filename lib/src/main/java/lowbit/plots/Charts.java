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
import tech.tablesaw.plotly.components.Axis;
import tech.tablesaw.plotly.components.Figure;
import tech.tablesaw.plotly.components.Layout;
import tech.tablesaw.plotly.components.Line;
import tech.tablesaw.plotly.components.Marker;
import tech.tablesaw.plotly.traces.BarTrace;
import tech.tablesaw.plotly.traces.HeatmapTrace;
import tech.tablesaw.plotly.traces.ScatterTrace;
import tech.tablesaw.plotly.traces.Trace;

/**
 * The study's Plotly figures, each a function of a results table so that a notebook cell is one line, e.g.
 * {@code Charts.heatmap(stats.where(stats.stringColumn("kind").isEqualTo("weight")), "layer", "module",
 * "kurtosis", "Weight kurtosis")}. Render them with {@link Html}.
 *
 * <p>Titles are plain layout strings, which plotly.js 2.x draws and 3.x ignores: use the plotly.js that
 * {@link Html} inlines. Series, rows and columns appear in the order of first appearance in the table
 * (rows of a heatmap sorted numerically when the row column is numeric); points of a line in increasing x.
 */
public final class Charts {
    private Charts() {}

    /** plotly.js's own default colour cycle, repeated here because a band must share its line's colour. */
    static final List<String> PALETTE = List.of("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf");

    static final int WIDTH = 860;
    static final int HEIGHT = 480;

    /**
     * A heatmap of {@code valueCol} with one row per distinct {@code rowCol} value (first at the top) and one
     * column per distinct {@code colCol} value, e.g. kurtosis by block (layer) x module. Missing cells are
     * gaps; two rows of the table landing in one cell are an error (filter the table first, e.g. by kind).
     */
    public static Figure heatmap(Table t, String rowCol, String colCol, String valueCol, String title) {
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
        Layout layout = Layout.builder()
                .title(label(title))
                .width(WIDTH)
                .height(Math.max(HEIGHT, 160 + 24 * rowKeys.size()))
                .xAxis(Axis.builder().title(label(colCol)).type(Axis.Type.CATEGORY).build())
                .yAxis(Axis.builder().title(label(rowCol)).type(Axis.Type.CATEGORY)
                        .autoRange(Axis.AutoRange.REVERSED).build())
                .build();
        // HeatmapTrace names its variable trace0 whatever its index, so it must be the figure's only trace.
        return new Figure(layout, HeatmapTrace.builder(labels(colKeys), labels(rowKeys), z).build());
    }

    /** One bar per row, labelled by {@code labelCol}, sorted by {@code valueCol} descending (missing last). */
    public static Figure bars(Table t, String labelCol, String valueCol, String title) {
        Column<?> labels = column(t, labelCol);
        NumericColumn<?> values = numeric(t, valueCol);
        Integer[] order = new Integer[t.rowCount()];
        for (int i = 0; i < order.length; i++) order[i] = i;
        Arrays.sort(order, Comparator.comparingDouble((Integer i) -> {
            double v = values.getDouble(i);
            return Double.isNaN(v) ? Double.POSITIVE_INFINITY : -v;
        }));
        Object[] x = new Object[order.length];
        double[] y = new double[order.length];
        for (int k = 0; k < order.length; k++) {
            x[k] = label(labels.getString(order[k]));
            y[k] = values.getDouble(order[k]);
        }
        Trace bars = BarTrace.builder(x, y).name(label(valueCol))
                .marker(Marker.builder().color(PALETTE.get(0)).build()).build();
        return new Figure(categoryLayout(title, labelCol, valueCol), bars);
    }

    /** One line per distinct {@code seriesCol} value through its (x, y) points, e.g. perplexity vs bits per method. */
    public static Figure lines(Table t, String xCol, String yCol, String seriesCol, String title, boolean logY) {
        NumericColumn<?> x = numeric(t, xCol);
        NumericColumn<?> y = numeric(t, yCol);
        Map<String, List<Integer>> series = groups(t, seriesCol);
        List<Trace> traces = new ArrayList<>();
        int s = 0;
        for (var e : series.entrySet()) {
            List<Integer> rows = sortedBy(e.getValue(), x);
            String color = PALETTE.get(s++ % PALETTE.size());
            traces.add(ScatterTrace.builder(values(rows, x), values(rows, y))
                    .name(label(e.getKey()))
                    .mode(ScatterTrace.Mode.LINE_AND_MARKERS)
                    .line(Line.builder().color(color).width(2).build())
                    .marker(Marker.builder().color(color).build())
                    .build());
        }
        return new Figure(xyLayout(title, xCol, yCol, false, logY), traces.toArray(Trace[]::new));
    }

    /**
     * Per series, a shaded band between {@code lowCol} and {@code highCol} (e.g. a 95% interval over seeds)
     * and the {@code meanCol} line over it, e.g. perplexity vs number of calibration samples per method.
     */
    public static Figure band(Table t, String xCol, String meanCol, String lowCol, String highCol, String seriesCol,
                              String title, boolean logX) {
        NumericColumn<?> x = numeric(t, xCol);
        NumericColumn<?> mean = numeric(t, meanCol);
        NumericColumn<?> low = numeric(t, lowCol);
        NumericColumn<?> high = numeric(t, highCol);
        Map<String, List<Integer>> series = groups(t, seriesCol);
        List<Trace> traces = new ArrayList<>();
        int s = 0;
        for (var e : series.entrySet()) {
            List<Integer> rows = sortedBy(e.getValue(), x);
            String color = PALETTE.get(s++ % PALETTE.size());
            double[] xs = values(rows, x);
            String name = label(e.getKey());
            // 'tonexty' fills down to the trace just before it, so the low edge must immediately precede the high.
            traces.add(edge(xs, values(rows, low), name + " " + label(lowCol), color, null));
            traces.add(edge(xs, values(rows, high), name + " " + label(highCol), color, ScatterTrace.Fill.TO_NEXT_Y));
            traces.add(ScatterTrace.builder(xs, values(rows, mean))
                    .name(name)
                    .mode(ScatterTrace.Mode.LINE_AND_MARKERS)
                    .line(Line.builder().color(color).width(2).build())
                    .marker(Marker.builder().color(color).build())
                    .build());
        }
        return new Figure(xyLayout(title, xCol, meanCol, logX, false), traces.toArray(Trace[]::new));
    }

    /**
     * Bars grouped by {@code xCol}, one bar per distinct {@code seriesCol} value in each group, e.g. perplexity
     * per average bits with mixed and uniform allocation side by side.
     */
    public static Figure groupedBars(Table t, String xCol, String yCol, String seriesCol, String title) {
        Column<?> xc = column(t, xCol);
        NumericColumn<?> y = numeric(t, yCol);
        Map<String, List<Integer>> series = groups(t, seriesCol);
        List<String> xKeys = distinct(xc);
        if (xc instanceof NumericColumn<?> nx) {
            Map<String, Double> order = new LinkedHashMap<>();
            for (int i = 0; i < t.rowCount(); i++) order.putIfAbsent(xc.getString(i), nx.getDouble(i));
            xKeys.sort(Comparator.comparingDouble(order::get));
        }
        Object[] xs = labels(xKeys);
        List<Trace> traces = new ArrayList<>();
        int s = 0;
        for (var e : series.entrySet()) {
            double[] ys = new double[xKeys.size()];
            Arrays.fill(ys, Double.NaN);
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
            }
            traces.add(BarTrace.builder(xs, ys).name(label(e.getKey()))
                    .marker(Marker.builder().color(PALETTE.get(s++ % PALETTE.size())).build()).build());
        }
        return new Figure(categoryLayout(title, xCol, yCol), traces.toArray(Trace[]::new));
    }

    private static Trace edge(double[] xs, double[] ys, String name, String color, ScatterTrace.Fill fill) {
        ScatterTrace.ScatterBuilder b = ScatterTrace.builder(xs, ys)
                .name(name)
                .mode(ScatterTrace.Mode.LINE)
                .showLegend(false)
                .line(Line.builder().color(color).width(0).build());
        if (fill != null) b.fill(fill).fillColor(translucent(color, 0.2));
        return b.build();
    }

    private static Layout xyLayout(String title, String xCol, String yCol, boolean logX, boolean logY) {
        return Layout.builder()
                .title(label(title))
                .width(WIDTH)
                .height(HEIGHT)
                .xAxis(Axis.builder().title(label(xCol)).type(logX ? Axis.Type.LOG : Axis.Type.LINEAR).build())
                .yAxis(Axis.builder().title(label(yCol)).type(logY ? Axis.Type.LOG : Axis.Type.LINEAR).build())
                .build();
    }

    // No barMode: Tablesaw 0.44.4 never writes it out, and plotly.js's default, 'group', is what grouped bars need.
    private static Layout categoryLayout(String title, String xCol, String yCol) {
        return Layout.builder()
                .title(label(title))
                .width(WIDTH)
                .height(HEIGHT)
                // Category type keeps numeric labels (bits, layer numbers) in the given order, evenly spaced.
                .xAxis(Axis.builder().title(label(xCol)).type(Axis.Type.CATEGORY).build())
                .yAxis(Axis.builder().title(label(yCol)).build())
                .build();
    }

    static String translucent(String hex, double alpha) {
        int rgb = Integer.parseInt(hex.substring(1), 16);
        return "rgba(" + (rgb >> 16) + "," + ((rgb >> 8) & 0xff) + "," + (rgb & 0xff) + "," + alpha + ")";
    }

    /**
     * Tablesaw HTML-escapes labels into single-quoted JavaScript strings but leaves backslashes and line breaks
     * alone, either of which would break the script: replace them.
     */
    static String label(String s) {
        if (s == null) return "";
        return s.replace('\\', '\u29F5').replaceAll("[\\p{Cntrl}]", " ");
    }

    private static Object[] labels(List<String> keys) {
        return keys.stream().map(Charts::label).toArray();
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
