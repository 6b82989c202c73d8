package lowbit.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.Hashing;

/** The evaluation texts by name, each read exactly as the GPTQ protocol reads it (METHODS.md section 1). */
public final class TextDatasets {
    private TextDatasets() {}

    public static final List<String> NAMES = List.of("wikitext2", "c4-train-slice");

    /** A text to be tokenized once as one string, with the sha256 of the file(s) it came from. */
    public record Text(String name, String text, String sha256, String protocol) {}

    public static Text load(String name) {
        return switch (name) {
            case "wikitext2" -> {
                Path p = DataDir.require("wikitext-2-raw/wiki.test.raw");
                yield new Text(name, read(p), Hashing.sha256(p),
                        "wiki.test.raw read whole, tokenized once, non-overlapping windows, every position scored");
            }
            case "c4-train-slice" -> {
                Path p = DataDir.require("c4/c4_en_train00000_first1000.jsonl");
                yield new Text(name, joinC4(p), Hashing.sha256(p),
                        "first 1000 C4 train documents joined with ' ' (as GPTQ's datautils builds its C4 eval text),"
                                + " tokenized once, first 256 windows, every position scored");
            }
            default -> throw new IllegalArgumentException("unknown dataset '" + name + "' (known: " + NAMES + ")");
        };
    }

    /** Windows the protocol evaluates at most (GPTQ's C4 eval keeps 256 x seqlen tokens); 0 means all. */
    public static int protocolWindowCap(String name) {
        return name.equals("c4-train-slice") ? 256 : 0;
    }

    static String joinC4(Path p) {
        ObjectMapper json = new ObjectMapper();
        StringBuilder sb = new StringBuilder();
        try (BufferedReader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
            String line;
            int n = 0;
            while ((line = r.readLine()) != null) {
                n++;
                if (line.isBlank()) continue;
                JsonNode doc;
                try {
                    doc = json.readTree(line);
                } catch (JsonProcessingException e) {
                    throw new FormatException(p, "line " + n + ", column " + e.getLocation().getColumnNr() + ": not JSON: "
                            + e.getOriginalMessage());
                }
                JsonNode text = doc.get("text");
                if (text == null || !text.isTextual()) throw new FormatException(p, "line " + n + " has no \"text\" string");
                if (!sb.isEmpty()) sb.append(' ');
                sb.append(text.asText());
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + p, e);
        }
        return sb.toString();
    }

    static String read(Path p) {
        try {
            return Files.readString(p, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + p, e);
        }
    }
}
