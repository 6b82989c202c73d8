package lowbit.cli;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A Python reference run next to a benchmark: environment/SCRIPT under .venv's python, its stderr streamed to
 * the terminal (progress), its last stdout line read as one JSON object. {@link #find} says up front whether
 * .venv exists and has the modules the script imports, naming the missing ones, so a benchmark can skip the
 * baseline (or refuse, when the user asked for it) before timing anything.
 */
final class PythonBaseline {
    private static final String FIND_SPECS = "import importlib.util, sys; "
            + "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m) is None))";

    private final String name;
    private final Path root;
    private final Path python;
    private final String missing;

    private PythonBaseline(String name, Path root, Path python, String missing) {
        this.name = name;
        this.root = root;
        this.python = python;
        this.missing = missing;
    }

    /** The baseline called {@code name} ("transformers baseline"), needing {@code modules}, under the checkout's .venv. */
    static PythonBaseline find(String name, List<String> modules) {
        return find(name, Path.of(System.getProperty("lowbit.root", ".")), modules);
    }

    static PythonBaseline find(String name, Path root, List<String> modules) {
        return find(name, root, root.resolve(".venv/bin/python"), modules);
    }

    /** The baseline under another interpreter (a reference environment outside the checkout); scripts still come from root. */
    static PythonBaseline find(String name, Path root, Path python, List<String> modules) {
        if (!Files.isExecutable(python))
            return new PythonBaseline(name, root, python, name + " needs " + python + " (./lowbit setup --reference creates it with "
                    + String.join(" and ", modules) + ")");
        List<String> cmd = new ArrayList<>(List.of(python.toString(), "-c", FIND_SPECS));
        cmd.addAll(modules);
        String absent;
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (p.waitFor() != 0) return new PythonBaseline(name, root, python, name + ": " + python + " does not run (" + lastLine(out) + ")");
            absent = out;
        } catch (IOException e) {
            return new PythonBaseline(name, root, python, name + ": cannot start " + python + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while checking " + python, e);
        }
        return new PythonBaseline(name, root, python, absent.isEmpty() ? null
                : name + " needs " + absent.replace(" ", " and ") + " in .venv (./lowbit setup --reference installs "
                + (absent.contains(" ") ? "them)" : "it)"));
    }

    boolean available() {
        return missing == null;
    }

    /** Why the baseline cannot run, or null when it can. */
    String missing() {
        return missing;
    }

    /** Runs environment/{@code script} with {@code args}; its last stdout line must be a JSON object. */
    JsonNode run(String script, List<String> args) {
        if (missing != null) throw new IllegalStateException(missing);
        List<String> cmd = new ArrayList<>(List.of(python.toString(), root.resolve("environment").resolve(script).toString()));
        cmd.addAll(args);
        System.err.println("lowbit: running the " + name + ": " + String.join(" ", cmd));
        String out;
        int exit;
        try {
            Process p = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
            out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            exit = p.waitFor();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run the " + name + " (" + script + "): " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while running the " + name, e);
        }
        if (exit != 0) throw new IllegalStateException("the " + name + " (" + script + ") failed with exit " + exit + "; its error is above");
        String last = lastLine(out);
        try {
            JsonNode j = new ObjectMapper().readTree(last);
            if (j == null || !j.isObject()) throw new IllegalStateException("the " + name + " (" + script + ") printed no JSON object last: '" + last + "'");
            return j;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("the " + name + " (" + script + ") printed no JSON object last: '" + last + "'");
        }
    }

    private static String lastLine(String out) {
        return out.strip().lines().reduce((a, b) -> b).orElse("");
    }
}
