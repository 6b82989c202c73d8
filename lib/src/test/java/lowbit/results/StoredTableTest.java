package lowbit.results;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class StoredTableTest {
    private static Table hessians() {
        return Table.create("h", IntColumn.create("layer", 0, 1), StringColumn.create("input", "attn_in", "mlp_act"),
                DoubleColumn.create("trace", 2.5, 0.125));
    }

    @Test
    void computedOnceThenReadBackAndRecomputedWhenTheMarkerIsMissing(@TempDir Path dir) throws Exception {
        Map<String, Object> params = Map.of("study", "hessian-statistics", "top_eigen", 4);
        AtomicInteger computed = new AtomicInteger();
        ResultStore store = ResultStore.open(dir.resolve("store.jsonl"));
        Table first = StoredTable.computeIfAbsent(store, dir, "hessian-statistics", params, () -> {
            computed.incrementAndGet();
            return hessians();
        });
        assertEquals(1, computed.get());
        assertEquals(2, first.rowCount());
        Path file = dir.resolve("tables").resolve("hessian-statistics-" + Row.key(params).substring(0, 12) + ".jsonl");
        assertTrue(Files.isRegularFile(file), "rows written beside the store");
        assertEquals(2, Files.readAllLines(file).size());

        Table again = StoredTable.computeIfAbsent(ResultStore.open(dir.resolve("store.jsonl")), dir, "hessian-statistics", params, () -> {
            throw new AssertionError("a stored table is not recomputed");
        });
        assertEquals("hessian statistics", again.name());
        assertEquals(java.util.List.of("layer", "input", "trace"), again.columnNames());
        assertEquals("mlp_act", again.stringColumn("input").get(1));
        assertEquals(0.125, again.numberColumn("trace").getDouble(1), 0.0);
        assertEquals(1, ((Number) again.column("layer").get(1)).intValue());

        // Rows without the store's marker (a run killed between the two writes) are computed again.
        Table other = StoredTable.computeIfAbsent(ResultStore.open(dir.resolve("other.jsonl")), dir, "hessian-statistics", params, () -> {
            computed.incrementAndGet();
            return hessians();
        });
        assertEquals(2, computed.get());
        assertEquals(2, other.rowCount());
        assertEquals(2, Files.readAllLines(file).size(), "the half-done file is replaced, not appended to");
    }
}
