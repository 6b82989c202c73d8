package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import lowbit.io.DataDir;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `--quant billm:...` refused as a user meets it on stories260K (dim 64, MLP 172): no BiLLM block size fits both widths
 * (a block needs >= 50 columns and g <= 64 leaves 172 a last block of 44), so each try is one line naming the linear,
 * and nothing is written.
 */
class BillmCommandTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
    }

    private static void expectError(String expected, String... args) {
        CliRun o = CliRun.of(args);
        assertEquals(2, o.exit(), String.join(" ", args) + "\n" + o.err());
        assertEquals("lowbit: " + expected, o.err().strip());
    }

    @Test
    void aBlockSizeThatDoesNotFitIsOneLineAndWritesNothing(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("never");
        String m = stories.toString();
        expectError("--quant billm:w1g128: model.layers.0.self_attn.q_proj: BiLLM block size 128 is wider than its input (64 columns); "
                + "use g <= 64", "quantize", "--model", m, "--quant", "billm:w1g128", "--out", out.toString());
        expectError("--quant billm:w1g64: model.layers.0.mlp.down_proj: BiLLM block size 64 leaves a last block of 44 of its 172 input "
                + "columns; every block needs >= 50 columns (the reference's salient search ranks the top 50 columns of each block)",
                "quantize", "--model", m, "--quant", "billm:w1g64", "--out", out.toString());
        expectError("--quant billm:w1g64: model.layers.0.mlp.down_proj: BiLLM block size 64 leaves a last block of 44 of its 172 input "
                + "columns; every block needs >= 50 columns (the reference's salient search ranks the top 50 columns of each block)",
                "ppl", "--model", m, "--quant", "billm:w1g64", "--seqlen", "64", "--windows", "1");
        CliRun bits = CliRun.of("ppl", "--model", m, "--quant", "billm:w2g128");
        assertTrue(bits.err().strip().startsWith("lowbit: bad --quant spec 'billm:w2g128': billm binarizes: its weights are w1 (billm:w1g128), got w2."),
                bits.err());
        assertFalse(Files.exists(out), "no output directory after a refusal");
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(0, s.count(), "no partial directory left");
        }
    }
}
