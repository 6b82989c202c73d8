package lowbit.tokenizer;

import java.util.Arrays;
import java.util.Map;
import java.util.function.UnaryOperator;

/** Helpers for sentencepiece-style vocabularies (pieces with scores, '▁' for space, "<0xAB>" byte tokens). */
final class SentencePieceVocab {
    private SentencePieceVocab() {}

    static final char META = '▁';

    /** Token types as sentencepiece and GGUF number them. */
    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    /**
     * Sentencepiece's merge order: the pair whose concatenation is the best-scoring piece merges first.
     * Scores become dense ranks (equal scores share a rank) so that ties still go to the leftmost pair.
     * Only normal, user-defined and unused pieces are merge results, as in sentencepiece's bpe_model.cc.
     */
    static BpeMerger.Table scoreTable(String[] pieces, float[] scores, int[] types, Map<String, Integer> vocab) {
        float[] distinct = scores.clone();
        Arrays.sort(distinct);
        int[] rank = new int[scores.length];
        int unique = 0;
        for (int i = 0; i < distinct.length; i++) if (i == 0 || distinct[i] != distinct[i - 1]) distinct[unique++] = distinct[i];
        float[] sorted = Arrays.copyOf(distinct, unique);
        for (int i = 0; i < scores.length; i++) rank[i] = unique - 1 - Arrays.binarySearch(sorted, scores[i]);
        return (l, r) -> {
            Integer id = vocab.get(pieces[l].concat(pieces[r]));
            if (id == null) return -1;
            int t = types[id];
            if (t != NORMAL && t != USER_DEFINED && t != UNUSED) return -1;
            return ((long) rank[id] << 32) | id;
        };
    }

    /**
     * Sentencepiece's default normalization of spaces (remove_extra_whitespaces, add_dummy_prefix):
     * no leading/trailing spaces, runs of spaces made one, one '▁' in front of non-empty text.
     */
    static UnaryOperator<String> sentencepieceNormalizer(boolean removeExtraWhitespace, boolean addDummyPrefix) {
        return text -> {
            String s = text;
            if (removeExtraWhitespace) {
                StringBuilder b = new StringBuilder(s.length());
                boolean space = true; // drop leading spaces
                for (int i = 0; i < s.length(); i++) {
                    char c = s.charAt(i);
                    if (c == ' ') {
                        if (!space) b.append(c);
                        space = true;
                    } else {
                        b.append(c);
                        space = false;
                    }
                }
                int end = b.length();
                while (end > 0 && b.charAt(end - 1) == ' ') end--;
                s = b.substring(0, end);
            }
            if (s.isEmpty()) return s;
            if (addDummyPrefix) s = " " + s;
            return s.replace(' ', META);
        };
    }

    /** sentencepiece/llama.cpp decoding: '▁' to space, byte tokens to bytes, the dummy-prefix space dropped. */
    static Decoder decoder(boolean stripDummyPrefix) {
        var steps = new java.util.ArrayList<Decoder.Step>();
        steps.add(Decoder.replace(String.valueOf(META), " "));
        steps.add(Decoder.byteFallback());
        steps.add(Decoder.fuse());
        if (stripDummyPrefix) steps.add(Decoder.strip(' ', 1, 0));
        return new Decoder(steps);
    }
}
