package lowbit.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;

/** Our tokenizers against the reference libraries' outputs (see environment/fixtures/make_tokenizer_fixtures.py). */
class ReferenceTokenizerTest {

    static void assertCases(Tokenizer tok, JsonNode cases) {
        assertTrue(cases.size() > 10);
        for (JsonNode c : cases) {
            String text = c.path("text").asText();
            int[] ids = tok.encode(text);
            assertArrayEquals(Fixtures.ints(c.path("ids")), ids, () -> "ids of " + quote(text));
            if (c.has("input_ids"))
                assertArrayEquals(Fixtures.ints(c.path("input_ids")), tok.encodeWithSpecials(text), () -> "input_ids of " + quote(text));
            if (c.has("decoded"))
                assertEquals(c.path("decoded").asText(), tok.decode(ids), () -> "decode of " + quote(text));
        }
    }

    private static String quote(String s) {
        return "\"" + s.replace("\n", "\\n").replace("\t", "\\t") + "\"";
    }

    static Tokenizer opt() {
        return Tokenizers.fromDirectory(DataDir.require("models/opt-125m-tokenizer"));
    }

    static Tokenizer smollm2() throws Exception {
        Path gguf = DataDir.defaultModel();
        return Tokenizers.fromGguf(gguf, GgufTestMetadata.read(gguf));
    }

    static Tokenizer tok512() {
        return Tokenizers.fromLlama2c(DataDir.require("models/stories260K/tok512.bin"), 512);
    }

    @Test
    void optMatchesTransformersOnShortTexts() throws Exception {
        JsonNode fx = Fixtures.json("opt.json");
        Tokenizer tok = opt();
        assertEquals(2, fx.path("bos_id").asInt());
        assertEquals(2, tok.bosId().getAsInt());
        assertEquals(2, tok.eosId().getAsInt());
        assertTrue(tok.addsBos());
        assertEquals(50265, tok.vocabSize());
        assertCases(tok, fx.path("cases"));
    }

    @Test
    void optMatchesTransformersOnWholeWikitext() throws Exception {
        Fixtures.assertWhole(Fixtures.json("opt.json").path("wikitext"), opt().encode(Fixtures.wikitext()));
    }

    /**
     * The reference is SmolLM2's own pre-tokenizer (digits isolated, then GPT-2 byte-level), which is also
     * llama.cpp's "smollm". transformers' GGUF import drops the digit step; see the next test.
     */
    @Test
    void smollm2FromGgufMatchesItsReferenceTokenizerOnShortTexts() throws Exception {
        JsonNode fx = Fixtures.json("smollm2.json");
        Tokenizer tok = smollm2();
        assertEquals(fx.path("transformers_gguf").path("bos_id").asInt(), tok.bosId().getAsInt());
        assertEquals(fx.path("transformers_gguf").path("eos_id").asInt(), tok.eosId().getAsInt());
        assertFalse(tok.addsBos());
        assertEquals(49152, tok.vocabSize());
        assertCases(tok, fx.path("smollm2_pretokenizer").path("cases"));
    }

    @Test
    void smollm2FromGgufMatchesItsReferenceTokenizerOnWholeWikitext() throws Exception {
        Fixtures.assertWhole(Fixtures.json("smollm2.json").path("smollm2_pretokenizer").path("wikitext"), smollm2().encode(Fixtures.wikitext()));
    }

    /** transformers' GGUF import agrees wherever no digit follows a non-digit inside one GPT-2 word (" ²³", "2½"). */
    @Test
    void smollm2DiffersFromTransformersGgufImportOnlyAroundDigits() throws Exception {
        JsonNode fx = Fixtures.json("smollm2.json").path("transformers_gguf");
        Tokenizer tok = smollm2();
        int differing = 0;
        for (JsonNode c : fx.path("cases")) {
            String text = c.path("text").asText();
            boolean same = java.util.Arrays.equals(Fixtures.ints(c.path("ids")), tok.encode(text));
            if (!same) {
                differing++;
                assertTrue(text.matches("(?s).*[^\\p{N}]\\p{N}.*"), () -> "differs from transformers on " + text);
            }
        }
        assertEquals(2, differing, "cases where transformers' GGUF import splits digits differently");
        int[] first = Fixtures.ints(fx.path("wikitext").path("first"));
        int[] ours = tok.encode(Fixtures.wikitextHead(60));
        assertArrayEquals(first, java.util.Arrays.copyOf(ours, first.length));
    }

    @Test
    void chatTemplateSpecialsAreSplitOut() throws Exception {
        Tokenizer tok = smollm2();
        int[] ids = tok.encode("<|im_start|>user\nhi<|im_end|>");
        assertEquals(1, ids[0]);
        assertEquals(2, ids[ids.length - 1]);
        assertEquals("<|im_start|>user\nhi<|im_end|>", tok.decode(ids));
    }

    @Test
    void llama2cTok512MatchesSentencepiece() throws Exception {
        JsonNode fx = Fixtures.json("tok512-sp.json");
        Tokenizer tok = tok512();
        assertEquals(512, tok.vocabSize());
        assertEquals(1, tok.bosId().getAsInt());
        assertTrue(tok.addsBos());
        assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
        Fixtures.assertWhole(fx.path("wikitext"), tok.encode(Fixtures.wikitext()));
    }

    @Test
    void llamaStyleTokenizerJsonMatchesHfTokenizers() throws Exception {
        JsonNode fx = Fixtures.json("tok512-hf.json");
        Tokenizer tok = Tokenizers.fromTokenizerJson(Fixtures.resource("tok512-hf/tokenizer.json"));
        assertTrue(tok.addsBos());
        assertEquals(1, tok.bosId().getAsInt());
        assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    /** GGUF "llama" vocabularies: llama.cpp's SPM tokenizer behaves like HF's legacy Llama tokenizer.json. */
    @Test
    void ggufLlamaVocabularyMatchesHfTokenizers() throws Exception {
        Tokenizer tok = Tokenizers.fromGguf(Path.of("tok512.gguf"), tok512Metadata());
        JsonNode fx = Fixtures.json("tok512-hf.json");
        assertTrue(tok.addsBos());
        assertCases(tok, fx.path("cases"));
        Fixtures.assertWhole(fx.path("wiki200"), tok.encode(Fixtures.wikitextHead(200)));
    }

    static Map<String, Object> tok512Metadata() throws Exception {
        JsonNode v = Fixtures.json("tok512-vocab.json");
        List<Object> tokens = new ArrayList<>(), scores = new ArrayList<>(), types = new ArrayList<>();
        v.path("tokens").forEach(t -> tokens.add(t.asText()));
        v.path("scores").forEach(t -> scores.add((float) t.asDouble()));
        v.path("types").forEach(t -> types.add(t.asInt()));
        Map<String, Object> md = new HashMap<>();
        md.put("tokenizer.ggml.model", "llama");
        md.put("tokenizer.ggml.tokens", tokens);
        md.put("tokenizer.ggml.scores", scores);
        md.put("tokenizer.ggml.token_type", types);
        md.put("tokenizer.ggml.bos_token_id", 1);
        md.put("tokenizer.ggml.eos_token_id", 2L);
        md.put("tokenizer.ggml.unknown_token_id", 0);
        return md;
    }

    @Test
    void encodesWholeWikitextQuickly() throws Exception {
        String text = Fixtures.wikitext();
        for (Tokenizer tok : List.of(opt(), smollm2(), tok512())) {
            long t0 = System.nanoTime();
            int[] ids = tok.encode(text);
            double s = (System.nanoTime() - t0) / 1e9;
            System.out.printf("encoded wikitext-2 test (%d chars) into %d tokens in %.2f s%n", text.length(), ids.length, s);
            assertTrue(s < 10, "took " + s + " s");
        }
    }
}
