package lowbit.plots;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Plotly figure as plotly.js reads it: a list of traces and a layout, each a tree of maps, lists, strings and
 * numbers (missing numbers are {@code null}, which plotly.js draws as gaps). {@link #json()} is the document
 * Jupyter's Plotly renderer ({@code application/vnd.plotly.v1+json}) and {@code Plotly.newPlot} take, so one
 * figure renders the same in a notebook, in JupyterLab without trusting the notebook, and in {@link Html} pages.
 *
 * <p>Only attributes that plotly.js 2.x and later all read are used (titles as {@code {text: ...}} objects:
 * plotly.js 3 dropped plain-string titles). Figures are immutable; the {@code with...} methods return copies.
 */
public final class Figure {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<Map<String, Object>> data;
    private final Map<String, Object> layout;

    Figure(List<Map<String, Object>> data, Map<String, Object> layout) {
        this.data = deepCopy(data);
        this.layout = deepCopy(layout);
    }

    /** The traces, in drawing order (read-only). */
    public List<Map<String, Object>> data() {
        return unmodifiable(data);
    }

    /** The layout (read-only). */
    public Map<String, Object> layout() {
        return unmodifiable(layout);
    }

    /** The title drawn above the figure. */
    public String title() {
        return text(layout.get("title"));
    }

    /** The x and y axis titles, e.g. {@code withAxisTitles("Bits per weight", "Perplexity")}. */
    public Figure withAxisTitles(String x, String y) {
        Figure f = new Figure(data, layout);
        axis(f.layout, "xaxis").put("title", Charts.title(x));
        axis(f.layout, "yaxis").put("title", Charts.title(y));
        return f;
    }

    /** The title of a heatmap's colour bar (what the colour means, with its unit). */
    public Figure withColorbarTitle(String title) {
        Figure f = new Figure(data, layout);
        for (Map<String, Object> trace : f.data) {
            if (!"heatmap".equals(trace.get("type"))) continue;
            @SuppressWarnings("unchecked")
            Map<String, Object> bar = (Map<String, Object>) trace.computeIfAbsent("colorbar", k -> new LinkedHashMap<>());
            bar.put("title", Charts.title(title));
        }
        return f;
    }

    /** The axis titles as drawn, x then y. */
    public List<String> axisTitles() {
        return List.of(text(axis(layout, "xaxis").get("title")), text(axis(layout, "yaxis").get("title")));
    }

    /** {@code {"data": [...], "layout": {...}}} */
    public String json() {
        Map<String, Object> doc = new LinkedHashMap<>();
        doc.put("data", data);
        doc.put("layout", layout);
        try {
            return JSON.writeValueAsString(doc);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("figure '" + title() + "' cannot be written as JSON", e);
        }
    }

    @Override
    public String toString() {
        return "<plotly figure: " + title() + ">";
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> axis(Map<String, Object> layout, String name) {
        return (Map<String, Object>) layout.computeIfAbsent(name, k -> new LinkedHashMap<>());
    }

    private static String text(Object title) {
        return title instanceof Map<?, ?> m && m.get("text") != null ? m.get("text").toString() : "";
    }

    @SuppressWarnings("unchecked")
    private static <T> T deepCopy(T value) {
        if (value instanceof Map<?, ?> m) {
            Map<String, Object> copy = new LinkedHashMap<>();
            m.forEach((k, v) -> copy.put((String) k, deepCopy(v)));
            return (T) copy;
        }
        if (value instanceof List<?> l) {
            List<Object> copy = new ArrayList<>(l.size());
            for (Object v : l) copy.add(deepCopy(v));
            return (T) copy;
        }
        return value;
    }

    @SuppressWarnings("unchecked")
    private static <T> T unmodifiable(T value) {
        if (value instanceof Map<?, ?> m) {
            Map<String, Object> view = new LinkedHashMap<>();
            m.forEach((k, v) -> view.put((String) k, unmodifiable(v)));
            return (T) Collections.unmodifiableMap(view);
        }
        if (value instanceof List<?> l) {
            List<Object> view = new ArrayList<>(l.size());
            for (Object v : l) view.add(unmodifiable(v));
            return (T) Collections.unmodifiableList(view);
        }
        return value;
    }
}
