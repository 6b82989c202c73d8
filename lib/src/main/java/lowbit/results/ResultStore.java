package lowbit.results;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.type.TypeReference;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Supplier;
import tech.tablesaw.api.BooleanColumn;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;
import tech.tablesaw.columns.Column;

/**
 * The append-only store every study writes its experiments into: one {@link Row} per experiment, identified by
 * its key, readable as a Tablesaw {@link Table}.
 *
 * <pre>{@code
 * ResultStore store = ResultStore.open(Path.of("results/store.jsonl"));
 * for (Map<String, Object> params : grid) {
 *     store.computeIfAbsent(Row.key(params), () -> run(params)); // skips what an earlier run already stored
 * }
 * Table t = store.table();
 * }</pre>
 *
 * <h2>Format: JSON Lines</h2>
 * One JSON object per line, UTF-8: {@code {"key":"<key>", <fields in insertion order>}}. Why not Parquet:
 * a Parquet file is written once, footer last; appending means rewriting it (or a new file per row), and no
 * writer (DuckDB included) lets two processes append to one file. Why not CSV: the columns are not known in
 * advance (each method brings its own parameters and metrics), rows nest (a quantization config, a calibration
 * draw), and CSV has no types, no nesting and no agreed escaping. A JSON line is self-describing, nests, keeps
 * numbers, booleans and null apart from text, and appending one is a single {@code write}. JSONL is the
 * source of truth; a columnar copy is derived when wanted: {@link #exportCsv} writes {@link #table()} as CSV,
 * and Parquet can be made from either (DuckDB {@code COPY ... TO 'store.parquet'}, pandas, Arrow). Python's
 * {@code json} reads every line as is; a strict JSON reader may refuse the bare {@code NaN}/{@code Infinity}
 * tokens used for non-finite metrics; the CSV export has none of that problem.
 *
 * <h2>Durability and concurrency</h2>
 * <ul>
 * <li>An append takes an exclusive {@link FileLock} on the whole file (an fcntl lock on Linux, honoured by
 *     every process that locks the file), re-reads what other writers appended since this instance
 *     last looked, refuses the row if its key is now present, writes the whole line including its newline with
 *     one positional write at the end of the file, and forces it to disk before releasing the lock. A row that
 *     {@code append} returned from is on disk; two processes racing on one key store it once, and the loser is
 *     told ({@link #tryAppend} returns false, {@link #append} throws {@link DuplicateKeyException}).
 * <li>Reads take a shared lock, so they never see a line being written. The file is read incrementally: each
 *     instance remembers how many bytes of complete lines it has parsed and only reads what was added since.
 * <li>A writer killed mid-write leaves a torn last line (no newline). Readers ignore it and report it
 *     ({@link #problems()}, and a warning through {@link System.Logger}); the next append starts its row on a
 *     fresh line, which turns the fragment into a complete but unparsable line that every reader then skips
 *     and reports. The store never truncates or rewrites: what is on disk stays there.
 * <li>Within one JVM, every instance on the same file shares one {@link ReentrantLock}, taken before the file
 *     lock: file locks are held per process (a second lock from the same JVM would throw
 *     {@link java.nio.channels.OverlappingFileLockException}), and closing any channel on a file can drop the
 *     process's fcntl locks on it. So do not open the store file by other means while a study writes it.
 * <li>A key stored twice (possible only when something bypasses this class) is reported; the first row wins.
 * </ul>
 *
 * <h2>Table view</h2>
 * {@link #table()} has a {@code key} column and one column per flattened field: nested maps are flattened with
 * dots ({@code quant.grid.bits}); lists stay whole and appear as their JSON text. Columns come in order of first
 * appearance. A column whose values are all integral numbers is a {@link LongColumn}, all numbers (some not
 * integral) a {@link DoubleColumn}, all booleans a {@link BooleanColumn}; anything else, mixed types included,
 * is a {@link StringColumn} of strings as they are and other values as JSON text. A row without the field has a
 * missing value. Column names must differ other than in case (a Tablesaw rule). Tablesaw's missing double is
 * NaN, so in a DoubleColumn a stored NaN reads as missing; {@link #rows()} keeps the difference.
 *
 * <p>Instances are thread-safe.
 */
public final class ResultStore {
    /** The JSON member that holds the row key; no field may be called this. */
    public static final String KEY_FIELD = "key";

    private static final System.Logger LOG = System.getLogger(ResultStore.class.getName());
    private static final ConcurrentHashMap<Path, ReentrantLock> JVM_LOCKS = new ConcurrentHashMap<>();
    private static final TypeReference<LinkedHashMap<String, Object>> OBJECT = new TypeReference<>() {};

    /** A line the store could not use: 1-based line number, byte offset where it starts, why, and its start. */
    public record Problem(long line, long offset, String reason, String excerpt) {
        @Override
        public String toString() {
            return "line " + line + " (byte " + offset + "): " + reason + ": " + excerpt;
        }
    }

    /** Thrown by {@link #append} when the key is already in the store, possibly written by another process. */
    public static final class DuplicateKeyException extends IllegalStateException {
        private final transient Row existing;

        DuplicateKeyException(Path file, Row existing) {
            super("key " + existing.key() + " is already in " + file);
            this.existing = existing;
        }

        /** The row stored first under this key. */
        public Row existing() {
            return existing;
        }
    }

    private final Path file;
    private final ReentrantLock jvmLock;
    private final LinkedHashMap<String, Row> index = new LinkedHashMap<>();
    private final List<Problem> problems = new ArrayList<>();
    private Problem tornTail;
    private long parsedBytes; // length of the prefix of complete lines already parsed
    private long parsedLines;

    private ResultStore(Path file) {
        this.file = file;
        this.jvmLock = JVM_LOCKS.computeIfAbsent(file, f -> new ReentrantLock());
    }

    /** Opens the store at {@code file}, creating it and its parent directories if needed, and reads it. */
    public static ResultStore open(Path file) {
        Objects.requireNonNull(file, "file");
        try {
            if (!Files.exists(file)) { // an existing store may sit in a read-only directory: only read it
                Path parent = file.toAbsolutePath().getParent();
                if (parent != null) Files.createDirectories(parent);
                try {
                    Files.createFile(file);
                } catch (java.nio.file.FileAlreadyExistsException e) {
                    // another process created it a moment ago
                }
            }
            if (!Files.isRegularFile(file)) throw new IOException("not a regular file");
            ResultStore store = new ResultStore(file.toRealPath());
            store.refresh();
            return store;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open result store " + file + ": " + e.getMessage(), e);
        }
    }

    public Path file() {
        return file;
    }

    /** Whether an experiment with this key is stored (by any process, as of now). */
    public boolean contains(String key) {
        return get(key).isPresent();
    }

    /** The row stored under this key, as of now. */
    public Optional<Row> get(String key) {
        Objects.requireNonNull(key, "key");
        return locked(false, () -> Optional.ofNullable(index.get(key)));
    }

    /** Every stored row, in the order they were appended. */
    public List<Row> rows() {
        return locked(false, () -> List.copyOf(index.values()));
    }

    /** Every stored key, in the order they were appended. */
    public Set<String> keys() {
        return locked(false, () -> Collections.unmodifiableSet(new LinkedHashSet<>(index.keySet())));
    }

    public int size() {
        return locked(false, index::size);
    }

    /**
     * Lines that were skipped: unparsable lines, lines without a string "key", repeated keys, and a torn last
     * line (no newline yet) if there is one now.
     */
    public List<Problem> problems() {
        return locked(false, () -> {
            List<Problem> all = new ArrayList<>(problems);
            if (tornTail != null) all.add(tornTail);
            return List.copyOf(all);
        });
    }

    /**
     * Appends {@code row} unless its key is already stored. Returns true if this call stored it, false if the key
     * was there, perhaps written a moment ago by another process (the check is repeated under the file lock).
     * When this returns true the line is on disk.
     */
    public boolean tryAppend(Row row) {
        Objects.requireNonNull(row, "row");
        byte[] line = line(row);
        return locked(true, () -> {
            if (index.containsKey(row.key())) return false;
            write(line);
            return true;
        });
    }

    /** Appends {@code row}; throws {@link DuplicateKeyException} if its key is already stored. */
    public void append(Row row) {
        if (!tryAppend(row)) throw new DuplicateKeyException(file, get(row.key()).orElseThrow());
    }

    /**
     * The stored row for {@code key}; if there is none, runs {@code experiment} (outside any lock, so other
     * processes carry on), appends its row and returns it. If another process stored the key while the
     * experiment ran, its row is kept and returned and ours is dropped. This is how a re-run study skips what is
     * done and resumes where an interrupted run stopped.
     */
    public Row computeIfAbsent(String key, Supplier<Row> experiment) {
        Objects.requireNonNull(experiment, "experiment");
        Optional<Row> done = get(key);
        if (done.isPresent()) return done.get();
        Row row = Objects.requireNonNull(experiment.get(), "experiment returned null");
        if (!row.key().equals(key))
            throw new IllegalArgumentException("experiment for key " + key + " returned a row with key " + row.key());
        if (tryAppend(row)) return row;
        return get(key).orElseThrow();
    }

    /** The rows as a table; see the class comment for columns and types. */
    public Table table() {
        return table(rows(), file.getFileName().toString());
    }

    /** Writes {@link #table()} to {@code out} as CSV (header row; missing values empty), creating parent dirs. */
    public void exportCsv(Path out) {
        try {
            Path parent = out.toAbsolutePath().getParent();
            if (parent != null) Files.createDirectories(parent);
            table().write().csv(out.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + out + ": " + e.getMessage(), e);
        }
    }

    /** {@code rows} as a table named {@code name}, columns and types as described in the class comment. */
    public static Table table(List<Row> rows, String name) {
        List<Map<String, Object>> flat = new ArrayList<>(rows.size());
        LinkedHashSet<String> names = new LinkedHashSet<>();
        names.add(KEY_FIELD);
        for (Row r : rows) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put(KEY_FIELD, r.key());
            flatten("", r.fields(), f, r.key());
            names.addAll(f.keySet());
            flat.add(f);
        }
        Map<String, String> lower = new LinkedHashMap<>();
        for (String col : names) {
            // Tablesaw compares column names ignoring case; say which fields collide rather than let it fail.
            String clash = lower.putIfAbsent(col.toLowerCase(java.util.Locale.ROOT), col);
            if (clash != null)
                throw new IllegalStateException("columns \"" + clash + "\" and \"" + col
                        + "\" differ only in case, which a Tablesaw table cannot hold; rename one of the fields");
        }
        Table t = Table.create(name);
        for (String col : names) t.addColumns(column(col, flat));
        return t;
    }

    private static void flatten(String prefix, Map<String, Object> m, Map<String, Object> out, String key) {
        for (Map.Entry<String, Object> e : m.entrySet()) {
            String name = prefix + e.getKey();
            if (e.getValue() instanceof Map<?, ?> sub) {
                @SuppressWarnings("unchecked")
                Map<String, Object> typed = (Map<String, Object>) sub;
                flatten(name + ".", typed, out, key);
            } else if (out.containsKey(name)) {
                throw new IllegalStateException("row " + key + ": two fields flatten to the column \"" + name
                        + "\" (a field name with dots and a nested map)");
            } else {
                out.put(name, e.getValue());
            }
        }
    }

    private static Column<?> column(String name, List<Map<String, Object>> flat) {
        boolean allLong = true, allNumber = true, allBoolean = true;
        for (Map<String, Object> f : flat) {
            Object v = f.get(name);
            if (v == null) continue;
            allLong &= v instanceof Long;
            allNumber &= v instanceof Number;
            allBoolean &= v instanceof Boolean;
        }
        // A column with no non-null value satisfies all three; text is the least surprising type for it.
        if (allLong && allBoolean) {
            allLong = allNumber = allBoolean = false;
        }
        if (allLong) {
            LongColumn c = LongColumn.create(name);
            for (Map<String, Object> f : flat) {
                if (f.get(name) instanceof Long v) c.append(v);
                else c.appendMissing();
            }
            return c;
        }
        if (allNumber) {
            DoubleColumn c = DoubleColumn.create(name);
            for (Map<String, Object> f : flat) {
                if (f.get(name) instanceof Number v) c.append(v.doubleValue());
                else c.appendMissing();
            }
            return c;
        }
        if (allBoolean) {
            BooleanColumn c = BooleanColumn.create(name);
            for (Map<String, Object> f : flat) {
                if (f.get(name) instanceof Boolean v) c.append(v);
                else c.appendMissing();
            }
            return c;
        }
        StringColumn c = StringColumn.create(name);
        for (Map<String, Object> f : flat) {
            Object v = f.get(name);
            if (v == null) c.appendMissing();
            else c.append(v instanceof String s ? s : Json.write(Json.LINE, v));
        }
        return c;
    }

    // ---- file access; every method below runs with jvmLock and a file lock held ----

    private interface Action<T> {
        T run() throws IOException;
    }

    private FileChannel channel;

    /** Runs {@code action} holding the JVM lock and a shared (read) or exclusive (write) file lock, fresh index. */
    private <T> T locked(boolean exclusive, Action<T> action) {
        jvmLock.lock();
        try (FileChannel ch = exclusive
                ? FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE)
                : FileChannel.open(file, StandardOpenOption.READ);
             FileLock ignored = ch.lock(0, Long.MAX_VALUE, !exclusive)) {
            channel = ch;
            readNew();
            return action.run();
        } catch (IOException e) {
            throw new UncheckedIOException("result store " + file + ": " + e.getMessage(), e);
        } finally {
            channel = null;
            jvmLock.unlock();
        }
    }

    private void refresh() {
        locked(false, () -> null);
    }

    /** Parses the complete lines appended since the last look; leaves a torn tail for later. */
    private void readNew() throws IOException {
        long size = channel.size();
        if (size < parsedBytes) {
            // Replaced or truncated by someone else: start over rather than index stale rows.
            LOG.log(System.Logger.Level.WARNING, "result store {0} shrank from {1} to {2} bytes; reloading",
                    file, parsedBytes, size);
            index.clear();
            problems.clear();
            parsedBytes = 0;
            parsedLines = 0;
        }
        Problem previousTail = tornTail;
        tornTail = null;
        if (size == parsedBytes) return;
        long n = size - parsedBytes;
        if (n > Integer.MAX_VALUE - 16) throw new IOException("more than 2 GB appended since the last read");
        ByteBuffer buf = ByteBuffer.allocate((int) n);
        long pos = parsedBytes;
        while (buf.hasRemaining()) {
            int r = channel.read(buf, pos);
            if (r < 0) break;
            pos += r;
        }
        byte[] bytes = buf.array();
        int len = buf.position();
        int start = 0;
        for (int i = 0; i < len; i++) {
            if (bytes[i] != '\n') continue;
            parsedLines++;
            parseLine(new String(bytes, start, i - start, StandardCharsets.UTF_8), parsedLines, parsedBytes + start);
            start = i + 1;
        }
        if (start < len) {
            String tail = new String(bytes, start, len - start, StandardCharsets.UTF_8);
            tornTail = new Problem(parsedLines + 1, parsedBytes + start,
                    "torn last line (no newline; a writer died mid-row?), ignored", excerpt(tail));
            // Every read sees the tail again until the next append; say so once.
            if (!tornTail.equals(previousTail)) LOG.log(System.Logger.Level.WARNING, "result store {0}: {1}", file, tornTail);
        }
        parsedBytes += start;
    }

    private void parseLine(String text, long lineNo, long offset) {
        if (text.isBlank()) return;
        String reason;
        try {
            LinkedHashMap<String, Object> obj = Json.LINE.readValue(text, OBJECT);
            if (obj == null) {
                reason = "not a JSON object";
            } else if (!(obj.remove(KEY_FIELD) instanceof String key) || key.isBlank()) {
                reason = "no string \"" + KEY_FIELD + "\"";
            } else if (index.containsKey(key)) {
                reason = "key " + key + " already stored on an earlier line; kept the first";
            } else {
                index.put(key, new Row(key, obj));
                return;
            }
        } catch (JsonProcessingException e) {
            reason = "not valid JSON (" + shortMessage(e) + ")";
        } catch (IllegalArgumentException e) {
            reason = "unusable value (" + e.getMessage() + ")";
        }
        Problem p = new Problem(lineNo, offset, reason, excerpt(text));
        problems.add(p);
        LOG.log(System.Logger.Level.WARNING, "result store {0}: skipped {1}", file, p);
    }

    /** Jackson's message without the source-location boilerplate, which says nothing for a one-line document. */
    private static String shortMessage(JsonProcessingException e) {
        String m = String.valueOf(e.getOriginalMessage());
        int cut = m.indexOf(" (start marker at");
        if (cut >= 0) m = m.substring(0, cut);
        cut = m.indexOf('\n');
        return cut >= 0 ? m.substring(0, cut) : m;
    }

    private static String excerpt(String s) {
        return s.length() <= 80 ? s : s.substring(0, 77) + "...";
    }

    private static byte[] line(Row row) {
        Map<String, Object> obj = new LinkedHashMap<>();
        obj.put(KEY_FIELD, row.key());
        obj.putAll(row.fields());
        return (Json.write(Json.LINE, obj) + "\n").getBytes(StandardCharsets.UTF_8);
    }

    /** One write of the whole line at the end of the file, on a fresh line, forced to disk; then indexed. */
    private void write(byte[] line) throws IOException {
        long end = channel.size();
        boolean freshLine = end > 0 && lastByte(end) != '\n';
        ByteBuffer buf = ByteBuffer.allocate(line.length + (freshLine ? 1 : 0));
        if (freshLine) buf.put((byte) '\n');
        buf.put(line).flip();
        long pos = end;
        // FileChannel writes a regular file completely in one call; the loop only guards the contract.
        while (buf.hasRemaining()) pos += channel.write(buf, pos);
        channel.force(false);
        readNew();
    }

    private byte lastByte(long size) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(1);
        channel.read(b, size - 1);
        return b.get(0);
    }
}
