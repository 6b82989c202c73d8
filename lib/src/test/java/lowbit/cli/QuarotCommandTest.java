package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quarot term's refusals as a user meets them, on stories260K: its MLP width 172 has no Hadamard construction
 * here (QuaRot stores a Williamson-type H_172; lowbit builds Sylvester and Paley orders only).
 */
class QuarotCommandTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
    }

    @Test
    void aSizeWithoutHadamardIsOneLineNamingTheLayerAndNothingIsWritten(@TempDir Path tmp) {
        Path out = tmp.resolve("q");
        CliRun r = CliRun.of("quantize", "--model", stories.toString(), "--quant", "quarot+rtn:w4g32", "--out", out.toString());
        assertEquals(2, r.exit(), r.err());
        String line = r.err().strip();
        assertFalse(line.contains("\n"), line);
        assertTrue(line.startsWith("lowbit: --quant quarot+rtn:w4g32: quarot: intermediate_size 172 (down_proj input): ")
                && line.contains("order 172"), line);
        assertFalse(Files.exists(out));

        r = CliRun.of("ppl", "--model", stories.toString(), "--quant", "quarot+rtn:w4a8", "--seqlen", "64", "--windows", "1");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().strip().startsWith("lowbit: --quant quarot+rtn:w4a8: quarot: intermediate_size 172"), r.err());
    }

    @Test
    void rotationSeedWithoutQuarotIsRefused() {
        CliRun r = CliRun.of("ppl", "--model", stories.toString(), "--quant", "rtn:w4a8", "--rotation-seed", "3", "--windows", "1");
        assertEquals(2, r.exit(), r.err());
        assertEquals("lowbit: --rotation-seed applies only to a rotated spec (quarot+..., e.g. quarot+rtn:w4a4); --quant rtn:w4a8 "
                + "has no quarot term", r.err().strip());
    }

    @Test
    void activationBitsBelowTwoAreRefused() {
        CliRun r = CliRun.of("ppl", "--model", stories.toString(), "--quant", "quarot+rtn:w4a1", "--windows", "1");
        assertEquals(2, r.exit(), r.err());
        assertTrue(r.err().strip().startsWith("lowbit: bad --quant spec 'quarot+rtn:w4a1': activation bits must be 2..8, got 1"), r.err());
    }
}
