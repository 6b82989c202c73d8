package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.URISyntaxException;
import java.nio.file.Path;
import lowbit.cuda.Cuda;
import org.junit.jupiter.api.Test;

/** --device on the commands that score a model: a GPU asked for where there is none is one line and exit 2, before any work. */
class DeviceOptionTest {
    private static String tinyLlama() throws URISyntaxException {
        return Path.of(DeviceOptionTest.class.getClassLoader().getResource("tiny/llama").toURI()).toString();
    }

    private static void expectError(String expected, String... args) {
        CliRun o = CliRun.of(args);
        assertEquals(2, o.exit(), String.join(" ", args) + "\n" + o.err());
        assertEquals("lowbit: " + expected, o.err().strip());
        assertEquals("", o.out(), "nothing printed but the error");
    }

    @Test
    void cudaWithoutAGpuIsOneLine() throws Exception {
        String reason = Cuda.unavailableReason();
        assumeTrue(reason != null, "this machine has a GPU: DeviceModelGpuTest covers --device cuda");
        expectError(reason, "ppl", "--model", tinyLlama(), "--device", "cuda", "--seqlen", "16", "--windows", "1");
        expectError(reason, "eval", "--model", tinyLlama(), "--device", "cuda", "--tasks", "piqa", "--limit", "1", "--no-store");
    }

    @Test
    void anUnknownDeviceNamesTheOption() throws Exception {
        expectError("--device must be cpu, cuda or auto, got 'tpu'", "ppl", "--model", tinyLlama(), "--device", "tpu", "--seqlen", "16",
                "--windows", "1");
    }
}
