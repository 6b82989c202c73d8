package lowbit.memory;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RunMarkerTest {
    @TempDir
    Path dir;

    @Test
    void aCleanRunLeavesNoMarkerAndTheNextStartSaysNothing() {
        Path marker = dir.resolve(".study-running");
        try (RunMarker run = RunMarker.start(marker, "study into results", "the rows are kept")) {
            assertEquals(Optional.empty(), run.previousRunKilled());
            assertTrue(Files.exists(marker));
        }
        assertFalse(Files.exists(marker));
        try (RunMarker run = RunMarker.start(marker, "study into results", "the rows are kept")) {
            assertEquals(Optional.empty(), run.previousRunKilled());
        }
    }

    @Test
    void aMarkerWhoseProcessIsGoneMeansTheRunWasKilled() throws Exception {
        Process gone = new ProcessBuilder("true").start();
        gone.waitFor();
        Path marker = dir.resolve(".study-running");
        Files.writeString(marker, "pid=" + gone.pid() + "\nstarted=2026-11-30T01:02:03Z\njob=study into results\n");
        try (RunMarker run = RunMarker.start(marker, "study into results", "the rows in results/store.jsonl are kept")) {
            assertEquals(Optional.of("the previous study into results (pid " + gone.pid() + ", started 2026-11-30T01:02:03Z) did not "
                    + "finish: it was killed (out of memory? kill -9?); this run resumes it: the rows in results/store.jsonl are kept"),
                    run.previousRunKilled());
            assertTrue(Files.readString(marker).startsWith("pid=" + ProcessHandle.current().pid() + "\n"), "now marks this run");
        }
    }

    @Test
    void aMarkerTornByTheKillStillMeansTheRunWasKilled() throws Exception {
        Path marker = dir.resolve("j.jsonl.running");
        Files.writeString(marker, "pid=12");
        try (RunMarker run = RunMarker.start(marker, "ppl --journal j.jsonl", "the windows in j.jsonl are kept")) {
            assertTrue(run.previousRunKilled().orElseThrow().startsWith("the previous ppl --journal j.jsonl (pid 12"),
                    run.previousRunKilled().orElseThrow());
        }
    }

    @Test
    void aLiveJavaProcessOnTheSameFilesIsRefused() throws Exception {
        Path source = dir.resolve("Sleep.java");
        Files.writeString(source, "class Sleep { public static void main(String[] a) throws Exception { Thread.sleep(120_000); } }");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process other = new ProcessBuilder(java, source.toString()).start();
        try {
            Path marker = dir.resolve(".study-running");
            Files.writeString(marker, "pid=" + other.pid() + "\nstarted=2026-11-30T01:02:03Z\n");
            var err = assertThrows(IllegalStateException.class, () -> RunMarker.start(marker, "study into results", "kept"));
            assertEquals("a study into results is already running (pid " + other.pid() + ", started 2026-11-30T01:02:03Z); two would "
                    + "write the same files: wait for it, or delete " + marker + " if that process is not lowbit", err.getMessage());
            assertTrue(Files.readString(marker).startsWith("pid=" + other.pid()), "the other run's marker stays");
        } finally {
            other.destroyForcibly().waitFor();
        }
    }
}
