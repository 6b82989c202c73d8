package lowbit.checkpoint.quantized;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.TinyHf;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.io.AtomicOutput;
import lowbit.quant.QuantizedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where and how the quantized directory is written: the --out check, partial directories, permissions. */
class QuantizedModelFilesTest {
    @TempDir Path tmp;

    private Path write(Path out) throws Exception {
        Path src = TinyHf.write(tmp.resolve("src"), TinyHf.config(1, ""), 1);
        try (Checkpoint c = Checkpoints.open(src); Transformer m = Checkpoints.load(c, 1)) {
            return QuantizedModelFiles.write(out, c, src.toString(), m, QuantizedModel.rtn(m, QuantConfig.group(4, 4)), Map.of());
        }
    }

    private static String refused(Path out) {
        return assertThrows(IllegalArgumentException.class, () -> AtomicOutput.checkDirectory(out)).getMessage();
    }

    @Test
    void checkOutRefusesWhatWriteCouldNotFill() throws Exception {
        Path full = Files.createDirectories(tmp.resolve("full"));
        Files.writeString(full.resolve("x"), "x");
        assertEquals("--out " + full + " exists and is not empty; choose a new directory or remove it", refused(full));
        Path file = Files.writeString(tmp.resolve("file"), "x");
        assertEquals("--out " + file + " exists and is not a directory", refused(file));
        assertEquals("--out " + file.resolve("a/b") + ": " + file + " is not a directory", refused(file.resolve("a/b")));
        // missing parents are created by write: the nearest existing ancestor is what must be writable
        assertEquals(tmp.resolve("new/deeper/q"), AtomicOutput.checkDirectory(tmp.resolve("new/deeper/q")));
        assertEquals(tmp.resolve("empty"), AtomicOutput.checkDirectory(Files.createDirectory(tmp.resolve("empty"))));
    }

    @Test
    void checkOutRefusesADirectoryItCannotWriteIn() throws Exception {
        assumeFalse("root".equals(System.getProperty("user.name")), "root writes anywhere");
        Path locked = Files.createDirectory(tmp.resolve("locked"));
        Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("r-xr-xr-x"));
        try {
            assertEquals("--out " + locked.resolve("q") + ": the directory " + locked + " is not writable", refused(locked.resolve("q")));
        } finally {
            Files.setPosixFilePermissions(locked, PosixFilePermissions.fromString("rwxr-xr-x"));
        }
    }

    @Test
    void theOutputHasTheModesOfAnyNewDirectoryAndFile() throws Exception {
        assumeTrue(tmp.getFileSystem().supportedFileAttributeViews().contains("posix"));
        Path out = write(tmp.resolve("out/q"));
        // before: 0700 from the temporary directory; now what the umask gives any new directory or file here
        Set<PosixFilePermission> dirMode = Files.getPosixFilePermissions(Files.createDirectory(tmp.resolve("out/plain")));
        Set<PosixFilePermission> fileMode = Files.getPosixFilePermissions(Files.writeString(tmp.resolve("out/plain.txt"), "x"));
        assertEquals(dirMode, Files.getPosixFilePermissions(out));
        for (String f : List.of(QuantizedModelFiles.MANIFEST, QuantizedModelFiles.WEIGHTS))
            assertEquals(fileMode, Files.getPosixFilePermissions(out.resolve(f)), f);
    }

    @Test
    void aKilledWriterRemovesItsPartialDirectory() throws Exception {
        Path src = TinyHf.write(tmp.resolve("src"), TinyHf.config(1, ""), 1);
        Path parent = Files.createDirectories(tmp.resolve("models"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx128m", "--add-modules",
                "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), PartialWriterMain.class.getName(),
                src.toString(), parent.resolve("q").toString()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        try (var out = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
            assertEquals("writing", out.readLine());
            try (Stream<Path> s = Files.list(parent)) {
                assertEquals(1, s.filter(d -> d.getFileName().toString().startsWith(".q.partial-")).count(), "the partial directory exists");
            }
            p.destroy();   // SIGTERM, as timeout(1) or a terminal's kill sends
            assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        } finally {
            p.destroyForcibly();
        }
        try (Stream<Path> s = Files.list(parent)) {
            assertEquals(List.of(), s.toList(), "no partial directory after SIGTERM");
        }
    }

    @Test
    void stalePartialDirectoriesAreRemovedOnTheNextWrite() throws Exception {
        Path parent = Files.createDirectories(tmp.resolve("models"));
        // a writer that has exited: a real process, waited for
        Process p = new ProcessBuilder("true").start();
        p.waitFor();
        long deadPid = p.pid();
        Path dead = Files.createDirectory(parent.resolve(".a.partial-" + deadPid + "-1700000000000-1"));
        Files.writeString(dead.resolve(QuantizedModelFiles.WEIGHTS), "half");
        // this process is alive, with its own start time: its partial directory is kept
        ProcessHandle self = ProcessHandle.current();
        long start = self.info().startInstant().orElseThrow().toEpochMilli();
        Path alive = Files.createDirectory(parent.resolve(".b.partial-" + self.pid() + "-" + start + "-2"));
        // the same pid with another start time is a reused pid: the writer is gone
        Path reused = Files.createDirectory(parent.resolve(".c.partial-" + self.pid() + "-" + (start - 5000) + "-3"));
        // an older lowbit's name without the writer: stale after a day
        Path oldFormat = Files.createDirectory(parent.resolve(".d.partial-123456789"));
        Files.setLastModifiedTime(oldFormat, FileTime.from(Instant.now().minus(Duration.ofDays(2))));
        Path recentOldFormat = Files.createDirectory(parent.resolve(".e.partial-987654321"));
        Path unrelated = Files.createDirectory(parent.resolve("f.partial-1-1-1"));

        write(parent.resolve("q"));
        try (Stream<Path> s = Files.list(parent)) {
            assertEquals(Set.of(alive, recentOldFormat, unrelated, parent.resolve("q")), Set.copyOf(s.toList()));
        }
        assertFalse(Files.exists(dead));
        assertFalse(Files.exists(reused));
        assertFalse(Files.exists(oldFormat));
    }
}
