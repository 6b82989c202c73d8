package lowbit.eval.tasks;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import lowbit.io.FormatException;
import org.apache.commons.compress.compressors.bzip2.BZip2CompressorInputStream;

/** Line-oriented reading of the shipped task files, every problem reported with the file and its line number. */
final class TaskFiles {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TaskFiles() {}

    /** One line of a file, numbered from 1 as editors and error messages count. */
    record Line(Path file, int number, String text) {
        FormatException error(String problem) {
            return new FormatException(file, "line " + number + ": " + problem);
        }
    }

    /** A parsed JSON object line; fields are read through {@link #text} and {@link #integer} so a gap names its line. */
    record JsonLine(Line line, JsonNode node) {
        String text(String field) {
            JsonNode v = node.get(field);
            if (v == null || !v.isTextual()) throw line.error("expected a string field \"" + field + "\"");
            return v.asText();
        }

        int integer(String field) {
            JsonNode v = node.get(field);
            if (v == null || !v.canConvertToInt() || !v.isIntegralNumber()) throw line.error("expected an integer field \"" + field + "\"");
            return v.asInt();
        }

        List<String> texts(String field, int atLeast) {
            JsonNode v = node.get(field);
            if (v == null || !v.isArray() || v.size() < atLeast)
                throw line.error("expected \"" + field + "\" to be a list of at least " + atLeast + " strings");
            List<String> out = new ArrayList<>();
            for (JsonNode e : v) {
                if (!e.isTextual()) throw line.error("expected \"" + field + "\" to hold strings only");
                out.add(e.asText());
            }
            return out;
        }
    }

    /** The non-empty lines of a UTF-8 file (.bz2 decompressed on the fly). */
    static List<Line> lines(Path file) {
        List<Line> out = new ArrayList<>();
        try (InputStream raw = Files.newInputStream(file);
             InputStream in = file.getFileName().toString().endsWith(".bz2") ? new BZip2CompressorInputStream(raw) : raw;
             BufferedReader r = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8))) {
            String s;
            int n = 0;
            while ((s = r.readLine()) != null) {
                n++;
                out.add(new Line(file, n, s));
            }
        } catch (IOException e) {
            throw new FormatException(file, "cannot be read: " + e.getMessage(), e);
        }
        return out;
    }

    /** Each non-blank line of a JSON-lines file as an object. */
    static List<JsonLine> jsonLines(Path file) {
        List<JsonLine> out = new ArrayList<>();
        for (Line l : lines(file)) {
            if (l.text().isBlank()) continue;
            JsonNode node;
            try {
                node = JSON.readTree(l.text());
            } catch (JsonProcessingException e) {
                throw l.error("not a JSON object (" + e.getOriginalMessage() + ")");
            }
            if (node == null || !node.isObject()) throw l.error("expected a JSON object");
            out.add(new JsonLine(l, node));
        }
        if (out.isEmpty()) throw new FormatException(file, "holds no documents");
        return out;
    }
}
