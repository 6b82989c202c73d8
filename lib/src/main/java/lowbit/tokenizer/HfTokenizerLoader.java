package lowbit.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import lowbit.io.FormatException;

/** Hugging Face tokenizer files: tokenizer.json (BPE models), or GPT-2's vocab.json + merges.txt. */
final class HfTokenizerLoader {
    private static final ObjectMapper JSON = new ObjectMapper();

    private HfTokenizerLoader() {}

    static JsonNode readJson(Path file) {
        try {
            return JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new FormatException(file, "not readable as JSON: " + e.getMessage(), e);
        }
    }

    static Tokenizer fromTokenizerJson(Path file) {
        JsonNode root = readJson(file);
        JsonNode model = root.path("model");
        if (!model.isObject()) throw new FormatException(file, "no \"model\" object");
        String type = model.path("type").asText("BPE");
        if (!type.equals("BPE"))
            throw new FormatException(file, "unsupported tokenizer model type \"" + type + "\" in " + file + " (only BPE is implemented)");
        if (!model.path("vocab").isObject()) throw new FormatException(file, "model.vocab missing or not an object");
        if (!model.path("merges").isArray()) throw new FormatException(file, "model.merges missing or not an array");
        for (String unsupported : List.of("continuing_subword_prefix", "end_of_word_suffix")) {
            String v = model.path(unsupported).asText("");
            if (!v.isEmpty()) throw new FormatException(file, "unsupported BPE option model." + unsupported + " = \"" + v + "\"");
        }
        if (!model.path("dropout").isNull() && !model.path("dropout").isMissingNode() && model.path("dropout").asDouble() > 0)
            throw new FormatException(file, "BPE dropout is not supported (it makes encoding random)");

        Map<String, Integer> vocab = new HashMap<>();
        model.path("vocab").fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        List<String[]> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            if (m.isArray() && m.size() == 2) merges.add(new String[] {m.get(0).asText(), m.get(1).asText()});
            else if (m.isTextual()) merges.add(splitMerge(file, m.asText(), merges.size()));
            else throw new FormatException(file, "merge #" + merges.size() + " is neither \"a b\" nor [a, b]: " + m);
        }

        List<AddedTokens.Token> added = new ArrayList<>();
        Map<Integer, String> addedContent = new LinkedHashMap<>();
        for (JsonNode t : root.path("added_tokens")) {
            int id = t.path("id").asInt(-1);
            String content = t.path("content").asText(null);
            if (id < 0 || content == null) throw new FormatException(file, "added token without id or content: " + t);
            added.add(new AddedTokens.Token(id, content, t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false)));
            addedContent.put(id, content);
        }
        String[] pieces = pieces(file, vocab, addedContent);

        var b = new BpeTokenizer.Builder();
        b.pieces = pieces;
        b.vocab = vocab;
        b.merges = rankTable(file, vocab, merges);
        b.ignoreMerges = model.path("ignore_merges").asBoolean(false);
        b.added = new AddedTokens(added);
        String unk = model.path("unk_token").asText(null);
        if (unk != null && vocab.containsKey(unk)) b.unkId = vocab.get(unk);
        if (model.path("byte_fallback").asBoolean(false)) b.byteIds = byteIds(file, vocab);
        b.normalizer = normalizer(file, root.path("normalizer"));
        List<PreTokenizer.Step> steps = new ArrayList<>();
        boolean[] byteLevel = {false};
        preTokenizer(file, root.path("pre_tokenizer"), steps, byteLevel);
        b.byteLevel = byteLevel[0];
        b.preTokenizer = new PreTokenizer(steps);
        List<Decoder.Step> dsteps = new ArrayList<>();
        decoder(file, root.path("decoder"), dsteps);
        b.decoder = new Decoder(dsteps);

        // BOS: what the post-processor puts in front; BOS/EOS names also from tokenizer_config.json next to it
        JsonNode config = siblingConfig(file);
        int[] front = {-1};
        postProcessorFront(file, root.path("post_processor"), vocab, front);
        b.addsBos = front[0] >= 0;
        b.bos = front[0] >= 0 ? front[0] : tokenId(config.path("bos_token"), vocab);
        b.eos = tokenId(config.path("eos_token"), vocab);
        return b.build();
    }

    /** GPT-2 files as OPT ships them; specials and BOS come from tokenizer_config.json / special_tokens_map.json. */
    static Tokenizer fromVocabAndMerges(Path vocabFile, Path mergesFile) {
        JsonNode v = readJson(vocabFile);
        if (!v.isObject()) throw new FormatException(vocabFile, "expected a JSON object of token -> id");
        Map<String, Integer> vocab = new HashMap<>();
        v.fields().forEachRemaining(e -> vocab.put(e.getKey(), e.getValue().asInt()));
        List<String[]> merges = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(mergesFile)) {
                if (line.startsWith("#version") || line.isBlank()) continue;
                merges.add(splitMerge(mergesFile, line, merges.size()));
            }
        } catch (IOException e) {
            throw new FormatException(mergesFile, "not readable: " + e.getMessage(), e);
        }
        Path dir = vocabFile.getParent();
        JsonNode config = siblingConfig(vocabFile);
        JsonNode specialsMap = Files.exists(dir.resolve("special_tokens_map.json"))
                ? readJson(dir.resolve("special_tokens_map.json")) : JSON.createObjectNode();

        // HF adds the named special tokens (and added_tokens_decoder entries) to the added vocabulary
        Map<Integer, String> addedContent = new LinkedHashMap<>();
        List<AddedTokens.Token> added = new ArrayList<>();
        config.path("added_tokens_decoder").fields().forEachRemaining(e -> {
            int id = Integer.parseInt(e.getKey());
            JsonNode t = e.getValue();
            addedContent.put(id, t.path("content").asText());
            added.add(new AddedTokens.Token(id, t.path("content").asText(), t.path("lstrip").asBoolean(false), t.path("rstrip").asBoolean(false)));
        });
        for (String key : List.of("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")) {
            String content = tokenContent(specialsMap.path(key));
            if (content == null) content = tokenContent(config.path(key));
            if (content == null || addedContent.containsValue(content)) continue;
            Integer id = vocab.get(content);
            if (id == null) throw new FormatException(vocabFile, "special token " + key + " \"" + content + "\" is not in the vocabulary");
            addedContent.put(id, content);
            added.add(new AddedTokens.Token(id, content, false, false));
        }
        var b = new BpeTokenizer.Builder();
        b.pieces = pieces(vocabFile, vocab, addedContent);
        b.vocab = vocab;
        b.merges = rankTable(mergesFile, vocab, merges);
        b.byteLevel = true;
        b.added = new AddedTokens(added);
        b.preTokenizer = new PreTokenizer(List.of(PreTokenizer.byteLevel(config.path("add_prefix_space").asBoolean(false), true)));
        b.decoder = new Decoder(List.of(Decoder.byteLevel()));
        b.bos = tokenId(specialsMap.has("bos_token") ? specialsMap.path("bos_token") : config.path("bos_token"), vocab);
        b.eos = tokenId(specialsMap.has("eos_token") ? specialsMap.path("eos_token") : config.path("eos_token"), vocab);
        b.addsBos = config.path("add_bos_token").asBoolean(false) && b.bos >= 0;
        return b.build();
    }

    private static JsonNode siblingConfig(Path file) {
        Path c = file.toAbsolutePath().getParent().resolve("tokenizer_config.json");
        return Files.exists(c) ? readJson(c) : JSON.createObjectNode();
    }

    private static String tokenContent(JsonNode n) {
        if (n.isTextual()) return n.asText();
        if (n.isObject() && n.path("content").isTextual()) return n.path("content").asText();
        return null;
    }

    private static int tokenId(JsonNode n, Map<String, Integer> vocab) {
        String c = tokenContent(n);
        return c != null && vocab.containsKey(c) ? vocab.get(c) : -1;
    }

    static String[] splitMerge(Path file, String line, int index) {
        int sp = line.indexOf(' ', 1);
        if (sp < 0 || line.indexOf(' ', sp + 1) >= 0)
            throw new FormatException(file, "merge #" + index + " \"" + line + "\" is not two tokens separated by one space");
        return new String[] {line.substring(0, sp), line.substring(sp + 1)};
    }

    /** Id -> text; ids must be dense 0..n-1 over vocab and added tokens together. */
    static String[] pieces(Path file, Map<String, Integer> vocab, Map<Integer, String> added) {
        int n = 0;
        for (int id : vocab.values()) n = Math.max(n, id + 1);
        for (int id : added.keySet()) n = Math.max(n, id + 1);
        String[] pieces = new String[n];
        vocab.forEach((t, id) -> {
            if (id < 0) throw new FormatException(file, "negative id " + id + " for token \"" + t + "\"");
            pieces[id] = t;
        });
        added.forEach((id, t) -> {
            pieces[id] = t;
            vocab.putIfAbsent(t, id);
        });
        return pieces;
    }

    /** Merge rules in file order: rank = index, first rule wins for a duplicated pair (as in HF). */
    static BpeMerger.Table rankTable(Path file, Map<String, Integer> vocab, List<String[]> merges) {
        Map<Long, Long> table = new HashMap<>(merges.size() * 2);
        for (int rank = 0; rank < merges.size(); rank++) {
            String[] m = merges.get(rank);
            Integer a = vocab.get(m[0]), c = vocab.get(m[1]), merged = vocab.get(m[0] + m[1]);
            String missing = a == null ? m[0] : c == null ? m[1] : merged == null ? m[0] + m[1] : null;
            if (missing != null)
                throw new FormatException(file, "merge #" + rank + " \"" + m[0] + " " + m[1] + "\" refers to token \"" + missing + "\" that is not in the vocabulary");
            table.putIfAbsent(((long) a << 32) | (c & 0xFFFFFFFFL), ((long) rank << 32) | merged);
        }
        return (l, r) -> table.getOrDefault(((long) l << 32) | (r & 0xFFFFFFFFL), -1L);
    }

    static int[] byteIds(Path file, Map<String, Integer> vocab) {
        int[] ids = new int[256];
        for (int i = 0; i < 256; i++) {
            Integer id = vocab.get(String.format("<0x%02X>", i));
            if (id == null) throw new FormatException(file, "byte_fallback is on but token <0x" + String.format("%02X", i) + "> is missing");
            ids[i] = id;
        }
        return ids;
    }

    private static UnaryOperator<String> normalizer(Path file, JsonNode n) {
        if (n.isNull() || n.isMissingNode()) return UnaryOperator.identity();
        String type = n.path("type").asText();
        return switch (type) {
            case "Sequence" -> {
                List<UnaryOperator<String>> parts = new ArrayList<>();
                for (JsonNode c : n.path("normalizers")) parts.add(normalizer(file, c));
                yield s -> {
                    for (var p : parts) s = p.apply(s);
                    return s;
                };
            }
            case "Prepend" -> {
                String pre = n.path("prepend").asText();
                yield s -> s.isEmpty() ? s : pre + s;
            }
            case "Replace" -> replace(file, n);
            case "NFC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            case "Lowercase" -> s -> s.toLowerCase(java.util.Locale.ROOT);
            default -> throw new FormatException(file, "unsupported normalizer type \"" + type + "\"");
        };
    }

    private static UnaryOperator<String> replace(Path file, JsonNode n) {
        String content = n.path("content").asText();
        JsonNode p = n.path("pattern");
        if (p.has("String")) {
            String s = p.path("String").asText();
            return t -> t.replace(s, content);
        }
        if (p.has("Regex")) {
            var re = PreTokenizer.compile(p.path("Regex").asText());
            String quoted = java.util.regex.Matcher.quoteReplacement(content);
            return t -> re.matcher(t).replaceAll(quoted);
        }
        throw new FormatException(file, "Replace without String or Regex pattern: " + n);
    }

    private static void preTokenizer(Path file, JsonNode n, List<PreTokenizer.Step> steps, boolean[] byteLevel) {
        if (n.isNull() || n.isMissingNode()) return;
        String type = n.path("type").asText();
        switch (type) {
            case "Sequence" -> {
                for (JsonNode c : n.path("pretokenizers")) preTokenizer(file, c, steps, byteLevel);
            }
            case "ByteLevel" -> {
                byteLevel[0] = true;
                steps.add(PreTokenizer.byteLevel(n.path("add_prefix_space").asBoolean(false), n.path("use_regex").asBoolean(true)));
            }
            case "Split" -> {
                JsonNode p = n.path("pattern");
                String regex = p.has("Regex") ? p.path("Regex").asText()
                        : p.has("String") ? java.util.regex.Pattern.quote(p.path("String").asText()) : null;
                if (regex == null) throw new FormatException(file, "Split pre-tokenizer without pattern: " + n);
                steps.add(PreTokenizer.split(PreTokenizer.compile(regex), behavior(file, n.path("behavior").asText()), n.path("invert").asBoolean(false)));
            }
            case "Digits" -> steps.add(PreTokenizer.isolate(n.path("individual_digits").asBoolean(false) ? "\\p{N}" : "\\p{N}+"));
            case "Metaspace" -> {
                String scheme = n.has("prepend_scheme") ? n.path("prepend_scheme").asText()
                        : n.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                steps.add(PreTokenizer.metaspace(n.path("replacement").asText("▁"), scheme, n.path("split").asBoolean(true)));
            }
            default -> throw new FormatException(file, "unsupported pre_tokenizer type \"" + type + "\"");
        }
    }

    private static PreTokenizer.Behavior behavior(Path file, String name) {
        return switch (name) {
            case "Removed" -> PreTokenizer.Behavior.REMOVED;
            case "Isolated" -> PreTokenizer.Behavior.ISOLATED;
            case "MergedWithPrevious" -> PreTokenizer.Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> PreTokenizer.Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> PreTokenizer.Behavior.CONTIGUOUS;
            default -> throw new FormatException(file, "unknown Split behavior \"" + name + "\"");
        };
    }

    private static void decoder(Path file, JsonNode n, List<Decoder.Step> steps) {
        if (n.isNull() || n.isMissingNode()) return;
        String type = n.path("type").asText();
        switch (type) {
            case "Sequence" -> {
                for (JsonNode c : n.path("decoders")) decoder(file, c, steps);
            }
            case "ByteLevel" -> steps.add(Decoder.byteLevel());
            case "ByteFallback" -> steps.add(Decoder.byteFallback());
            case "Fuse" -> steps.add(Decoder.fuse());
            case "Strip" -> steps.add(Decoder.strip(n.path("content").asText(" ").charAt(0), n.path("start").asInt(0), n.path("stop").asInt(0)));
            case "Replace" -> {
                JsonNode p = n.path("pattern");
                if (!p.has("String")) throw new FormatException(file, "unsupported Replace decoder pattern: " + p);
                steps.add(Decoder.replace(p.path("String").asText(), n.path("content").asText()));
            }
            case "Metaspace" -> {
                String scheme = n.has("prepend_scheme") ? n.path("prepend_scheme").asText()
                        : n.path("add_prefix_space").asBoolean(true) ? "always" : "never";
                steps.add(Decoder.metaspace(n.path("replacement").asText("▁"), !scheme.equals("never")));
            }
            default -> throw new FormatException(file, "unsupported decoder type \"" + type + "\"");
        }
    }

    /** The id the post-processor puts before the text, if any. */
    private static void postProcessorFront(Path file, JsonNode n, Map<String, Integer> vocab, int[] front) {
        if (n.isNull() || n.isMissingNode()) return;
        String type = n.path("type").asText();
        switch (type) {
            case "Sequence" -> {
                for (JsonNode c : n.path("processors")) postProcessorFront(file, c, vocab, front);
            }
            case "ByteLevel" -> {}
            case "TemplateProcessing" -> {
                JsonNode single = n.path("single");
                if (single.size() > 0 && single.get(0).has("SpecialToken")) {
                    String name = single.get(0).path("SpecialToken").path("id").asText();
                    JsonNode ids = n.path("special_tokens").path(name).path("ids");
                    if (ids.size() > 0) front[0] = ids.get(0).asInt();
                    else if (vocab.containsKey(name)) front[0] = vocab.get(name);
                    else throw new FormatException(file, "post_processor special token \"" + name + "\" has no id");
                }
            }
            case "RobertaProcessing", "BertProcessing" -> front[0] = n.path("cls").get(1).asInt();
            default -> throw new FormatException(file, "unsupported post_processor type \"" + type + "\"");
        }
    }
}
