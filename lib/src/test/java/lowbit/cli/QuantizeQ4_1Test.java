package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.io.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The default model was stored by llama.cpp as Q4_1; `quantize --quant rtn:w4g32fmin` from the CLI must find
 * llama.cpp's grid again and give back every weight exactly (DefaultModelQ4_1Test checks the codes in the library).
 */
class QuantizeQ4_1Test {
    @Test
    void rtnW4g32fminReproducesTheDefaultModelsQ4_1WeightsFromTheCli(@TempDir Path tmp) {
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded (./lowbit setup): " + gguf);
        Path out = tmp.resolve("q4_1");
        CliRun run = CliRun.of("quantize", "--model", gguf.toString(), "--quant", "rtn:w4g32fmin", "--out", out.toString());
        assertEquals(0, run.exit(), run.err());
        int compared = 0;
        try (Checkpoint source = Checkpoints.open(gguf); Checkpoint quantized = Checkpoints.open(out)) {
            for (TensorInfo t : source.tensors().values()) {
                if (!t.dtype().equals("Q4_1")) continue;
                assertArrayEquals(source.floats(t.name()), quantized.floats(t.name()), t.name());
                compared++;
            }
        }
        assertEquals(210, compared, "the default model's Q4_1 tensors");
    }
}
