package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `lowbit bench` as subcommands, and the launcher of the Python baselines on a stand-in .venv. */
class BenchCommandTest {
    @Test
    void eachBenchmarkIsASubcommandWithItsOwnOptions() {
        CliRun none = CliRun.of("bench");
        assertEquals(2, none.exit());
        assertEquals("lowbit: bench needs a benchmark: forward, gptq, allocate, awq, billm, eval, rotate, export or train (./lowbit bench --help)", none.err().strip());

        CliRun help = CliRun.of("bench", "gptq", "--help");
        assertEquals(0, help.exit(), help.err());
        assertTrue(help.out().contains("--part") && help.out().contains("--quant"), help.out());
        CliRun forwardHelp = CliRun.of("bench", "forward", "--help");
        assertTrue(forwardHelp.out().contains("--windows"), forwardHelp.out());
        assertFalse(forwardHelp.out().contains("--quant"), "forward quantizes nothing: " + forwardHelp.out());

        CliRun part = CliRun.of("bench", "gptq", "--part", "layers");
        assertEquals("lowbit: --part must be all, layer or model, got 'layers'", part.err().strip());
        CliRun base = CliRun.of("bench", "forward", "--baseline", "torch");
        assertEquals("lowbit: --baseline must be auto, none or transformers, got 'torch'", base.err().strip());
        CliRun evalBase = CliRun.of("bench", "eval", "--baseline", "transformers");
        assertEquals("lowbit: --baseline must be auto, none or lm-eval, got 'transformers'", evalBase.err().strip());
        CliRun evalLimit = CliRun.of("bench", "eval", "--limit", "0");
        assertEquals("lowbit: --limit must be >= 1, got 0", evalLimit.err().strip());
        CliRun evalTask = CliRun.of("bench", "eval", "--tasks", "piqa,mmlu");
        assertTrue(evalTask.err().startsWith("lowbit: --tasks: unknown task 'mmlu'; known tasks: piqa,"), evalTask.err());
        CliRun spec = CliRun.of("bench", "awq", "--quant", "gptq:w4g128");
        assertEquals("lowbit: bench awq times awq specs, got --quant gptq:w4g128", spec.err().strip());
        CliRun billm = CliRun.of("bench", "billm", "--quant", "gptq:w2g128");
        assertEquals("lowbit: bench billm times billm specs, got --quant gptq:w2g128", billm.err().strip());
    }

    @Test
    void theLauncherNamesWhatIsMissing(@TempDir Path root) throws Exception {
        PythonBaseline noVenv = PythonBaseline.find("torch baseline", root, List.of("torch"));
        assertFalse(noVenv.available());
        assertTrue(noVenv.missing().contains(root.resolve(".venv/bin/python").toString()), noVenv.missing());

        // A stand-in python: the module probe reports transformers missing.
        python(root, "if [ \"$1\" = -c ]; then echo transformers; exit 0; fi; exit 9");
        PythonBaseline partial = PythonBaseline.find("transformers baseline", root, List.of("torch", "transformers"));
        assertFalse(partial.available());
        assertEquals("transformers baseline needs transformers in .venv (./lowbit setup --reference installs it)", partial.missing());
        assertThrows(IllegalStateException.class, () -> partial.run("bench_x.py", List.of()));
    }

    @Test
    void theLauncherRunsTheScriptAndReadsItsLastLine(@TempDir Path root) throws Exception {
        // The probe prints nothing (every module present); a script run echoes its arguments as JSON after some chatter.
        python(root, "if [ \"$1\" = -c ]; then echo; exit 0; fi\n"
                + "case \"$1\" in *bench_ok.py) echo warming up; echo \"{\\\"args\\\": \\\"$2 $3\\\", \\\"tokens_per_second\\\": 12.5}\";;\n"
                + "*bench_fail.py) echo 'Traceback: boom' >&2; exit 3;;\n*) echo 'not json';; esac");
        PythonBaseline py = PythonBaseline.find("test baseline", root, List.of("torch"));
        assertTrue(py.available(), py.missing());
        JsonNode j = py.run("bench_ok.py", List.of("--seqlen", "64"));
        assertEquals("--seqlen 64", j.get("args").asText());
        assertEquals(12.5, j.get("tokens_per_second").asDouble());
        var fail = assertThrows(IllegalStateException.class, () -> py.run("bench_fail.py", List.of()));
        assertEquals("the test baseline (bench_fail.py) failed with exit 3; its error is above", fail.getMessage());
        var garbage = assertThrows(IllegalStateException.class, () -> py.run("bench_garbage.py", List.of()));
        assertTrue(garbage.getMessage().contains("printed no JSON object last: 'not json'"), garbage.getMessage());
    }

    private static void python(Path root, String body) throws Exception {
        Path bin = Files.createDirectories(root.resolve(".venv/bin"));
        Path py = bin.resolve("python");
        Files.writeString(py, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(py, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
}
