package lowbit.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Tiny tokenizer.json files whose encodings are worked out by hand in the comments. */
class HandBuiltTokenizerTest {
    @TempDir
    Path dir;

    private Tokenizer load(String json) throws Exception {
        Path f = dir.resolve("tokenizer.json");
        Files.writeString(f, json.replace('\'', '"'));
        return Tokenizers.fromDirectory(dir);
    }

    private static final String VOCAB = "{'a':0,'b':1,'c':2,'Ġ':3,'1':4,'2':5,'ab':6,'abc':7,'Ġab':8,'bc':10}";

    @Test
    void byteLevelMergesByRankWithAddedTokensAndBosTemplate() throws Exception {
        Tokenizer tok = load("{'added_tokens':[{'id':9,'content':'<|x|>','special':true}],"
                + "'pre_tokenizer':{'type':'ByteLevel','add_prefix_space':false,'use_regex':true},"
                + "'post_processor':{'type':'TemplateProcessing','single':[{'SpecialToken':{'id':'<|x|>','type_id':0}},{'Sequence':{'id':'A','type_id':0}}],"
                + "'special_tokens':{'<|x|>':{'id':'<|x|>','ids':[9],'tokens':['<|x|>']}}},"
                + "'decoder':{'type':'ByteLevel'},"
                + "'model':{'type':'BPE','vocab':" + VOCAB + ",'merges':['a b','ab c','Ġ ab','b c']}}");
        // words "abc" -> ab c -> abc (7); " ab" -> Ġ a b -> Ġ ab -> Ġab (8); "12" has no merge (4 5);
        // the added token cuts the text (9); "c" (2)
        int[] ids = tok.encode("abc ab12<|x|>c");
        assertArrayEquals(new int[] {7, 8, 4, 5, 9, 2}, ids);
        assertArrayEquals(new int[] {9, 7, 8, 4, 5, 9, 2}, tok.encodeWithSpecials("abc ab12<|x|>c"));
        assertEquals("abc ab12<|x|>c", tok.decode(ids));
        assertTrue(tok.addsBos());
        assertEquals(9, tok.bosId().getAsInt());
        assertEquals(11, tok.vocabSize());
    }

    @Test
    void lowerRankMergesFirst() throws Exception {
        // "b c" outranks "a b", so "abc" becomes a + bc; nothing merges a with bc
        Tokenizer tok = load("{'pre_tokenizer':{'type':'Sequence','pretokenizers':[{'type':'Digits','individual_digits':true},"
                + "{'type':'ByteLevel','add_prefix_space':false,'use_regex':false}]},"
                + "'model':{'type':'BPE','vocab':" + VOCAB + ",'merges':[['b','c'],['a','b'],['ab','c']]}}");
        assertArrayEquals(new int[] {0, 10}, tok.encode("abc"));
        // without the regex, the space stays with "a b"; digits are isolated and do not merge anyway
        assertArrayEquals(new int[] {3, 6, 4, 5, 4}, tok.encode(" ab121"));
        assertFalse(tok.addsBos());
    }

    @Test
    void splitBehaviorsAndInvert() {
        var text = "ab--cd-e";
        var dash = java.util.regex.Pattern.compile("-");
        // expectations printed by tokenizers' pre_tokenizers.Split("-", behavior, invert).pre_tokenize_str
        for (var c : new Object[][] {
                {PreTokenizer.Behavior.REMOVED, false, "[ab, cd, e]"},
                {PreTokenizer.Behavior.REMOVED, true, "[-, -, -]"},
                {PreTokenizer.Behavior.ISOLATED, false, "[ab, -, -, cd, -, e]"},
                {PreTokenizer.Behavior.ISOLATED, true, "[ab, -, -, cd, -, e]"},
                {PreTokenizer.Behavior.MERGED_WITH_PREVIOUS, false, "[ab-, -, cd-, e]"},
                {PreTokenizer.Behavior.MERGED_WITH_PREVIOUS, true, "[ab, -, -cd, -e]"},
                {PreTokenizer.Behavior.MERGED_WITH_NEXT, false, "[ab, -, -cd, -e]"},
                {PreTokenizer.Behavior.MERGED_WITH_NEXT, true, "[ab-, -, cd-, e]"},
                {PreTokenizer.Behavior.CONTIGUOUS, false, "[ab, --, cd, -, e]"},
                {PreTokenizer.Behavior.CONTIGUOUS, true, "[ab, --, cd, -, e]"}}) {
            var pre = new PreTokenizer(java.util.List.of(PreTokenizer.split(dash, (PreTokenizer.Behavior) c[0], (Boolean) c[1])));
            assertEquals(c[2], pre.split(text, true).toString(), c[0] + " invert=" + c[1]);
        }
    }
}
