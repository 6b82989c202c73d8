package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit bench train`: its option errors, a run on stories260K, and how it sets PyTorch's figures beside lowbit's. */
class TrainBenchTest {
    @Test
    void badOptionsGetOneLineBeforeAnythingRuns() {
        assertError("--seqlens: each window needs at least 2 tokens, got 1", "--seqlens", "512,1");
        assertError("--seqlens must be comma-separated window lengths, got '512,x'", "--seqlens", "512,x");
        assertError("--seqlens lists 512 twice", "--seqlens", "512,512");
        assertError("--repeats must be >= 1, got 0", "--repeats", "0");
        assertError("--baseline must be auto, none or torch, got 'transformers'", "--baseline", "transformers");
        int most = 4 * Runtime.getRuntime().availableProcessors();
        CliRun threads = CliRun.of("bench", "train", "--threads", "0");
        assertEquals(2, threads.exit());
        assertEquals("lowbit: bench train: --threads must be between 1 and " + most + " (4 x the " + most / 4
                + " available processors), got 0; ./lowbit bench train --help lists the options", threads.err().strip());
    }

    @Test
    void windowsLongerThanTheModelAndModelsWithoutABackwardPassAreRefused() throws Exception {
        Path bin = stories260K();
        assertError("--seqlens: 4096 is more than the model's 512 positions (max_position_embeddings)",
                "--model", bin.toString(), "--seqlens", "64,4096", "--baseline", "none");
        Path opt = Path.of(TrainBenchTest.class.getClassLoader().getResource("tiny/opt").toURI());
        CliRun o = CliRun.of("bench", "train", "--model", opt.toString(), "--seqlens", "16", "--baseline", "none");
        assertEquals(2, o.exit(), o.err());
        assertTrue(o.err().strip().startsWith("lowbit: model_type opt: there is no backward pass for it yet"), o.err());
        assertEquals("", o.out(), "no figures for a model that cannot train");
    }

    @Test
    void theTorchBaselineIsRefusedWhenAskedForAndItCannotRun(@TempDir Path root) throws Exception {
        Path bin = stories260K();
        Path absent = root.resolve("no/python");
        assertError("torch baseline needs " + absent + " (./lowbit setup --reference creates it with torch and transformers and gguf)",
                "--model", bin.toString(), "--seqlens", "16", "--baseline", "torch", "--python", absent.toString());
        // A stand-in interpreter with every module: the baseline could run, but transformers cannot load a llama2.c file.
        Path python = root.resolve("python");
        Files.writeString(python, "#!/bin/sh\nif [ \"$1\" = -c ]; then echo; exit 0; fi\nexit 9\n");
        Files.setPosixFilePermissions(python, PosixFilePermissions.fromString("rwxr-xr-x"));
        assertError("the torch baseline loads a .gguf file or a Hugging Face directory; --model " + bin + " is neither",
                "--model", bin.toString(), "--seqlens", "16", "--baseline", "torch", "--python", python.toString());
    }

    @Test
    void anAutomaticBaselineThatCannotRunIsSkippedWithItsReasonAfterTheFigures(@TempDir Path root) throws Exception {
        Path bin = stories260K();
        Path python = root.resolve("python");
        Files.writeString(python, "#!/bin/sh\nif [ \"$1\" = -c ]; then echo; exit 0; fi\nexit 9\n");
        Files.setPosixFilePermissions(python, PosixFilePermissions.fromString("rwxr-xr-x"));
        CliRun o = CliRun.of("bench", "train", "--model", bin.toString(), "--seqlens", "16", "--repeats", "1", "--python", python.toString());
        assertEquals(0, o.exit(), o.err());
        List<String> lines = o.out().lines().toList();
        assertTrue(lines.get(2).startsWith("16      lowbit"), o.out());
        assertEquals("skipped: the torch baseline loads a .gguf file or a Hugging Face directory; --model " + bin + " is neither",
                lines.get(3), o.out());
    }

    @Test
    void aRunPrintsOneRowPerWindowLengthWithTheForwardAndTrainingLossesAgreeing() {
        Path bin = stories260K();
        CliRun o = CliRun.of("bench", "train", "--model", bin.toString(), "--seqlens", "32,64", "--repeats", "1", "--threads", "1",
                "--baseline", "none");
        assertEquals(0, o.exit(), o.err());
        List<String> lines = o.out().lines().toList();
        assertTrue(lines.get(0).startsWith("train  model=" + bin + " seqlens=32,64 threads=1 repeats=1") && lines.get(0).contains("load average at start"),
                lines.get(0));
        assertTrue(lines.get(lines.size() - 1).startsWith("load average at the end "), o.out());
        List<String[]> rows = lines.stream().filter(l -> l.matches("\\d+ +lowbit .*")).map(l -> l.trim().split(" +")).toList();
        assertEquals(2, rows.size(), o.out());
        for (int i = 0; i < 2; i++) {
            String[] r = rows.get(i);
            assertEquals(i == 0 ? "32" : "64", r[0]);
            double forward = Double.parseDouble(r[2]), step = Double.parseDouble(r[3]), ratio = Double.parseDouble(r[5]);
            assertEquals(forward / step, ratio, 0.01 * ratio + 0.006, "step/forward is the time ratio: " + String.join(" ", r));
            // The runtime's nll (checked against transformers elsewhere) and TrainableModel's next-token loss on the same
            // window: the two passes agree, so both sides of the ratio ran the same model on the same tokens.
            assertEquals(Double.parseDouble(r[7]), Double.parseDouble(r[8]), 2e-4, String.join(" ", r));
            assertTrue(Double.parseDouble(r[7]) > 0.5 && Double.parseDouble(r[7]) < Math.log(512), String.join(" ", r));
        }
        assertFalse(o.out().contains("torch"), "--baseline none runs no baseline: " + o.out());
    }

    @Test
    void pytorchFiguresSitBesideLowbitsAsTokensPerSecondRatios() throws Exception {
        // Hand-made figures: lowbit's step takes 2 s on 512 tokens, PyTorch's 4 s: lowbit does twice PyTorch's tokens/s.
        TrainBench.Figures ours = new TrainBench.Figures(512, 1.0, 2.0, 1.5, 3.25, 3.25, 1_500_000_000L);
        var ref = new ObjectMapper().readTree("{\"forward_seconds\": 0.5, \"step_seconds\": 4.0, \"step_qat_seconds\": 3.0, "
                + "\"loss\": 3.25001, \"step_loss\": 3.25001, \"peak_rss_bytes\": 2500000000, \"torch\": \"2.15.0\", "
                + "\"transformers\": \"5.24.0\", \"attn_implementation\": \"sdpa\"}");
        assertEquals("seqlen 512: step 2.00, QAT step 2.00, forward 0.50", TrainBench.ratios(ours, ref));
        String[] lowbit = TrainBench.lowbitRow(ours).trim().split(" +");
        assertEquals(List.of("512", "lowbit", "512.0", "256.0", "341.3", "2.00", "(<=3.5)", "3.2500", "3.2500", "1.50", "GB"), List.of(lowbit));
        String[] torch = TrainBench.torchRow(512, ref).trim().split(" +");
        assertEquals(List.of("512", "torch", "1024.0", "128.0", "170.7", "8.00", "3.2500", "3.2500", "2.50", "GB", "(torch", "2.15.0,",
                "transformers", "5.24.0,", "sdpa)"), List.of(torch));
    }

    private static void assertError(String message, String... args) {
        String[] all = new String[args.length + 2];
        all[0] = "bench";
        all[1] = "train";
        System.arraycopy(args, 0, all, 2, args.length);
        CliRun o = CliRun.of(all);
        assertEquals(2, o.exit(), o.err());
        assertEquals("lowbit: " + message, o.err().strip());
        assertEquals("", o.out(), "no partial output for " + String.join(" ", args));
    }

    private static Path stories260K() {
        assumeTrue(Files.exists(DataDir.root().resolve("c4/c4_en_train00000_first1000.jsonl")), "the C4 slice not in the data directory");
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory");
        return bin;
    }
}
