package lowbit.results;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Separate JVMs appending to one store at the same time: file locks, not just the in-process lock. */
class ResultStoreProcessesTest {
    static final int WRITERS = 3, DISTINCT = 200, SHARED = 20;

    @TempDir
    Path dir;

    @Test
    void concurrentWritersFromSeparateProcessesNeitherCorruptNorDuplicate() throws Exception {
        Path file = dir.resolve("store.jsonl");
        Path go = dir.resolve("go");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<Process> procs = new ArrayList<>();
        List<BufferedReader> outs = new ArrayList<>();
        for (int w = 0; w < WRITERS; w++) {
            Process p = new ProcessBuilder(java, "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-Xmx128m",
                    "-cp", System.getProperty("java.class.path"), StoreWriterMain.class.getName(),
                    file.toString(), "w" + w, "" + DISTINCT, "" + SHARED, go.toString())
                    .redirectError(ProcessBuilder.Redirect.INHERIT).start();
            procs.add(p);
            outs.add(new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8)));
        }
        try {
            for (BufferedReader r : outs) assertEquals("ready", r.readLine());
            Files.createFile(go);
            Map<String, String> claimedBy = new HashMap<>();
            int totalWins = 0;
            for (int w = 0; w < WRITERS; w++) {
                String line = outs.get(w).readLine();
                assertTrue(line != null && line.startsWith("won "), "writer " + w + " said " + line);
                String[] parts = line.split(" ");
                totalWins += Integer.parseInt(parts[1]);
                for (int i = 2; i < parts.length; i++) {
                    String prev = claimedBy.put(parts[i], "w" + w);
                    assertEquals(null, prev, parts[i] + " won by two writers");
                }
                assertTrue(procs.get(w).waitFor(30, TimeUnit.SECONDS));
                assertEquals(0, procs.get(w).exitValue());
            }
            assertEquals(SHARED, totalWins);

            // Every line parses with a plain JSON parser, and every key is there exactly once.
            ObjectMapper json = new ObjectMapper();
            List<String> lines = Files.readAllLines(file, StandardCharsets.UTF_8);
            assertEquals(WRITERS * DISTINCT + SHARED, lines.size());
            Map<String, Integer> count = new HashMap<>();
            Map<String, String> writerOf = new HashMap<>();
            int switches = 0;
            String last = null;
            for (String l : lines) {
                Map<?, ?> obj = json.readValue(l, Map.class);
                String key = (String) obj.get("key");
                count.merge(key, 1, Integer::sum);
                writerOf.put(key, (String) obj.get("writer"));
                if (last != null && !last.equals(obj.get("writer"))) switches++;
                last = (String) obj.get("writer");
            }
            // Otherwise the writers ran one after another and the test proved nothing about concurrency.
            System.out.println("ResultStoreProcessesTest: " + switches + " writer switches in " + lines.size() + " lines");
            assertTrue(switches >= 2 * WRITERS, "writers did not interleave: " + switches + " switches");
            for (int w = 0; w < WRITERS; w++)
                for (int i = 0; i < DISTINCT; i++) assertEquals(1, count.get("pw" + w + "-" + i), "pw" + w + "-" + i);
            for (int s = 0; s < SHARED; s++) {
                String key = "shared-" + s;
                assertEquals(1, count.get(key), key);
                assertEquals(claimedBy.get(key), writerOf.get(key), key + ": stored row is not the winner's");
            }

            ResultStore store = ResultStore.open(file);
            assertEquals(WRITERS * DISTINCT + SHARED, store.size());
            assertTrue(store.problems().isEmpty(), store.problems().toString());
        } finally {
            for (Process p : procs) p.destroyForcibly();
        }
    }
}
