package lowbit.studies;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import jdk.jshell.JShell;
import jdk.jshell.Snippet;
import jdk.jshell.SnippetEvent;
import jdk.jshell.SourceCodeAnalysis;
import lowbit.io.DataDir;
import lowbit.quant.BitsMap;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Notebook 04's code cells, run in order in JShell at the CI size of notebooks/small-parameters.json (stories260K), with
 * the kernel's imports: every snippet must compile and run, and the bits map it writes must be readable. The kernel's
 * display hooks are left out (the cells' last expressions are evaluated, not drawn).
 */
class Notebook04Test {
    static final String NOTEBOOK = "04-sensitivity-mixed-precision";

    @Test
    void everyCellRunsAtTheSmallSize(@TempDir Path tmp) throws Exception {
        assumeTrue(Files.exists(DataDir.root().resolve("models/stories260K/stories260K.bin")), "stories260K not in the data directory");
        Path root = root();
        ObjectMapper json = new ObjectMapper();
        JsonNode nb = json.readTree(root.resolve("notebooks").resolve(NOTEBOOK + ".ipynb").toFile());
        JsonNode small = json.readTree(root.resolve("notebooks/small-parameters.json").toFile()).path(NOTEBOOK);
        assertTrue(small.isObject(), "small-parameters.json has no entry for " + NOTEBOOK);
        Path bitsMap = tmp.resolve("04-bits-map.json");

        List<String> cells = new ArrayList<>();
        StringBuilder imports = new StringBuilder();
        for (String line : Files.readAllLines(root.resolve("environment/notebook-startup.jshell")))
            if (line.startsWith("import ") && !line.contains("jjava")) imports.append(line).append('\n');
        cells.add(imports.toString());
        for (JsonNode cell : nb.path("cells")) {
            if (!cell.path("cell_type").asText().equals("code")) continue;
            assertEquals(0, cell.path("outputs").size(), "the committed notebook's outputs are empty (the lead regenerates them)");
            StringBuilder src = new StringBuilder();
            for (JsonNode l : cell.path("source")) src.append(l.asText());
            cells.add(src.toString());
            boolean parameters = false;
            for (JsonNode t : cell.path("metadata").path("tags")) parameters |= t.asText().equals("parameters");
            if (parameters) {
                StringBuilder injected = new StringBuilder();
                for (Iterator<Map.Entry<String, JsonNode>> it = small.fields(); it.hasNext(); ) {
                    var e = it.next();
                    String value = e.getKey().equals("BITS_MAP") ? "\"" + bitsMap.toString().replace("\\", "\\\\") + "\"" : e.getValue().asText();
                    injected.append(e.getKey()).append(" = ").append(value).append(";\n");
                }
                cells.add(injected.toString());
            }
        }

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        StringBuilder trace = new StringBuilder();
        // the local execution engine runs snippets in this JVM: what cells print goes to System.out
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        try (JShell shell = JShell.builder().executionEngine("local").out(new PrintStream(out, true, StandardCharsets.UTF_8))
                .err(new PrintStream(out, true, StandardCharsets.UTF_8)).compilerOptions("--add-modules", "jdk.incubator.vector").build()) {
            String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
            for (String entry : cp.split(File.pathSeparator)) if (!entry.isBlank()) shell.addToClasspath(entry);
            SourceCodeAnalysis analysis = shell.sourceCodeAnalysis();
            for (String cell : cells) {
                String rest = cell;
                while (!rest.isBlank()) {
                    SourceCodeAnalysis.CompletionInfo info = analysis.analyzeCompletion(rest);
                    String snippet = info.source() == null ? rest : info.source();
                    for (SnippetEvent e : shell.eval(snippet)) {
                        trace.append(e.status()).append(": ").append(e.snippet().source().strip()).append(" => ").append(e.value()).append('\n');
                        String diagnostics = shell.diagnostics(e.snippet()).map(d -> d.getMessage(null)).toList().toString();
                        assertNotEquals(Snippet.Status.REJECTED, e.status(), "rejected: " + snippet + "\n" + diagnostics);
                        if (e.exception() != null) fail("the cell threw " + e.exception() + " at\n" + snippet + "\nsnippets:\n" + trace + "output:\n" + out);
                    }
                    rest = info.remaining();
                }
            }
        } finally {
            System.setOut(stdout);
        }
        String printed = out.toString(StandardCharsets.UTF_8);
        System.out.print(printed);
        assertTrue(printed.contains("35 linears, each measured alone at 3 bits on 252 tokens"), printed);
        assertTrue(printed.contains("Mixed precision beats uniform, with a paired 95% interval below zero, in "), printed);
        assertEquals(35, BitsMap.read(bitsMap).layers().size(), "the bits map lists every linear of stories260K");
    }

    /** The repository root: the directory holding the lowbit launcher and notebooks/. */
    static Path root() {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent())
            if (Files.isDirectory(dir.resolve("notebooks")) && Files.isRegularFile(dir.resolve("lowbit"))) return dir;
        throw new IllegalStateException("no notebooks/ beside a lowbit launcher above " + Path.of("").toAbsolutePath());
    }
}
