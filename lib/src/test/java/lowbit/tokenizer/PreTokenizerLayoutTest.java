package lowbit.tokenizer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Llama-3 and Qwen2 layouts (Split regex + ByteLevel without regex, ignore_merges, BOS template) on small
 * BPEs trained by the fixture generator, checked against HF tokenizers; and the same vocabularies as GGUF
 * metadata with llama.cpp's "llama-bpe" / "qwen2" pre-tokenizers, which must agree with them.
 */
class PreTokenizerLayoutTest {

    @Test
    void llama3LayoutTokenizerJson() throws Exception {
        JsonNode fx = Fixtures.json("llama3-mini.json");
        Tokenizer tok = Tokenizers.fromTokenizerJson(Fixtures.resource("llama3-mini/tokenizer.json"));
        assertTrue(tok.addsBos());
        assertEquals(0, tok.bosId().getAsInt());
        ReferenceTokenizerTest.assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    @Test
    void qwen2LayoutTokenizerJson() throws Exception {
        JsonNode fx = Fixtures.json("qwen2-mini.json");
        Tokenizer tok = Tokenizers.fromTokenizerJson(Fixtures.resource("qwen2-mini/tokenizer.json"));
        assertFalse(tok.addsBos());
        ReferenceTokenizerTest.assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    @Test
    void llamaBpeGgufPreTokenizer() throws Exception {
        JsonNode fx = Fixtures.json("llama3-mini.json");
        Tokenizer tok = Tokenizers.fromGguf(Path.of("llama3-mini.gguf"), asGguf("llama3-mini/tokenizer.json", "llama-bpe", true));
        assertTrue(tok.addsBos());
        ReferenceTokenizerTest.assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    @Test
    void qwen2GgufPreTokenizer() throws Exception {
        JsonNode fx = Fixtures.json("qwen2-mini.json");
        Tokenizer tok = Tokenizers.fromGguf(Path.of("qwen2-mini.gguf"), asGguf("qwen2-mini/tokenizer.json", "qwen2", false));
        assertFalse(tok.addsBos());
        ReferenceTokenizerTest.assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    /** What convert_hf_to_gguf.py writes for a byte-level BPE: tokens by id, "a b" merges, specials as CONTROL. */
    static Map<String, Object> asGguf(String tokenizerJson, String pre, boolean addBos) throws Exception {
        JsonNode root = Fixtures.json(tokenizerJson);
        Map<Integer, String> byId = new HashMap<>();
        root.path("model").path("vocab").fields().forEachRemaining(e -> byId.put(e.getValue().asInt(), e.getKey()));
        List<Object> tokens = new ArrayList<>(), types = new ArrayList<>(), merges = new ArrayList<>();
        for (int i = 0; i < byId.size(); i++) {
            tokens.add(byId.get(i));
            types.add(1);
        }
        for (JsonNode t : root.path("added_tokens")) types.set(t.path("id").asInt(), 3);
        for (JsonNode m : root.path("model").path("merges")) merges.add(m.get(0).asText() + " " + m.get(1).asText());
        Map<String, Object> md = new HashMap<>();
        md.put("tokenizer.ggml.model", "gpt2");
        md.put("tokenizer.ggml.pre", pre);
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.merges", merges);
        md.put("tokenizer.ggml.bos_token_id", 0L);
        md.put("tokenizer.ggml.eos_token_id", 1);
        md.put("tokenizer.ggml.add_bos_token", addBos);
        return md;
    }
}
