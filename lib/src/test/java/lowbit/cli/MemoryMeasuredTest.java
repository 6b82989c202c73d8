package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The memory estimate against a real run: ppl of the default model quantized with RTN, in a child JVM whose heap
 * is exactly the estimate, with a small young generation (-Xmn64m) so that the old generation is nearly all of it.
 * Measured: the heap still in use after each full collection (-Xlog:gc), which is the live set at that moment;
 * the old generation fills up, so full collections happen throughout the run. The run must fit (the estimate is not
 * too small) and its measured live set must be at least half the estimate (not more than twice too large). A heap
 * of a third of the estimate must end with the one-line out-of-memory message, not a stack trace. (Measured on
 * 2026-11-30: estimate 881 MB, live peak 737 MB, 16 s.)
 */
class MemoryMeasuredTest {
    private static final String[] JOB = {"ppl", "--model", "default", "--quant", "rtn:w4g128", "--seqlen", "512", "--windows", "1",
            "--threads", "2"};
    private static final Pattern AFTER_FULL_GC = Pattern.compile("Pause Full .*->(\\d+)([KMG])\\(");

    @Test
    void aRealRunFitsItsEstimateAndUsesAtLeastHalfOfIt(@TempDir Path dir) throws Exception {
        long estimate = ((MemoryEstimated) Main.commandLine().parseArgs(JOB).subcommand().commandSpec().userObject())
                .memoryEstimate().bytes();
        Path gcLog = dir.resolve("gc.log");
        Run fits = run(dir, estimate, "-Xmn64m", "-Xlog:gc:file=" + gcLog);
        assertEquals(0, fits.exit, "ppl in a heap of its estimate (" + estimate + " bytes):\n" + fits.err);
        long peak = 0;
        Matcher m = AFTER_FULL_GC.matcher(Files.readString(gcLog));
        while (m.find()) {
            long v = Long.parseLong(m.group(1)) << switch (m.group(2)) { case "K" -> 10; case "M" -> 20; default -> 30; };
            peak = Math.max(peak, v);
        }
        assertTrue(peak > 0, "no full collection logged in " + gcLog);
        assertTrue(peak <= estimate && peak >= estimate / 2,
                "live heap after full collections peaked at " + (peak >> 20) + " MB, estimate " + (estimate >> 20) + " MB");

        Run starved = run(dir, estimate / 3);
        assertEquals(3, starved.exit, starved.err);
        assertFalse(starved.err.contains("Exception in thread") || starved.err.contains("\tat "), starved.err);
        String last = starved.err.strip().lines().reduce((a, b) -> b).orElse("");
        assertTrue(last.startsWith("lowbit: ppl ran out of Java heap (") && last.contains("LOWBIT_JAVA_OPTS=-Xmx")
                && last.endsWith("or use a smaller --nsamples or --calib-seqlen"), last);
    }

    private record Run(int exit, String err) {}

    private static Run run(Path dir, long heapBytes, String... jvmOptions) throws Exception {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseParallelGC", "-Xmx" + Math.ceilDiv(heapBytes, 1L << 20) + "m", "-Dlowbit.data=" + System.getProperty("lowbit.data")));
        cmd.addAll(List.of(jvmOptions));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(JOB));
        Path err = dir.resolve("stderr-" + heapBytes);
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(err.toFile()).start();
        if (!p.waitFor(10, TimeUnit.MINUTES)) {
            p.destroyForcibly().waitFor();
            throw new AssertionError("ppl did not finish in 10 minutes with -Xmx" + heapBytes);
        }
        return new Run(p.exitValue(), Files.readString(err));
    }

}
