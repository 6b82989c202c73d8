package lowbit.results;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Supplier;
import tech.tablesaw.api.Table;
import tech.tablesaw.columns.Column;

/**
 * A whole table as one result: its rows go to DIR/tables/NAME-KEY.jsonl and, when complete, a row with the
 * parameters' key into the store marks it done. A run that stopped half-way (rows written, no marker)
 * recomputes it; a re-run with the same parameters reads it back.
 */
public final class StoredTable {
    private StoredTable() {}

    /** The table stored for {@code params}, or {@code compute}'s, stored first. The table is named after {@code name}. */
    public static Table computeIfAbsent(ResultStore store, Path dir, String name, Map<String, Object> params, Supplier<Table> compute) {
        String key = Row.key(params);
        Path file = dir.resolve("tables").resolve(name + "-" + key.substring(0, 12) + ".jsonl");
        if (store.contains(key) && Files.isRegularFile(file)) {
            Table t = ResultStore.open(file).table().setName(name.replace('-', ' '));
            t.removeColumns(ResultStore.KEY_FIELD);
            return t;
        }
        long t0 = System.nanoTime();
        Table t = compute.get();
        try {
            Files.createDirectories(file.getParent());
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file, e);
        }
        ResultStore rows = ResultStore.open(file);
        for (int i = 0; i < t.rowCount(); i++) {
            Map<String, Object> f = new LinkedHashMap<>();
            for (Column<?> c : t.columns()) {
                Object v = c.get(i);
                f.put(c.name(), v instanceof Float x ? (double) x : v);
            }
            rows.append(new Row(key + "/" + i, f));
        }
        store.tryAppend(Row.of(key).withAll(params).with("table", dir.relativize(file).toString()).with("rows", t.rowCount())
                .with("seconds", (System.nanoTime() - t0) / 1e9).withProvenance());
        return t;
    }
}
