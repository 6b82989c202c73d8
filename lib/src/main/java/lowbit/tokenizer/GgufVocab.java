package lowbit.tokenizer;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;

/** A tokenizer from GGUF metadata (tokenizer.ggml.*), following llama.cpp's llama-vocab.cpp. */
final class GgufVocab {
    private GgufVocab() {}

    static Tokenizer build(Path file, Map<String, Object> md) {
        String model = string(file, md, "tokenizer.ggml.model", null);
        List<?> tokenList = list(file, md, "tokenizer.ggml.tokens", true);
        String[] pieces = new String[tokenList.size()];
        Map<String, Integer> vocab = new HashMap<>(pieces.length * 2);
        for (int i = 0; i < pieces.length; i++) {
            if (!(tokenList.get(i) instanceof String s))
                throw new FormatException(file, "tokenizer.ggml.tokens[" + i + "] is not a string");
            pieces[i] = s;
            vocab.putIfAbsent(s, i);
        }
        int[] types = new int[pieces.length];
        List<?> typeList = list(file, md, "tokenizer.ggml.token_type", false);
        if (typeList != null && typeList.size() != pieces.length)
            throw new FormatException(file, "tokenizer.ggml.token_type has " + typeList.size() + " entries for " + pieces.length + " tokens");
        for (int i = 0; i < pieces.length; i++) types[i] = typeList == null ? SentencePieceVocab.NORMAL : number(file, "tokenizer.ggml.token_type", typeList.get(i)).intValue();

        // llama.cpp cuts control, user-defined and unknown tokens out of the text first
        List<AddedTokens.Token> specials = new ArrayList<>();
        for (int i = 0; i < pieces.length; i++)
            if (types[i] == SentencePieceVocab.CONTROL || types[i] == SentencePieceVocab.USER_DEFINED || types[i] == SentencePieceVocab.UNKNOWN)
                specials.add(new AddedTokens.Token(i, pieces[i], false, false));

        var b = new BpeTokenizer.Builder();
        b.pieces = pieces;
        b.vocab = vocab;
        b.added = new AddedTokens(specials);
        b.bos = optionalInt(file, md, "tokenizer.ggml.bos_token_id", -1);
        b.eos = optionalInt(file, md, "tokenizer.ggml.eos_token_id", -1);
        b.unkId = optionalInt(file, md, "tokenizer.ggml.unknown_token_id", -1);
        switch (model) {
            case "gpt2" -> {
                List<?> mergeList = list(file, md, "tokenizer.ggml.merges", true);
                List<String[]> merges = new ArrayList<>(mergeList.size());
                for (Object m : mergeList) {
                    if (!(m instanceof String s)) throw new FormatException(file, "tokenizer.ggml.merges[" + merges.size() + "] is not a string");
                    merges.add(HfTokenizerLoader.splitMerge(file, s, merges.size()));
                }
                b.merges = HfTokenizerLoader.rankTable(file, vocab, merges);
                b.byteLevel = true;
                String pre = string(file, md, "tokenizer.ggml.pre", "default");
                b.preTokenizer = new PreTokenizer(preTokenizer(file, pre));
                b.ignoreMerges = pre.equals("llama3") || pre.equals("llama-v3") || pre.equals("llama-bpe");
                b.decoder = new Decoder(List.of(Decoder.byteLevel()));
                b.addsBos = bool(file, md, "tokenizer.ggml.add_bos_token", false) && b.bos >= 0;
            }
            case "llama" -> {
                List<?> scoreList = list(file, md, "tokenizer.ggml.scores", true);
                if (scoreList.size() != pieces.length)
                    throw new FormatException(file, "tokenizer.ggml.scores has " + scoreList.size() + " entries for " + pieces.length + " tokens");
                float[] scores = new float[pieces.length];
                for (int i = 0; i < scores.length; i++) scores[i] = number(file, "tokenizer.ggml.scores", scoreList.get(i)).floatValue();
                b.merges = SentencePieceVocab.scoreTable(pieces, scores, types, vocab);
                b.byteIds = HfTokenizerLoader.byteIds(file, vocab);
                boolean spacePrefix = bool(file, md, "tokenizer.ggml.add_space_prefix", true);
                // llama.cpp: ' ' becomes '▁', and '▁' goes in front of each text run that starts the input or follows a special token
                b.normalizer = s -> s.isEmpty() ? s : ((spacePrefix ? " " : "") + s).replace(' ', SentencePieceVocab.META);
                b.decoder = SentencePieceVocab.decoder(spacePrefix);
                b.addsBos = bool(file, md, "tokenizer.ggml.add_bos_token", true) && b.bos >= 0;
            }
            default -> throw new FormatException(file, "unsupported tokenizer.ggml.model \"" + model + "\" (supported: gpt2, llama)");
        }
        return b.build();
    }

    /** llama.cpp's regex lists per tokenizer.ggml.pre, each applied in turn, matches isolated. */
    static List<PreTokenizer.Step> preTokenizer(Path file, String pre) {
        String gpt2 = PreTokenizer.GPT2;
        List<String> regexes = switch (pre) {
            case "default" -> List.of("[\\p{P}\\$\\+<=>\\^~\\|]+", gpt2, "\\p{N}+", "[0-9][0-9][0-9]");
            case "gpt-2", "gpt2", "phi-2", "jina-es", "jina-de", "mpt", "olmo" -> List.of(gpt2);
            case "smollm", "codeshell", "exaone", "minerva-7b" -> List.of("\\p{N}", gpt2);
            case "llama3", "llama-v3", "llama-bpe", "falcon3", "pixtral" -> List.of(PreTokenizer.LLAMA3);
            case "qwen2", "stablelm2", "deepseek-r1-qwen" -> List.of(PreTokenizer.QWEN2);
            default -> throw new FormatException(file, "unsupported tokenizer.ggml.pre \"" + pre
                    + "\" (supported: default, gpt-2, smollm, llama-bpe/llama3, qwen2 and their aliases)");
        };
        return regexes.stream().map(PreTokenizer::isolate).toList();
    }

    private static Object require(Path file, Map<String, Object> md, String key) {
        Object v = md.get(key);
        if (v == null) throw new FormatException(file, "GGUF metadata lacks " + key);
        return v;
    }

    private static String string(Path file, Map<String, Object> md, String key, String fallback) {
        Object v = fallback == null ? require(file, md, key) : md.getOrDefault(key, fallback);
        if (!(v instanceof String s)) throw new FormatException(file, "GGUF metadata " + key + " is " + v.getClass().getSimpleName() + ", expected a string");
        return s;
    }

    private static List<?> list(Path file, Map<String, Object> md, String key, boolean required) {
        Object v = required ? require(file, md, key) : md.get(key);
        if (v == null) return null;
        if (!(v instanceof List<?> l)) throw new FormatException(file, "GGUF metadata " + key + " is " + v.getClass().getSimpleName() + ", expected an array");
        return l;
    }

    private static Number number(Path file, String key, Object v) {
        if (!(v instanceof Number n)) throw new FormatException(file, "GGUF metadata " + key + " holds " + (v == null ? "null" : v.getClass().getSimpleName()) + ", expected a number");
        return n;
    }

    private static int optionalInt(Path file, Map<String, Object> md, String key, int fallback) {
        Object v = md.get(key);
        return v == null ? fallback : number(file, key, v).intValue();
    }

    private static boolean bool(Path file, Map<String, Object> md, String key, boolean fallback) {
        Object v = md.get(key);
        if (v == null) return fallback;
        if (!(v instanceof Boolean x)) throw new FormatException(file, "GGUF metadata " + key + " is " + v.getClass().getSimpleName() + ", expected a boolean");
        return x;
    }
}
