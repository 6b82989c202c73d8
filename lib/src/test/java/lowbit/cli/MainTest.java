package lowbit.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every error a user can fix ends as one `lowbit:` line on stderr, nothing on stdout, exit status 2. */
class MainTest {

    private static void assertOneLine(String expected, String... args) {
        CliRun o = CliRun.of(args);
        assertEquals(expected + "\n", o.err(), String.join(" ", args));
        assertEquals("", o.out());
        assertEquals(2, o.exit());
    }

    @Test
    void wrongOptionTypesNameTheOptionAndTheExpectedType() {
        assertOneLine("lowbit: ppl: Invalid value for option '--seqlen': 'abc' is not an int; ./lowbit ppl --help lists the options",
                "ppl", "--seqlen", "abc");
    }

    @Test
    void missingRequiredOptionsAndParameters() {
        assertOneLine("lowbit: download needs either --repo ORG/NAME (a model) or a data set: mmlu (./lowbit download --help)",
                "download");
        assertOneLine("lowbit: bench needs a benchmark: forward, gptq, allocate, awq, billm, eval, rotate, export or train (./lowbit bench --help)", "bench");
    }

    @Test
    void unknownCommandsPointToHelp() {
        assertOneLine("lowbit: unknown command 'quantise' (did you mean quantize?); ./lowbit help lists the commands", "quantise");
        assertOneLine("lowbit: unknown command 'xyzzy'; ./lowbit help lists the commands", "xyzzy");
    }

    @Test
    void unknownOptionsAndStrayArguments() {
        assertOneLine("lowbit: ppl: unknown option '--window' (did you mean --windows?); ./lowbit ppl --help lists the options", "ppl", "--window", "3");
        assertOneLine("lowbit: ppl: unexpected argument 'extra'; ./lowbit ppl --help lists the options", "ppl", "extra");
    }

    @Test
    void threadCountsOutsideTheMachineAreRefused() {
        int most = 4 * Runtime.getRuntime().availableProcessors();
        String expected = "lowbit: info: --threads must be between 1 and " + most + " (4 x the "
                + Runtime.getRuntime().availableProcessors() + " available processors), got ";
        String help = "; ./lowbit info --help lists the options";
        assertOneLine(expected + (most + 1) + help, "info", "--threads", Integer.toString(most + 1), "--model", "/nonexistent.gguf");
        assertOneLine(expected + 0 + help, "info", "--threads", "0", "--model", "/nonexistent.gguf");
    }

    @Test
    void jsonErrorsGiveFileLineAndColumnWithoutParserBoilerplate(@TempDir Path tmp) throws Exception {
        Path hf = Files.createDirectories(tmp.resolve("hf"));
        Files.writeString(hf.resolve("config.json"), "{\n  \"model_type\": \"llama\",\n  \"hidden_size\": 64,,\n}");
        assertOneLine("lowbit: " + hf.resolve("config.json") + ": not valid JSON: Unexpected character (',' (code 44)): "
                + "was expecting double-quote to start field name (at line 3, column 21)", "info", "--model", hf.toString());
        // The manifest reader passes Jackson's whole message on, "[Source: REDACTED ...]" location and all.
        Path q = Files.createDirectories(tmp.resolve("q"));
        Files.writeString(q.resolve("lowbit.json"), "{\"format\": \"lowbit-quantized\", \"version\": 1, ");
        assertOneLine("lowbit: " + q.resolve("lowbit.json") + ": is not valid JSON: Unexpected end-of-input within/between Object "
                + "entries (at line 1, column 46)", "info", "--model", q.toString());
    }

    @Test
    void errorLineStripsJacksonLocationsAndAddsTheSystemReason() {
        var json = new com.fasterxml.jackson.core.JsonParseException(null,
                "Unexpected end-of-input: expected close marker for Object (start marker at [Source: REDACTED "
                        + "(`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 1])",
                new com.fasterxml.jackson.core.JsonLocation(null, 10, 2, 7));
        var wrapped = new lowbit.io.FormatException(Path.of("t.json"), "not readable as JSON: " + json.getMessage(), json);
        assertEquals("t.json: not readable as JSON: Unexpected end-of-input: expected close marker for Object (at line 2, column 7)",
                Main.errorLine(wrapped));
        var io = new java.io.UncheckedIOException("result store s.jsonl", new java.io.IOException("No space left on device"));
        assertEquals("result store s.jsonl: No space left on device", Main.errorLine(io));
        var denied = new java.io.UncheckedIOException("--journal /ro/j", new java.nio.file.AccessDeniedException("/ro/j"));
        assertEquals("--journal /ro/j: permission denied", Main.errorLine(denied));
    }
}
