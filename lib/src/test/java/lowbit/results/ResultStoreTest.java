package lowbit.results;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.ColumnType;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

class ResultStoreTest {
    @TempDir
    Path dir;

    /** The store's warnings about the broken files these tests write on purpose, asserted rather than printed. */
    private LogCapture log;

    @BeforeEach
    void captureWarnings() {
        log = LogCapture.of(ResultStore.class);
    }

    @AfterEach
    void releaseWarnings() {
        log.close();
    }

    private static Row experiment(String method, int bits, double ppl) {
        Map<String, Object> params = new LinkedHashMap<>();
        params.put("method", method);
        params.put("bits", bits);
        params.put("quant", Map.of("grid", Map.of("bits", bits, "group", 128)));
        return Row.of(Row.key(params)).withAll(params).with("ppl", ppl);
    }

    @Test
    void roundTripKeepsEveryValueKind() throws Exception {
        Map<String, Object> grid = new LinkedHashMap<>();
        grid.put("bits", 3);
        grid.put("symmetric", false);
        grid.put("scales", List.of(0.5, 0.25));
        Map<String, Object> draw = new LinkedHashMap<>();
        draw.put("sha256", Row.hash(List.of(List.of(1, 2, 3), List.of(4, 5, 6))));
        draw.put("windows", List.of(Map.of("doc", 3, "offset", 17), Map.of("doc", 9, "offset", 0)));
        Row a = Row.of("a")
                .with("method", "gptq \"quoted\"\nnewline, ünïcödé")
                .with("quant", Map.of("grid", grid))
                .with("calibration", draw)
                .with("seeds", new long[] {0, 1, 2})
                .with("ppl", 12.75)
                .with("diverged", Double.POSITIVE_INFINITY)
                .with("loss", Double.NaN)
                .with("low", Double.NEGATIVE_INFINITY)
                .with("note", null)
                .with("empty", Map.of())
                .with("big", Long.MAX_VALUE)
                .withProvenance();
        Row b = Row.of("b").with("ppl", 13);

        ResultStore store = ResultStore.open(dir.resolve("sub/dir/store.jsonl"));
        store.append(a);
        store.append(b);
        assertEquals(List.of(a, b), store.rows());

        ResultStore again = ResultStore.open(dir.resolve("sub/dir/store.jsonl"));
        assertEquals(List.of(a, b), again.rows());
        Row back = again.get("a").orElseThrow();
        assertInstanceOf(Long.class, back.at("quant.grid.bits"));
        assertTrue(Double.isNaN((Double) back.get("loss")));
        assertEquals(List.of(0L, 1L, 2L), back.get("seeds"));
        assertTrue(again.problems().isEmpty());
        assertEquals(List.of("a", "b"), List.copyOf(again.keys()));

        // one line per row, key first, non-finite numbers as bare tokens
        List<String> lines = Files.readAllLines(store.file());
        assertEquals(2, lines.size());
        assertTrue(lines.get(0).startsWith("{\"key\":\"a\",\"method\":"), lines.get(0));
        assertTrue(lines.get(0).contains("\"diverged\":Infinity"), lines.get(0));
        assertTrue(lines.get(0).contains("\"loss\":NaN"), lines.get(0));
        assertEquals("{\"key\":\"b\",\"ppl\":13}", lines.get(1));
    }

    @Test
    void tableHasFlattenedTypedColumnsInFirstAppearanceOrder() throws Exception {
        ResultStore store = ResultStore.open(dir.resolve("t.jsonl"));
        store.append(Row.of("r1")
                .with("method", "rtn")
                .with("quant", Map.of("grid", Map.of("bits", 4)))
                .with("ppl", 20)
                .with("ok", true)
                .with("layers", List.of(1, 2))
                .with("mixed", 1));
        store.append(Row.of("r2")
                .with("method", "gptq")
                .with("quant", Map.of("grid", Map.of("bits", 3), "act", "a8"))
                .with("ppl", 17.5)
                .with("mixed", "x")
                .with("extra", 2));
        store.append(Row.of("r3").with("ok", false).with("nothing", null));

        Table t = store.table();
        assertEquals("t.jsonl", t.name());
        assertEquals(List.of("key", "method", "quant.grid.bits", "ppl", "ok", "layers", "mixed", "quant.act", "extra",
                "nothing"), t.columnNames());
        assertEquals(3, t.rowCount());

        assertEquals(ColumnType.STRING, t.column("key").type());
        assertEquals(List.of("r1", "r2", "r3"), t.stringColumn("key").asList());

        StringColumn method = t.stringColumn("method");
        assertEquals("rtn", method.get(0));
        assertEquals("gptq", method.get(1));
        assertTrue(method.isMissing(2));

        LongColumn bits = (LongColumn) t.column("quant.grid.bits");
        assertEquals(4L, bits.get(0));
        assertEquals(3L, bits.get(1));
        assertTrue(bits.isMissing(2));

        DoubleColumn ppl = t.doubleColumn("ppl"); // 20 and 17.5: not all integral
        assertEquals(20.0, ppl.getDouble(0));
        assertEquals(17.5, ppl.getDouble(1));
        assertTrue(ppl.isMissing(2));

        BooleanColumn ok = t.booleanColumn("ok");
        assertEquals(true, ok.get(0));
        assertTrue(ok.isMissing(1));
        assertEquals(false, ok.get(2));

        assertEquals("[1,2]", t.stringColumn("layers").get(0));
        assertEquals(List.of("1", "x", ""), t.stringColumn("mixed").asList());
        assertEquals("a8", t.stringColumn("quant.act").get(1));
        assertEquals(ColumnType.LONG, t.column("extra").type());
        assertEquals(ColumnType.STRING, t.column("nothing").type());
        assertTrue(t.column("nothing").isMissing(2));
    }

    @Test
    void csvExportReadsBackWithTheSameValues() throws Exception {
        ResultStore store = ResultStore.open(dir.resolve("c.jsonl"));
        store.append(Row.of("r1").with("method", "rtn").with("quant", Map.of("bits", 4)).with("ppl", 20.5));
        store.append(Row.of("r2").with("method", "gptq, \"v2\"").with("ppl", 17.25));
        Path csv = dir.resolve("out/store.csv");
        store.exportCsv(csv);
        List<String> lines = Files.readAllLines(csv);
        assertEquals("key,method,quant.bits,ppl", lines.get(0));
        Table back = Table.read().csv(csv.toFile());
        assertEquals(List.of("r1", "r2"), back.stringColumn("key").asList());
        assertEquals("gptq, \"v2\"", back.stringColumn("method").get(1));
        assertEquals(4, ((Number) back.column("quant.bits").get(0)).intValue());
        assertTrue(back.column("quant.bits").isMissing(1));
        assertEquals(17.25, back.doubleColumn("ppl").getDouble(1));
    }

    @Test
    void tableRefusesColumnsThatCollide() throws Exception {
        ResultStore cased = ResultStore.open(dir.resolve("case.jsonl"));
        cased.append(Row.of("a").with("ppl", 1));
        cased.append(Row.of("b").with("PPL", 2));
        IllegalStateException e = assertThrows(IllegalStateException.class, cased::table);
        assertTrue(e.getMessage().contains("\"ppl\" and \"PPL\""), e.getMessage());
        assertEquals(2, cased.rows().size()); // the rows themselves are fine

        ResultStore dotted = ResultStore.open(dir.resolve("dots.jsonl"));
        dotted.append(Row.of("a").with("q.bits", 4).with("q", Map.of("bits", 3)));
        e = assertThrows(IllegalStateException.class, dotted::table);
        assertTrue(e.getMessage().contains("\"q.bits\""), e.getMessage());
    }

    @Test
    void emptyStoreGivesKeyColumnOnly() throws Exception {
        ResultStore store = ResultStore.open(dir.resolve("empty.jsonl"));
        Table t = store.table();
        assertEquals(List.of("key"), t.columnNames());
        assertEquals(0, t.rowCount());
        assertEquals(0, store.size());
    }

    @Test
    void duplicateKeyIsRefusedAlsoFromAnInstanceThatHasNotSeenIt() throws Exception {
        Path file = dir.resolve("d.jsonl");
        ResultStore first = ResultStore.open(file);
        ResultStore second = ResultStore.open(file); // opened before the row exists
        Row r = experiment("gptq", 4, 17.0);
        Row other = r.with("ppl", 99.0);
        first.append(r);

        ResultStore.DuplicateKeyException e = assertThrows(ResultStore.DuplicateKeyException.class,
                () -> second.append(other));
        assertEquals(r, e.existing());
        assertFalse(first.tryAppend(other));
        assertFalse(second.tryAppend(other));
        assertTrue(second.contains(r.key()));
        assertEquals(1, Files.readString(file).lines().count());
        assertEquals(List.of(r), ResultStore.open(file).rows());
    }

    @Test
    void rerunSkipsDoneExperimentsAndResumesAnInterruptedRun() throws Exception {
        Path file = dir.resolve("resume.jsonl");
        List<Row> grid = new ArrayList<>();
        for (String m : List.of("rtn", "gptq", "awq")) for (int bits : new int[] {3, 4}) grid.add(experiment(m, bits, 10 + bits));
        Map<String, AtomicInteger> runs = new LinkedHashMap<>();
        for (Row r : grid) runs.put(r.key(), new AtomicInteger());

        // First run: dies on the fourth experiment.
        ResultStore run1 = ResultStore.open(file);
        RuntimeException crash = assertThrows(RuntimeException.class, () -> {
            for (int i = 0; i < grid.size(); i++) {
                Row r = grid.get(i);
                int n = i;
                run1.computeIfAbsent(r.key(), () -> {
                    runs.get(r.key()).incrementAndGet();
                    if (n == 3) throw new RuntimeException("killed");
                    return r;
                });
            }
        });
        assertEquals("killed", crash.getMessage());
        assertEquals(3, run1.size());

        // Second run, a new process in spirit: a fresh instance on the same file does only what is missing.
        ResultStore run2 = ResultStore.open(file);
        List<Row> results = new ArrayList<>();
        for (Row r : grid) results.add(run2.computeIfAbsent(r.key(), () -> {
            runs.get(r.key()).incrementAndGet();
            return r;
        }));
        assertEquals(grid, results);
        int[] counts = runs.values().stream().mapToInt(AtomicInteger::get).toArray();
        assertEquals("[1, 1, 1, 2, 1, 1]", Arrays.toString(counts)); // only the crashed one ran twice

        // Third run: nothing left to do.
        ResultStore run3 = ResultStore.open(file);
        for (Row r : grid) assertEquals(r, run3.computeIfAbsent(r.key(), () -> { throw new AssertionError("ran " + r); }));
        assertEquals(grid, run3.rows());
        assertEquals(grid.size(), Files.readString(file).lines().count());
    }

    @Test
    void computeIfAbsentChecksTheReturnedKey() throws Exception {
        ResultStore store = ResultStore.open(dir.resolve("k.jsonl"));
        assertThrows(IllegalArgumentException.class, () -> store.computeIfAbsent("a", () -> Row.of("b")));
        assertEquals(0, store.size());
    }

    @Test
    void tornLastLineIsIgnoredReportedAndTheNextRowStartsOnAFreshLine() throws Exception {
        Path file = dir.resolve("torn.jsonl");
        ResultStore store = ResultStore.open(file);
        Row a = experiment("rtn", 4, 20.0);
        Row b = experiment("gptq", 4, 18.0);
        store.append(a);
        store.append(b);
        long goodBytes = Files.size(file);

        // A writer killed in the middle of its row.
        Files.write(file, "{\"key\":\"c\",\"ppl\":1".getBytes(StandardCharsets.UTF_8), StandardOpenOption.APPEND);

        ResultStore reader = ResultStore.open(file);
        assertEquals(List.of(a, b), reader.rows());
        assertEquals(List.of(a, b), store.rows()); // the instance that was open sees the same
        assertEquals(1, reader.problems().size());
        ResultStore.Problem torn = reader.problems().get(0);
        assertEquals(3, torn.line());
        assertEquals(goodBytes, torn.offset());
        assertTrue(torn.reason().startsWith("torn last line"), torn.reason());
        assertFalse(reader.contains("c"));
        assertEquals(List.of("result store " + file + ": " + torn, "result store " + file + ": " + torn), log.messages(),
                "one warning from each instance that read the torn line");

        Row d = experiment("awq", 4, 17.0);
        reader.append(d);
        List<String> lines = Files.readAllLines(file);
        assertEquals(4, lines.size());
        assertEquals("{\"key\":\"c\",\"ppl\":1", lines.get(2));
        assertTrue(lines.get(3).startsWith("{\"key\":\"" + d.key() + "\""), lines.get(3));

        for (ResultStore s : List.of(reader, store, ResultStore.open(file))) {
            assertEquals(List.of(a, b, d), s.rows());
            assertEquals(1, s.problems().size());
            ResultStore.Problem p = s.problems().get(0);
            assertEquals(3, p.line());
            assertTrue(p.reason().startsWith("not valid JSON"), p.reason());
        }
    }

    @Test
    void corruptLinesAreSkippedAndReported() throws Exception {
        Path file = dir.resolve("corrupt.jsonl");
        Row a = Row.of("a").with("x", 1);
        Files.writeString(file, String.join("\n",
                "{\"key\":\"a\",\"x\":1}",
                "not json at all",
                "",
                "{\"x\":2}",
                "[1,2]",
                "{\"key\":\"b\",\"x\":1} trailing",
                "{\"key\":\"a\",\"x\":3}",
                "{\"key\":\"c\",\"x\":123456789012345678901234567890}",
                "{\"key\":\"d\",\"x\":4}") + "\n");
        ResultStore store = ResultStore.open(file);
        assertEquals(List.of("a", "d"), List.copyOf(store.keys()));
        assertEquals(a, store.get("a").orElseThrow());
        List<Long> lines = store.problems().stream().map(ResultStore.Problem::line).toList();
        assertEquals(List.of(2L, 4L, 5L, 6L, 7L, 8L), lines);
        assertTrue(store.problems().get(1).reason().contains("no string \"key\""));
        assertTrue(store.problems().get(4).reason().contains("already stored"));
        assertTrue(store.problems().get(5).reason().contains("out of range of long"), store.problems().get(5).reason());
        assertEquals(store.problems().stream().map(p -> "result store " + file + ": skipped " + p).toList(), log.messages());
    }

    @Test
    void twoThreadsWithTheirOwnInstancesShareTheFile() throws Exception {
        Path file = dir.resolve("threads.jsonl");
        int perThread = 100;
        List<Thread> threads = new ArrayList<>();
        AtomicInteger wins = new AtomicInteger();
        for (int t = 0; t < 2; t++) {
            int id = t;
            threads.add(Thread.ofPlatform().start(() -> {
                ResultStore s = ResultStore.open(file);
                for (int i = 0; i < perThread; i++) {
                    s.append(Row.of("t" + id + "-" + i).with("i", i));
                    if (s.tryAppend(Row.of("shared-" + i).with("by", id))) wins.incrementAndGet();
                }
            }));
        }
        for (Thread t : threads) t.join();
        ResultStore s = ResultStore.open(file);
        assertEquals(3 * perThread, s.size());
        assertEquals(perThread, wins.get());
        assertEquals(3 * perThread, Files.readAllLines(file).size());
        assertTrue(s.problems().isEmpty());
    }
}
