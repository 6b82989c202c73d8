package lowbit.io;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Writes an output file or directory so that an interrupted or failed run never leaves something that looks
 * complete: everything goes into a hidden sibling ({@code .NAME.partial-PID-START-NANOS}) that is renamed into
 * place only when the writer returns. The sibling is removed on failure and on a kill (SIGTERM, Ctrl-C), and,
 * after a kill -9, by the next write into the same parent (the writer's pid and start time are in its name).
 */
public final class AtomicOutput {
    /** Writes the output at {@code partial}, a path that does not exist yet (a directory writer creates it). */
    @FunctionalInterface
    public interface Writer {
        void write(Path partial) throws IOException;
    }

    private static final String PARTIAL = ".partial-";
    private static final Pattern WRITER = Pattern.compile("(\\d+)-(\\d+)-\\d+");

    private AtomicOutput() {}

    /** Writes the directory {@code dir} (absent or empty, see {@link #checkDirectory}); {@code writer} gets an existing empty directory. */
    public static Path directory(Path dir, Writer writer) {
        Path target = checkDirectory(dir);
        return write(target, partial -> {
            Files.createDirectory(partial);
            writer.write(partial);
        });
    }

    /** Writes the file {@code file}, which must not exist (see {@link #checkFile}). */
    public static Path file(Path file, Writer writer) {
        return write(checkFile(file), writer);
    }

    private static Path write(Path target, Writer writer) {
        Path parent = target.getParent();
        Path partial;
        try {
            Files.createDirectories(parent);
            removeStalePartials(parent);
            partial = parent.resolve(partialName(target));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write next to " + target, e);
        }
        Thread cleanup = new Thread(() -> delete(partial), "lowbit-partial-cleanup");
        Runtime.getRuntime().addShutdownHook(cleanup);
        try {
            writer.write(partial);
            if (Files.isDirectory(target)) Files.delete(target);   // checked empty before
            Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE);
            return target;
        } catch (IOException e) {
            delete(partial);
            throw new UncheckedIOException("writing " + target, e);
        } catch (RuntimeException | Error e) {
            delete(partial);
            throw e;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(cleanup);
            } catch (IllegalStateException shuttingDown) {
                // the hook is running or will run: it deletes what is left of the partial output
            }
        }
    }

    /**
     * The checks of an output directory before any work: refuses one that exists and is not an empty directory,
     * or whose nearest existing ancestor is not a writable directory. Returns the directory as an absolute path.
     */
    public static Path checkDirectory(Path dir) {
        dir = dir.toAbsolutePath().normalize();
        if (Files.exists(dir)) {
            if (!Files.isDirectory(dir))
                throw new IllegalArgumentException("--out " + dir + " exists and is not a directory");
            try (Stream<Path> s = Files.list(dir)) {
                if (s.findAny().isPresent())
                    throw new IllegalArgumentException("--out " + dir + " exists and is not empty; choose a new directory or remove it");
            } catch (IOException e) {
                throw new UncheckedIOException("--out " + dir + " cannot be listed", e);
            }
        }
        checkWritableAncestor(dir);
        return dir;
    }

    /** The checks of an output file before any work: it must not exist, and its nearest existing ancestor must be a writable directory. */
    public static Path checkFile(Path file) {
        file = file.toAbsolutePath().normalize();
        if (Files.exists(file))
            throw new IllegalArgumentException("--out " + file + " exists; choose a new file name or remove it");
        checkWritableAncestor(file);
        return file;
    }

    private static void checkWritableAncestor(Path out) {
        Path ancestor = out.getParent();
        while (ancestor != null && !Files.exists(ancestor)) ancestor = ancestor.getParent();
        if (ancestor == null || !Files.isDirectory(ancestor))
            throw new IllegalArgumentException("--out " + out + ": " + (ancestor == null ? "no existing parent directory"
                    : ancestor + " is not a directory"));
        if (!Files.isWritable(ancestor))
            throw new IllegalArgumentException("--out " + out + ": the directory " + ancestor + " is not writable");
    }

    /** ".NAME.partial-PID-START-NANOS": the writing process (pid and start time, in ms) is in the name, so a stale one is known. */
    private static String partialName(Path target) {
        ProcessHandle self = ProcessHandle.current();
        long start = self.info().startInstant().map(Instant::toEpochMilli).orElse(0L);
        return "." + target.getFileName() + PARTIAL + self.pid() + "-" + start + "-" + System.nanoTime();
    }

    /**
     * Deletes the partial outputs in {@code parent} that no running process is writing: their writer (pid and
     * start time in the name, so a reused pid does not count) is gone. One without a writer in its name (an older
     * lowbit's) is stale a day after it was last modified.
     */
    public static void removeStalePartials(Path parent) throws IOException {
        List<Path> stale;
        try (Stream<Path> s = Files.list(parent)) {
            stale = s.filter(p -> {
                String n = p.getFileName().toString();
                return n.startsWith(".") && n.contains(PARTIAL) && isStale(p);
            }).toList();
        }
        stale.forEach(AtomicOutput::delete);
    }

    private static boolean isStale(Path partial) {
        String n = partial.getFileName().toString();
        Matcher m = WRITER.matcher(n.substring(n.lastIndexOf(PARTIAL) + PARTIAL.length()));
        if (!m.matches()) {
            try {
                return Files.getLastModifiedTime(partial).toInstant().isBefore(Instant.now().minus(Duration.ofDays(1)));
            } catch (IOException e) {
                return false;
            }
        }
        long pid = Long.parseLong(m.group(1)), start = Long.parseLong(m.group(2));
        return ProcessHandle.of(pid).filter(ProcessHandle::isAlive)
                .filter(p -> start == 0 || p.info().startInstant().map(Instant::toEpochMilli).orElse(start) == start)
                .isEmpty();
    }

    /** Deletes a file or a directory tree, best effort: a leftover hidden .partial output is harmless and named as such. */
    public static void delete(Path p) {
        if (!Files.exists(p)) return;
        try (Stream<Path> s = Files.walk(p)) {
            s.sorted(Comparator.reverseOrder()).forEach(f -> f.toFile().delete());
        } catch (IOException ignored) {
            // best effort, as above
        }
    }
}
