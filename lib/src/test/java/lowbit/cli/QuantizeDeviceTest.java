package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.cuda.Cuda;
import lowbit.io.DataDir;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * quantize and bench gptq with --device: the device a recipe ran on is in the provenance; a step without a GPU path runs
 * on the CPU under auto; --device cuda without a GPU is Cuda's one line, exit 2, and nothing written.
 */
class QuantizeDeviceTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "C4 slice not in the data directory");
    }

    @Test
    void cpuRunIsRecordedAsCpu(@TempDir Path tmp) throws Exception {
        CliRun o = CliRun.of("quantize", "--model", stories.toString(), "--quant", "gptq:w4g32", "--nsamples", "2", "--seqlen", "32",
                "--device", "cpu", "--threads", "2", "--out", tmp.resolve("q").toString(), "--json");
        assertEquals(0, o.exit(), o.err());
        JsonNode q = new ObjectMapper().readTree(o.out());
        assertEquals("cpu", q.at("/quantization/device").asText());
    }

    @Test
    void autoRunsAStepWithoutAGpuPathOnTheCpu(@TempDir Path tmp) throws Exception {
        CliRun o = CliRun.of("quantize", "--model", stories.toString(), "--quant", "smoothquant:w8a8", "--nsamples", "2", "--seqlen", "32",
                "--device", "auto", "--threads", "2", "--out", tmp.resolve("q").toString(), "--json");
        assertEquals(0, o.exit(), o.err());
        assertEquals("cpu", new ObjectMapper().readTree(o.out()).at("/quantization/device").asText());
    }

    @Test
    void cudaWithoutAGpuIsOneLineAndWritesNothing(@TempDir Path tmp) {
        String reason = Cuda.unavailableReason();
        assumeTrue(reason != null, "a GPU is present: the refusal without one cannot be seen here");
        Path out = tmp.resolve("q");
        for (String[] args : new String[][] {
                {"quantize", "--model", stories.toString(), "--quant", "gptq:w4g32", "--device", "cuda", "--out", out.toString()},
                {"bench", "gptq", "--model", stories.toString(), "--device", "cuda", "--part", "layer", "--baseline", "none"}}) {
            CliRun o = CliRun.of(args);
            assertEquals(2, o.exit(), String.join(" ", args) + "\n" + o.err());
            assertEquals("lowbit: " + reason, o.err().strip(), "one line: " + o.err());
        }
        assertFalse(Files.exists(out));
    }

    @Test
    void cudaNamedForAMethodWithoutAGpuPathIsRefusedBeforeAnyWork(@TempDir Path tmp) {
        assumeTrue(Cuda.available(), "no GPU: --device cuda stops at opening it (cudaWithoutAGpuIsOneLineAndWritesNothing)");
        Path out = tmp.resolve("q");
        CliRun o = CliRun.of("quantize", "--model", stories.toString(), "--quant", "smoothquant:w8a8", "--device", "cuda", "--out", out.toString());
        assertEquals(2, o.exit(), o.err());
        assertTrue(o.err().strip().startsWith("lowbit: --device cuda: --quant smoothquant:w8a8 has no GPU path (method smoothquant"), o.err());
        assertEquals(1, o.err().strip().lines().count(), o.err());
        assertFalse(Files.exists(out));
    }
}
