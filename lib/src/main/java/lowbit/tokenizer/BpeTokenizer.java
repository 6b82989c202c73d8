package lowbit.tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.UnaryOperator;

/**
 * BPE in its two dialects: GPT-2 byte-level (words are mapped byte by byte to table characters, every
 * byte is a token) and sentencepiece-style (pieces are Unicode text with '▁' for space; characters the
 * vocabulary lacks fall back to "<0xAB>" byte tokens or to unk). Build with {@link Builder}.
 */
final class BpeTokenizer implements Tokenizer {
    private static final int CACHE_LIMIT = 200_000;

    private final String[] pieces;
    private final Map<String, Integer> vocab;
    private final BpeMerger.Table merges;
    private final boolean byteLevel;
    private final boolean ignoreMerges;
    private final int[] byteIds; // sentencepiece byte fallback: id of "<0xAB>" per byte, or null
    private final int unkId;
    private final AddedTokens added;
    private final UnaryOperator<String> normalizer;
    private final PreTokenizer preTokenizer;
    private final Decoder decoder;
    private final int bos, eos;
    private final boolean addsBos;
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeTokenizer(Builder b) {
        this.pieces = b.pieces;
        this.vocab = b.vocab;
        this.merges = b.merges;
        this.byteLevel = b.byteLevel;
        this.ignoreMerges = b.ignoreMerges;
        this.byteIds = b.byteIds;
        this.unkId = b.unkId;
        this.added = b.added;
        this.normalizer = b.normalizer;
        this.preTokenizer = b.preTokenizer;
        this.decoder = b.decoder;
        this.bos = b.bos;
        this.eos = b.eos;
        this.addsBos = b.addsBos;
    }

    static final class Builder {
        String[] pieces;
        Map<String, Integer> vocab;
        BpeMerger.Table merges;
        boolean byteLevel;
        boolean ignoreMerges;
        int[] byteIds;
        int unkId = -1;
        AddedTokens added = AddedTokens.none();
        UnaryOperator<String> normalizer = UnaryOperator.identity();
        PreTokenizer preTokenizer = PreTokenizer.none();
        Decoder decoder;
        int bos = -1, eos = -1;
        boolean addsBos;

        BpeTokenizer build() {
            return new BpeTokenizer(this);
        }
    }

    @Override
    public int[] encode(String text) {
        IntList out = new IntList(Math.max(16, text.length() / 3));
        boolean first = true;
        for (AddedTokens.Segment seg : added.split(text)) {
            if (seg.id() >= 0) {
                out.add(seg.id());
            } else {
                for (String word : preTokenizer.split(normalizer.apply(seg.text()), first)) encodeWord(word, out);
            }
            first = false;
        }
        return out.toArray();
    }

    private void encodeWord(String word, IntList out) {
        if (byteLevel) {
            String w = ByteLevel.encode(word);
            int[] ids = cache.get(w);
            if (ids == null) {
                ids = byteLevelWord(w);
                if (cache.size() >= CACHE_LIMIT) cache.clear();
                cache.put(w, ids);
            }
            out.addAll(ids);
        } else {
            pieceWord(word, out);
        }
    }

    private int[] byteLevelWord(String w) {
        if (ignoreMerges) {
            Integer whole = vocab.get(w);
            if (whole != null) return new int[] {whole};
        }
        int[] symbols = new int[w.length()];
        for (int i = 0; i < w.length(); i++) {
            Integer id = vocab.get(String.valueOf(w.charAt(i)));
            if (id == null) {
                if (unkId < 0) throw new IllegalStateException("byte-level vocabulary lacks byte token '" + w.charAt(i) + "' and has no unk token");
                id = unkId;
            }
            symbols[i] = id;
        }
        return BpeMerger.merge(symbols, merges);
    }

    /** Sentencepiece-style: merge runs of known characters; unknown ones go to bytes or unk. */
    private void pieceWord(String word, IntList out) {
        if (ignoreMerges) {
            Integer whole = vocab.get(word);
            if (whole != null) {
                out.add(whole);
                return;
            }
        }
        IntList run = new IntList(word.length());
        for (int i = 0; i < word.length(); ) {
            int cp = word.codePointAt(i);
            int len = Character.charCount(cp);
            Integer id = vocab.get(word.substring(i, i + len));
            if (id != null) {
                run.add(id);
            } else {
                out.addAll(BpeMerger.merge(run.toArray(), merges));
                run.clear();
                if (byteIds != null) {
                    for (byte b : word.substring(i, i + len).getBytes(java.nio.charset.StandardCharsets.UTF_8))
                        out.add(byteIds[b & 0xFF]);
                } else if (unkId >= 0) {
                    out.add(unkId);
                } else {
                    throw new IllegalStateException("character U+" + Integer.toHexString(cp) + " not in the vocabulary, which has no unk token nor byte fallback");
                }
            }
            i += len;
        }
        out.addAll(BpeMerger.merge(run.toArray(), merges));
    }

    @Override
    public String decode(int[] ids) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (id < 0 || id >= pieces.length || pieces[id] == null)
                throw new IllegalArgumentException("token id " + id + " outside the vocabulary (size " + pieces.length + ")");
            tokens.add(pieces[id]);
        }
        return decoder.decode(tokens);
    }

    /** The vocabulary string of a token (byte-level table characters, or '▁' pieces). */
    String piece(int id) {
        return pieces[id];
    }

    @Override
    public int vocabSize() {
        return pieces.length;
    }

    @Override
    public OptionalInt bosId() {
        return bos >= 0 ? OptionalInt.of(bos) : OptionalInt.empty();
    }

    @Override
    public OptionalInt eosId() {
        return eos >= 0 ? OptionalInt.of(eos) : OptionalInt.empty();
    }

    @Override
    public boolean addsBos() {
        return addsBos;
    }

    static final class IntList {
        private int[] a;
        private int n;

        IntList(int capacity) {
            a = new int[Math.max(1, capacity)];
        }

        void add(int v) {
            if (n == a.length) a = Arrays.copyOf(a, a.length * 2);
            a[n++] = v;
        }

        void addAll(int[] vs) {
            if (n + vs.length > a.length) a = Arrays.copyOf(a, Math.max(a.length * 2, n + vs.length));
            System.arraycopy(vs, 0, a, n, vs.length);
            n += vs.length;
        }

        void clear() {
            n = 0;
        }

        int[] toArray() {
            return Arrays.copyOf(a, n);
        }
    }
}
