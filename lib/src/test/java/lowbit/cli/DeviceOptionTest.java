package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import lowbit.cuda.Cuda;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --device: on the commands that score a model, a GPU asked for where there is none is one line and exit 2 before any
 * work; on the commands that have no GPU path, cuda asked for is one line and exit 2 before any work (also where there
 * is a GPU: they would run on the CPU), auto and cpu run on the CPU; and the backend info reports.
 */
class DeviceOptionTest {
    private static String tiny(String name) throws Exception {
        return Path.of(DeviceOptionTest.class.getClassLoader().getResource("tiny/" + name).toURI()).toString();
    }

    private static void assertOneLine(String expected, List<String> args) {
        CliRun o = CliRun.of(args.toArray(String[]::new));
        assertEquals(expected + "\n", o.err(), String.join(" ", args));
        assertEquals("", o.out(), String.join(" ", args));
        assertEquals(Main.USER_ERROR, o.exit());
    }

    private static List<String> with(List<String> args, String... more) {
        List<String> all = new ArrayList<>(args);
        all.addAll(List.of(more));
        return all;
    }

    @Test
    void cpuOnlyCommandsRefuseCudaInOneLineBeforeAnyWork(@TempDir Path tmp) throws Exception {
        String m = tiny("llama"), out = tmp.resolve("out").toString();
        List<List<String>> commands = List.of(
                List.of("study", "--model", m, "--out", out),
                List.of("allocate", "--model", m, "--method", "rtn", "--budget", "3.5", "--out", out),
                List.of("imatrix", "--model", m, "--out", out),
                List.of("export", "gguf", "--model", m, "--type", "Q4_K_M", "--out", out),
                List.of("qat", "--model", m, "--quant", "rtn:w4a8", "--steps", "2", "--out", out),
                List.of("bench", "awq", "--model", m),
                List.of("bench", "rotate", "--model", m),
                List.of("bench", "eval", "--model", m),
                List.of("bench", "billm", "--model", m),
                List.of("bench", "export", "--model", m),
                List.of("bench", "train", "--model", m),
                List.of("bench", "allocate", "--model", m, "--method", "rtn", "--budget", "3.5"));
        for (List<String> c : commands) {
            String name = c.get(0).equals("bench") || c.get(0).equals("export") ? c.get(0) + " " + c.get(1) : c.get(0);
            assertOneLine("lowbit: " + name + " runs on the CPU only: drop --device cuda (auto uses the CPU for it)", with(c, "--device", "cuda"));
        }
        assertOneLine("lowbit: qat runs on the CPU only: drop --device GPU (auto uses the CPU for it)",
                with(commands.get(4), "--device", "GPU"));
        assertOneLine("lowbit: --device must be cpu, cuda or auto, got 'tpu'", with(commands.get(4), "--device", "tpu"));
        assertTrue(Files.notExists(Path.of(out)), "nothing written after a refusal");
    }

    @Test
    void infoReportsTheBackendItWouldRunOn() throws Exception {
        String m = tiny("llama");
        CliRun cpu = CliRun.of("info", "--model", m, "--device", "cpu", "--threads", "1");
        assertEquals(0, cpu.exit(), cpu.err());
        assertTrue(cpu.out().endsWith("backend: cpu-java-vector fp32 (java-vector 1 thread, " + FloatVector.SPECIES_PREFERRED.vectorBitSize()
                + "-bit vectors)\n"), cpu.out());
        CliRun bf16 = CliRun.of("info", "--model", m, "--device", "cpu", "--weights", "bf16");
        assertTrue(bf16.out().contains("backend: cpu-java-vector bf16 (java-vector " + Parallel.defaultThreads() + " thread"), bf16.out());
        String reason = Cuda.unavailableReason();
        if (reason != null) {
            // no listing first and the error after it: the device is resolved before the model is opened
            assertOneLine("lowbit: " + reason, List.of("info", "--model", m, "--device", "cuda"));
            CliRun auto = CliRun.of("info", "--model", m);
            assertTrue(auto.out().contains("backend: cpu-java-vector fp32"), auto.out());
        } else {
            CliRun gpu = CliRun.of("info", "--model", m, "--device", "cuda");
            assertTrue(gpu.out().endsWith("backend: cuda " + Cuda.get().describe() + " fp32\n"), gpu.out());
        }
    }

    @Test
    void scoringCommandsWithoutAGpuAreOneLine() throws Exception {
        String reason = Cuda.unavailableReason();
        assumeTrue(reason != null, "this machine has a GPU: DeviceModelGpuTest covers --device cuda");
        String m = tiny("llama");
        assertOneLine("lowbit: " + reason, List.of("ppl", "--model", m, "--device", "cuda", "--seqlen", "16", "--windows", "1"));
        assertOneLine("lowbit: " + reason, List.of("eval", "--model", m, "--device", "cuda", "--tasks", "piqa", "--limit", "1", "--no-store"));
        assertOneLine("lowbit: --device must be cpu, cuda or auto, got 'tpu'",
                List.of("ppl", "--model", m, "--device", "tpu", "--seqlen", "16", "--windows", "1"));
    }
}
