package lowbit.calibration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.Hashing;

/**
 * The documents calibration windows are cut from, in file order.
 *
 * <ul>
 *   <li>"c4" (also "c4-train-slice"): the first 1000 documents of C4 train shard 00000 shipped in the data
 *       directory; recorded as "c4-train-slice" because it is not the shard the reference samples from.
 *   <li>"tasks": the zero-shot task files of the data directory (ARC, BoolQ, LAMBADA, PIQA, WinoGrande), one
 *       document per example, its text as a reader would see it answered: the question or context followed by
 *       the gold answer; "tasks:NAME" (e.g. "tasks:lambada_openai"): one task file, a single-domain source.
 *   <li>a {@code .jsonl} file: one document per non-blank line, its "text" string.
 *   <li>any other file, read as UTF-8 plain text: one document per paragraph, paragraphs being separated by one or
 *       more blank (empty or whitespace-only) lines; a paragraph's lines are joined with "\n", line ends
 *       {@code \r\n} read as {@code \n}.
 * </ul>
 *
 * @param name   "c4-train-slice" or the path as given
 * @param file   the file read
 * @param sha256 of the file
 * @param texts  the documents
 */
public record Documents(String name, Path file, String sha256, List<String> texts) {
    public static final String C4 = "c4-train-slice";
    public static final String C4_FILE = "c4/c4_en_train00000_first1000.jsonl";

    public Documents {
        texts = List.copyOf(texts);
    }

    public int size() {
        return texts.size();
    }

    /** "c4" / "c4-train-slice" from the data directory, else a path to a jsonl or plain text file. */
    public static Documents load(String source) {
        if (source == null || source.isBlank()) throw new IllegalArgumentException("calibration source is empty");
        if (source.equals("c4") || source.equals(C4)) return read(C4, DataDir.require(C4_FILE));
        if (source.equals("tasks")) return tasks(TASKS);
        if (source.startsWith("tasks:")) {
            String name = source.substring("tasks:".length());
            if (!TASKS.contains(name))
                throw new IllegalArgumentException("calibration source '" + source + "': unknown task file; known: " + TASKS);
            return tasks(List.of(name));
        }
        Path p = Path.of(source);
        if (!Files.isRegularFile(p))
            throw new FormatException(p, "calibration source not found: expected \"c4\", a .jsonl file with a \"text\""
                    + " field per line, or a plain text file");
        return read(source, p);
    }

    /** The task files "tasks" draws from, in this order. */
    public static final List<String> TASKS = List.of("arc_challenge", "arc_easy", "boolq", "lambada_openai", "piqa", "winogrande");

    private static Documents tasks(List<String> names) {
        List<String> docs = new ArrayList<>();
        StringBuilder shas = new StringBuilder();
        Path last = null;
        for (String name : names) {
            Path file = DataDir.require("tasks/" + name + ".jsonl");
            last = file;
            shas.append(name).append(' ').append(Hashing.sha256(file)).append('\n');
            ObjectMapper json = new ObjectMapper();
            int lineNo = 0;
            try {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    lineNo++;
                    if (line.isBlank()) continue;
                    docs.add(taskText(json.readTree(line)));
                }
            } catch (IOException | RuntimeException e) {
                throw new FormatException(file, "line " + lineNo + ": not a task example with query/choices/gold, "
                        + "context/continuation or context_options/continuation/gold: " + e.getMessage());
            }
        }
        String name = names.size() == 1 ? "tasks:" + names.get(0) : "tasks";
        Path file = names.size() == 1 ? last : last.getParent();
        String sha = names.size() == 1 ? Hashing.sha256(last)
                : lowbit.results.Row.hash(shas.toString());
        return new Documents(name, file, sha, docs);
    }

    /** An example as answered text: the gold choice after its question, or the continuation after its context. */
    static String taskText(JsonNode ex) {
        if (ex.has("context_options")) return ex.get("context_options").get(ex.get("gold").asInt()).asText() + " " + ex.get("continuation").asText();
        if (ex.has("context")) return ex.get("context").asText() + " " + ex.get("continuation").asText();
        if (ex.has("choices") && ex.has("gold")) return ex.get("query").asText() + " " + ex.get("choices").get(ex.get("gold").asInt()).asText();
        if (ex.has("query")) return ex.get("query").asText();
        throw new IllegalArgumentException("no query, context or context_options field");
    }

    public static Documents read(Path file) {
        return read(file.toString(), file);
    }

    private static Documents read(String name, Path file) {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().decode(ByteBuffer.wrap(Files.readAllBytes(file))).toString();
        } catch (CharacterCodingException e) {
            throw new FormatException(file, "is not UTF-8 text");
        } catch (IOException e) {
            throw new FormatException(file, "cannot be read: " + e.getMessage(), e);
        }
        List<String> docs = file.getFileName().toString().endsWith(".jsonl") ? jsonl(file, text) : paragraphs(text);
        if (docs.isEmpty()) throw new FormatException(file, "has no documents (no text to calibrate on)");
        return new Documents(name, file, Hashing.sha256(file), docs);
    }

    private static List<String> jsonl(Path file, String text) {
        ObjectMapper json = new ObjectMapper();
        List<String> docs = new ArrayList<>();
        int lineNo = 0;
        for (String line : text.split("\r?\n", -1)) {
            lineNo++;
            if (line.isBlank()) continue;
            JsonNode doc;
            try {
                doc = json.readTree(line);
            } catch (IOException e) {
                throw new FormatException(file, "line " + lineNo + " is not JSON: " + e.getMessage());
            }
            JsonNode t = doc == null ? null : doc.get("text");
            if (t == null || !t.isTextual()) throw new FormatException(file, "line " + lineNo + " has no \"text\" string");
            docs.add(t.asText());
        }
        return docs;
    }

    static List<String> paragraphs(String text) {
        List<String> docs = new ArrayList<>();
        StringBuilder para = new StringBuilder();
        for (String line : text.split("\r?\n", -1)) {
            if (line.isBlank()) {
                if (!para.isEmpty()) docs.add(para.toString());
                para.setLength(0);
            } else {
                if (!para.isEmpty()) para.append('\n');
                para.append(line);
            }
        }
        if (!para.isEmpty()) docs.add(para.toString());
        return docs;
    }
}
