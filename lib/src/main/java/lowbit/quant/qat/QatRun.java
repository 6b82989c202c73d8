package lowbit.quant.qat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import lowbit.io.AtomicOutput;
import lowbit.io.FormatException;
import lowbit.memory.RunMarker;
import lowbit.train.AdamW;
import lowbit.train.Parameter;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.Table;

/**
 * A QAT run directory: {@code run.json} (what the run is: model, spec, options, data; a run with other arguments is
 * refused), {@code loss.csv} (one row per finished step: step, tokens, loss, lr, seconds; appended as it goes),
 * {@code state-NNNNNNNN.bin} (the latest checkpoint: step, tokens, seconds, every trainable parameter by name, AdamW's
 * moments; written whole under a hidden name and renamed, the previous one removed after) and a run marker while it
 * runs. A restarted run loads the latest checkpoint and cuts the loss log back to it, so the steps after it are redone
 * exactly as they first ran: the data position is the step, the windows are fixed by the draw.
 */
final class QatRun implements AutoCloseable {
    static final String IDENTITY = "run.json", LOG = "loss.csv", MARKER = "qat.running";
    private static final String HEADER = "step,tokens,loss,lr,seconds";
    private static final String MAGIC = "lowbit-qat-state";
    private static final int VERSION = 1;
    private static final Pattern STATE = Pattern.compile("state-(\\d{8})\\.bin");

    /** Where training stands: steps done, tokens seen, seconds spent over every session. */
    record Position(int step, long tokens, double seconds) {}

    private final Path dir;
    private final RunMarker marker;
    private Position position = new Position(0, 0, 0);

    private QatRun(Path dir, RunMarker marker) {
        this.dir = dir;
        this.marker = marker;
    }

    /** Opens (or starts) the run directory; refuses one made by a run with other arguments, naming the first difference. */
    static QatRun open(Path dir, Map<String, Object> identity) {
        dir = dir.toAbsolutePath().normalize();
        ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        Path id = dir.resolve(IDENTITY);
        JsonNode want = json.valueToTree(identity);
        try {
            if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IllegalArgumentException("--run-dir " + dir + " is not a directory");
            Files.createDirectories(dir);
            if (Files.exists(id)) {
                JsonNode have;
                try {
                    have = json.readTree(id.toFile());
                } catch (IOException e) {
                    throw new FormatException(id, "not a QAT run description: " + e.getMessage(), e);
                }
                checkSame(dir, have, want);
            } else {
                try (Stream<Path> s = Files.list(dir)) {
                    if (s.findAny().isPresent())
                        throw new IllegalArgumentException("--run-dir " + dir + " is not empty and has no " + IDENTITY + ": not a QAT run directory");
                }
                AtomicOutput.file(id, tmp -> json.writeValue(tmp.toFile(), want));
            }
        } catch (IOException e) {
            throw new UncheckedIOException("--run-dir " + dir + ": " + e.getMessage(), e);
        }
        RunMarker marker = RunMarker.start(dir.resolve(MARKER), "qat run in " + dir, "the steps up to its last checkpoint are kept");
        marker.previousRunKilled().ifPresent(m -> System.err.println("lowbit: " + m));
        return new QatRun(dir, marker);
    }

    private static void checkSame(Path dir, JsonNode have, JsonNode want) {
        for (Iterator<String> it = want.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            String a = have.path(k).asText(null), b = want.get(k).asText();
            if (!b.equals(a))
                throw new IllegalArgumentException("--run-dir " + dir + " belongs to another QAT run: its " + k + " is " + a + ", this run's is " + b
                        + "; give the same arguments to resume it, or a new --run-dir");
        }
        for (Iterator<String> it = have.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!want.has(k))
                throw new IllegalArgumentException("--run-dir " + dir + " belongs to another QAT run (it records " + k + ", this run has none)");
        }
    }

    Path dir() {
        return dir;
    }

    Position position() {
        return position;
    }

    /**
     * Loads the latest checkpoint into {@code params} and {@code adam} and cuts the loss log back to it; with none,
     * starts a fresh log. Returns where training stands.
     */
    Position resume(List<Parameter> params, AdamW adam) {
        Optional<Path> latest = latestState();
        if (latest.isEmpty()) {
            writeLog(List.of());
            position = new Position(0, 0, 0);
            return position;
        }
        Path file = latest.get();
        try (DataInputStream in = new DataInputStream(new BufferedInputStream(Files.newInputStream(file), 1 << 20))) {
            if (!in.readUTF().equals(MAGIC) || in.readInt() != VERSION)
                throw new FormatException(file, "not a lowbit QAT checkpoint of version " + VERSION);
            int step = in.readInt();
            long tokens = in.readLong();
            double seconds = in.readDouble();
            int count = in.readInt();
            if (count != params.size())
                throw new FormatException(file, "holds " + count + " trainable parameters, this run has " + params.size());
            for (Parameter p : params) {
                String name = in.readUTF();
                int n = in.readInt();
                if (!name.equals(p.name()) || n != p.size())
                    throw new FormatException(file, "holds " + name + " [" + n + "] where this run has " + p.name() + " [" + p.size() + "]");
                readFloats(in, p.value());
            }
            adam.read(in);
            position = new Position(step, tokens, seconds);
        } catch (IOException e) {
            throw new FormatException(file, "cannot read the QAT checkpoint: " + e.getMessage(), e);
        }
        List<Qat.LogRow> kept = new ArrayList<>();
        for (Qat.LogRow r : readLog()) if (r.step() <= position.step()) kept.add(r);
        writeLog(kept);
        return position;
    }

    private Optional<Path> latestState() {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> STATE.matcher(p.getFileName().toString()).matches()).max(Path::compareTo);
        } catch (IOException e) {
            throw new UncheckedIOException("--run-dir " + dir + " cannot be listed", e);
        }
    }

    /** Writes the checkpoint after step {@code row.step()} and removes the one before it. */
    void checkpoint(Qat.LogRow row, List<Parameter> params, AdamW adam) {
        Path file = dir.resolve(String.format(Locale.ROOT, "state-%08d.bin", row.step()));
        Optional<Path> previous = latestState();
        AtomicOutput.file(file, tmp -> {
            try (DataOutputStream out = new DataOutputStream(new BufferedOutputStream(Files.newOutputStream(tmp), 1 << 20))) {
                out.writeUTF(MAGIC);
                out.writeInt(VERSION);
                out.writeInt(row.step());
                out.writeLong(row.tokens());
                out.writeDouble(row.seconds());
                out.writeInt(params.size());
                for (Parameter p : params) {
                    out.writeUTF(p.name());
                    out.writeInt(p.size());
                    writeFloats(out, p.value());
                }
                adam.write(out);
            }
        });
        position = new Position(row.step(), row.tokens(), row.seconds());
        previous.filter(p -> !p.equals(file)).ifPresent(AtomicOutput::delete);
    }

    private static void writeFloats(DataOutputStream out, float[] v) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(4 << 16).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < v.length; ) {
            b.clear();
            int n = Math.min(1 << 16, v.length - i);
            b.asFloatBuffer().put(v, i, n);
            out.write(b.array(), 0, 4 * n);
            i += n;
        }
    }

    private static void readFloats(DataInputStream in, float[] v) throws IOException {
        byte[] bytes = new byte[4 << 16];
        ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < v.length; ) {
            int n = Math.min(1 << 16, v.length - i);
            in.readFully(bytes, 0, 4 * n);
            b.clear();
            b.asFloatBuffer().get(v, i, n);
            i += n;
        }
    }

    /** Appends one finished step to the loss log. */
    void log(Qat.LogRow r) {
        try {
            Files.writeString(dir.resolve(LOG), line(r) + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new UncheckedIOException(dir.resolve(LOG) + ": cannot append: " + e.getMessage(), e);
        }
    }

    private static String line(Qat.LogRow r) {
        // shortest repr of each double, so the log reads back exactly
        return r.step() + "," + r.tokens() + "," + r.loss() + "," + r.lr() + "," + r.seconds();
    }

    private void writeLog(List<Qat.LogRow> rows) {
        StringBuilder sb = new StringBuilder(HEADER).append('\n');
        for (Qat.LogRow r : rows) sb.append(line(r)).append('\n');
        Path log = dir.resolve(LOG), tmp = dir.resolve("." + LOG + ".tmp");
        try {
            Files.writeString(tmp, sb);
            Files.move(tmp, log, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(log + ": cannot write: " + e.getMessage(), e);
        }
    }

    /** The loss log's rows; a last line cut short by a kill is ignored (its step is redone). */
    List<Qat.LogRow> readLog() {
        Path log = dir.resolve(LOG);
        List<Qat.LogRow> rows = new ArrayList<>();
        if (!Files.exists(log)) return rows;
        try {
            List<String> lines = Files.readAllLines(log);
            for (int i = 1; i < lines.size(); i++) {
                String[] f = lines.get(i).split(",");
                if (f.length != 5) continue;
                try {
                    rows.add(new Qat.LogRow(Integer.parseInt(f[0]), Long.parseLong(f[1]), Double.parseDouble(f[2]), Double.parseDouble(f[3]),
                            Double.parseDouble(f[4])));
                } catch (NumberFormatException torn) {
                    // a line cut short by a kill
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(log + ": cannot read: " + e.getMessage(), e);
        }
        return rows;
    }

    static Table table(List<Qat.LogRow> log) {
        return Table.create("qat loss",
                IntColumn.create("step", log.stream().mapToInt(Qat.LogRow::step).toArray()),
                LongColumn.create("tokens", log.stream().mapToLong(Qat.LogRow::tokens).toArray()),
                DoubleColumn.create("loss", log.stream().mapToDouble(Qat.LogRow::loss).toArray()),
                DoubleColumn.create("lr", log.stream().mapToDouble(Qat.LogRow::lr).toArray()),
                DoubleColumn.create("seconds", log.stream().mapToDouble(Qat.LogRow::seconds).toArray()));
    }

    @Override
    public void close() {
        marker.close();
    }

    /** Matches a checkpoint file name (for tests). */
    static boolean isState(Path p) {
        Matcher m = STATE.matcher(p.getFileName().toString());
        return m.matches();
    }
}
