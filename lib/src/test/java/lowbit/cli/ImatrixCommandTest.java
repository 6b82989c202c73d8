package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.ImportanceMatrix;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit imatrix` as a user runs it, on the small real model stories260K; the numbers themselves are checked against llama-imatrix in ImportanceMatrixTest. */
class ImatrixCommandTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "C4 slice not in the data directory");
    }

    @Test
    void writesTheMatrixOfTheDrawTheOptionsName(@TempDir Path tmp) {
        Path out = tmp.resolve("stories.imatrix.gguf");
        CliRun o = CliRun.of("imatrix", "--model", stories.toString(), "--nsamples", "3", "--calib-seqlen", "64", "--seed", "5",
                "--threads", "2", "--out", out.toString());
        assertEquals(0, o.exit(), o.err());
        assertTrue(o.out().contains("3 chunks of 64 tokens"), o.out());
        ImportanceMatrix m = ImportanceMatrix.read(out);
        assertEquals(3, m.chunkCount());
        assertEquals(64, m.chunkSize());
        assertEquals(List.of("c4-train-slice"), m.datasets());
        try (lowbit.io.gguf.GgufFile f = lowbit.io.gguf.GgufFile.open(out)) {
            var provenance = new com.fasterxml.jackson.databind.ObjectMapper().readTree((String) f.metadata().get("lowbit.provenance"));
            assertEquals(5, provenance.at("/calibration/seed").asInt(), provenance.toString());
            assertEquals(3, provenance.at("/calibration/nsamples").asInt());
            assertEquals(64, provenance.at("/model_sha256").asText().length());
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        try (Checkpoint ckpt = Checkpoints.open(stories); Transformer model = Checkpoints.load(ckpt, 2)) {
            int[][] windows = CalibrationSampler.of(Checkpoints.tokenizer(ckpt)).source("c4").nsamples(3).seqlen(64).seed(5).sample().windows();
            ImportanceMatrix direct = ImportanceMatrix.compute(model, windows, List.of("c4"), Progress.NONE);
            assertEquals(7 * model.config().numLayers(), m.entries().size());
            assertEquals(direct.entries().keySet(), m.entries().keySet());
            for (String name : direct.entries().keySet()) {
                assertEquals(3 * 64, m.entries().get(name).count(), name);
                assertArrayEquals(direct.importance(name), m.importance(name), name);
            }
        }
    }

    @Test
    void refusesBadInputBeforeAnyWork(@TempDir Path tmp) throws Exception {
        Path exists = Files.writeString(tmp.resolve("taken.gguf"), "x");
        expectError("--out " + exists + " exists", "imatrix", "--model", stories.toString(), "--out", exists.toString());
        expectError("--nsamples must be >= 1, got 0", "imatrix", "--model", stories.toString(), "--nsamples", "0", "--out",
                tmp.resolve("a.gguf").toString());
        expectError("unknown option '--quant'", "imatrix", "--model", stories.toString(), "--quant", "rtn:w4", "--out",
                tmp.resolve("b.gguf").toString());
        // the calibration options are one mixin shared with ppl/quantize, where they still need a --quant
        expectError("--nsamples applies only to quantization and no --quant SPEC was given", "ppl", "--model", stories.toString(),
                "--nsamples", "4");
        assertFalse(Files.exists(tmp.resolve("a.gguf")));
    }

    private static void expectError(String fragment, String... args) {
        CliRun o = CliRun.of(args);
        assertEquals(2, o.exit(), "exit code for " + String.join(" ", args) + "\n" + o.err());
        assertTrue(o.err().contains(fragment), "'" + fragment + "' in: " + o.err());
        assertEquals(1, o.err().strip().lines().count(), "one line: " + o.err());
    }
}
