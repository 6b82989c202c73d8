package lowbit.tokenizer;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerErrorsTest {
    @TempDir
    Path dir;

    private FormatException loadFails(String json) throws Exception {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, json.replace('\'', '"'));
        FormatException e = assertThrows(FormatException.class, () -> Tokenizers.fromDirectory(dir));
        assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
        return e;
    }

    private static void assertMentions(Exception e, String... parts) {
        for (String p : parts) assertTrue(e.getMessage().contains(p), () -> "\"" + e.getMessage() + "\" should mention " + p);
    }

    @Test
    void missingVocab() throws Exception {
        assertMentions(loadFails("{'model':{'type':'BPE','merges':[]}}"), "model.vocab");
    }

    @Test
    void unsupportedModelTypes() throws Exception {
        assertMentions(loadFails("{'model':{'type':'Unigram','vocab':[['a',0.0]]}}"), "unsupported tokenizer model type \"Unigram\" in ");
        assertMentions(loadFails("{'model':{'type':'WordPiece','vocab':{'a':0}}}"), "unsupported tokenizer model type \"WordPiece\"");
    }

    @Test
    void mergeOfUnknownToken() throws Exception {
        assertMentions(loadFails("{'model':{'type':'BPE','vocab':{'a':0,'b':1,'ab':2},'merges':['a b','a z']}}"), "merge #1", "\"z\"", "not in the vocabulary");
        assertMentions(loadFails("{'model':{'type':'BPE','vocab':{'a':0,'b':1},'merges':[['a','b']]}}"), "merge #0", "\"ab\"");
        assertMentions(loadFails("{'model':{'type':'BPE','vocab':{'a':0},'merges':['a b c']}}"), "merge #0");
    }

    @Test
    void notJsonAndUnknownComponents() throws Exception {
        assertMentions(loadFails("{'model':"), "not readable as JSON");
        assertMentions(loadFails("{'pre_tokenizer':{'type':'Whitespace'},'model':{'type':'BPE','vocab':{'a':0},'merges':[]}}"), "pre_tokenizer type \"Whitespace\"");
    }

    @Test
    void emptyDirectory() {
        FormatException e = assertThrows(FormatException.class, () -> Tokenizers.fromDirectory(dir));
        assertMentions(e, "tokenizer.json", "vocab.json");
    }

    private static Map<String, Object> gpt2Metadata() {
        Map<String, Object> md = new HashMap<>();
        md.put("tokenizer.ggml.model", "gpt2");
        md.put("tokenizer.ggml.pre", "gpt-2");
        md.put("tokenizer.ggml.tokens", List.of("a", "b", "ab"));
        md.put("tokenizer.ggml.merges", List.of("a b"));
        return md;
    }

    @Test
    void ggufMetadataProblems() {
        Path file = Path.of("broken.gguf");
        assertTrue(Tokenizers.fromGguf(file, gpt2Metadata()).encode("ab").length == 1);

        var md = gpt2Metadata();
        md.remove("tokenizer.ggml.tokens");
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md)), "broken.gguf", "tokenizer.ggml.tokens");

        var md2 = gpt2Metadata();
        md2.put("tokenizer.ggml.pre", "falcon");
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md2)), "broken.gguf", "tokenizer.ggml.pre \"falcon\"");

        var md3 = gpt2Metadata();
        md3.put("tokenizer.ggml.model", "bert");
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md3)), "tokenizer.ggml.model \"bert\"");

        var md4 = gpt2Metadata();
        md4.put("tokenizer.ggml.tokens", List.of("a", 7, "ab"));
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md4)), "tokenizer.ggml.tokens[1]");

        var md5 = gpt2Metadata();
        md5.remove("tokenizer.ggml.merges");
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md5)), "tokenizer.ggml.merges");

        var md6 = gpt2Metadata();
        md6.put("tokenizer.ggml.merges", List.of("a c"));
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md6)), "merge #0", "\"c\"");

        var md7 = gpt2Metadata();
        md7.put("tokenizer.ggml.model", "llama");
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromGguf(file, md7)), "tokenizer.ggml.scores");
    }

    @Test
    void truncatedLlama2cTokenizer() throws Exception {
        byte[] full = Files.readAllBytes(DataDir.require("models/stories260K/tok512.bin"));
        Path cut = dir.resolve("tok512.bin");
        Files.write(cut, java.util.Arrays.copyOf(full, full.length / 2));
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromLlama2c(cut, 512)), cut.toString(), "ends at token");
        Path whole = dir.resolve("whole.bin");
        Files.write(whole, full);
        assertMentions(assertThrows(FormatException.class, () -> Tokenizers.fromLlama2c(whole, 600)), "ends at token 512 of 600");
    }
}
