package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.DataDir;
import lowbit.quant.BitsMap;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code allocate} as a user runs it on stories260K (5 blocks, 35 linears, inputs of 64 and 172 columns). */
class AllocateCommandTest {
    private static Path stories;

    @BeforeAll
    static void model() {
        stories = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(stories), "stories260K not in the data directory");
    }

    private static CliRun allocate(Path out, String... extra) {
        String[] base = {"allocate", "--model", stories.toString(), "--method", "rtn", "--group", "32", "--sensitivity-windows", "2",
                "--selection-windows", "1", "--window-tokens", "32", "--refine", "3", "--out", out.toString()};
        String[] all = java.util.Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, all, base.length, extra.length);
        return CliRun.of(all);
    }

    @Test
    void writesABitsMapWithinBudgetThatQuantizeTakes(@TempDir Path tmp) throws Exception {
        Path map = tmp.resolve("bits.json");
        CliRun r = allocate(map, "--budget", "3.5", "--kv-budget", "6", "--kv-candidates", "2,4,8");
        assertEquals(0, r.exit(), r.err());
        assertTrue(r.out().contains("split-half Spearman"), r.out());
        assertTrue(r.out().contains("kv cache: "), r.out());
        BitsMap m = BitsMap.read(map);
        assertEquals(35, m.layers().size());
        assertEquals(32, m.defaultConfig().groupSize());
        assertTrue(m.layers().values().stream().allMatch(b -> b == 2 || b == 3 || b == 4 || b == 8));
        @SuppressWarnings("unchecked")
        var refinement = (java.util.Map<String, Object>) m.provenance().get("refinement");
        assertTrue(((Number) refinement.get("selection_kld")).doubleValue() <= ((Number) refinement.get("uniform_selection_kld")).doubleValue(),
                "never worse than uniform on the selection windows");
        assertEquals("kld", m.provenance().get("predictor"));
        assertNotNull(m.kv(), "KV-cache widths per layer in the same map");

        CliRun ppl = CliRun.of("ppl", "--model", stories.toString(), "--quant", "rtn:w3g32", "--bits-map", map.toString(), "--seqlen", "64",
                "--windows", "1");
        assertEquals(0, ppl.exit(), ppl.err());

        // the same map on another model (its provenance names another sha256) is one line naming both
        Path foreign = tmp.resolve("foreign.json");
        String sha = (String) m.provenance().get("model_sha256");
        Files.writeString(foreign, Files.readString(map).replace(sha, "0123456789abcdef".repeat(4)));
        CliRun other = CliRun.of("quantize", "--model", stories.toString(), "--method", "rtn", "--bits-map", foreign.toString(), "--out",
                tmp.resolve("nope").toString());
        assertEquals(2, other.exit(), other.err());
        assertTrue(other.err().strip().matches("lowbit: .*foreign\\.json: was allocated for the model with sha256 0123456789ab\\.\\.\\. \\(35 linears listed\\);"
                + " this model's is " + sha.substring(0, 12) + "\\.\\.\\. \\(35 block linears\\).*"), other.err());

        Path q = tmp.resolve("q");
        CliRun quantize = CliRun.of("quantize", "--model", stories.toString(), "--method", "rtn", "--bits-map", map.toString(), "--out", q.toString());
        assertEquals(0, quantize.exit(), quantize.err());
        double written = Double.parseDouble(quantize.out().replaceAll("(?s).*linears, ([0-9.]+) bits/weight.*", "$1"));
        assertTrue(written <= 3.5, "the quantized model keeps the budget: " + written);
    }

    @Test
    void budgetsOutsideTheCandidatesAndBadCandidatesAreOneLine(@TempDir Path tmp) {
        Path out = tmp.resolve("bits.json");
        CliRun low = allocate(out, "--budget", "1.5");
        assertEquals(2, low.exit(), low.err());
        String line = low.err().strip();
        assertFalse(line.contains("\n"), line);
        assertTrue(line.matches("lowbit: --budget 1\\.5 bits/weight is below the smallest candidate's: candidates \\[2, 3, 4, 8\\] give "
                + "2\\.[0-9]{4} \\(all 2-bit\\) \\.\\. 8\\.[0-9]{4} \\(all 8-bit\\) bits/weight on this model"), line);
        CliRun high = allocate(out, "--budget", "8.9");
        assertEquals(2, high.exit(), high.err());
        assertTrue(high.err().contains("is above the largest candidate's"), high.err());
        CliRun wide = allocate(out, "--budget", "4", "--candidates", "1,4");
        assertEquals("lowbit: --candidates [1, 4]: width 1 is outside 2..8", wide.err().strip());
        CliRun notCandidate = allocate(out, "--budget", "w5");
        assertEquals("lowbit: --budget w5: 5 is not one of --candidates [2, 3, 4, 8]", notCandidate.err().strip());
        CliRun kv = allocate(out, "--budget", "3.5", "--kv-budget", "4");
        assertTrue(kv.err().strip().startsWith("lowbit: KV budget: target 4.0 bits/element is below the cheapest allocation; achievable range for"
                + " these 10 keys and values (320 elements per token) is 4.250000..11.000000 bits/element"), kv.err());
        CliRun predictor = allocate(out, "--budget", "3.5", "--predictor", "entropy");
        assertEquals("lowbit: --predictor must be one of kld, hessian, fisher, kurtosis, got 'entropy'", predictor.err().strip());
        assertFalse(Files.exists(out), "nothing written");
    }
}
