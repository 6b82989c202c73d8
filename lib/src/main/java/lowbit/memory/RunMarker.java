package lowbit.memory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.Optional;

/**
 * A file that says a resumable job is running: written with the process id when it starts, removed when it
 * ends. The kernel's OOM killer and kill -9 leave it behind, so a marker whose process is gone means the
 * previous run was killed, and the next start can say that it resumes. A marker whose process is alive is
 * another run writing the same files, which would interleave: refused.
 */
public final class RunMarker implements AutoCloseable {
    private final Path file;
    private final String previousRunKilled;

    private RunMarker(Path file, String previousRunKilled) {
        this.file = file;
        this.previousRunKilled = previousRunKilled;
    }

    /**
     * Marks {@code job} (e.g. "study into results") as running in {@code file}; {@code resumes} says what a
     * re-run keeps (e.g. "the rows in results/store.jsonl are kept").
     */
    public static RunMarker start(Path file, String job, String resumes) {
        String killed = null;
        if (Files.exists(file)) {
            long pid = -1;
            String started = "?";
            try {
                for (String line : Files.readAllLines(file)) {
                    if (line.startsWith("pid=")) pid = Long.parseLong(line.substring(4).trim());
                    if (line.startsWith("started=")) started = line.substring(8).trim();
                }
            } catch (IOException | NumberFormatException e) {
                // an unreadable marker was torn by the kill itself: the run it marked is gone all the same
            }
            long self = ProcessHandle.current().pid();
            Optional<ProcessHandle> other = pid == self ? Optional.empty() : ProcessHandle.of(pid).filter(ProcessHandle::isAlive);
            if (other.isPresent() && other.get().info().command().map(c -> c.endsWith("java")).orElse(true))
                throw new IllegalStateException("a " + job + " is already running (pid " + pid + ", started " + started
                        + "); two would write the same files: wait for it, or delete " + file + " if that process is not lowbit");
            killed = "the previous " + job + " (pid " + pid + ", started " + started + ") did not finish: it was killed "
                    + "(out of memory? kill -9?); this run resumes it: " + resumes;
        }
        write(file, "pid=" + ProcessHandle.current().pid() + "\nstarted=" + Instant.now() + "\njob=" + job + "\n");
        return new RunMarker(file, killed);
    }

    /** The line to show when the previous run of this job was killed, or empty. */
    public Optional<String> previousRunKilled() {
        return Optional.ofNullable(previousRunKilled);
    }

    private static void write(Path file, String text) {
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            // named by this process, so no other writer shares it; readable like every other file lowbit writes
            Path tmp = dir.resolve(file.getFileName() + "." + ProcessHandle.current().pid() + ".tmp");
            Files.writeString(tmp, text);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot write the run marker: " + e.getMessage(), e);
        }
    }

    /** The job ended (done, or stopped by an error it reported): nothing to resume from a kill. */
    @Override
    public void close() {
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException(file + ": cannot remove the run marker: " + e.getMessage(), e);
        }
    }
}
