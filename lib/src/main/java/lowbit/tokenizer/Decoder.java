package lowbit.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/** Token strings back to text, as a chain of HF-tokenizers-style decoder steps over the token list. */
final class Decoder {
    interface Step {
        List<String> apply(List<String> tokens);
    }

    private final List<Step> steps;

    Decoder(List<Step> steps) {
        this.steps = List.copyOf(steps);
    }

    String decode(List<String> tokens) {
        List<String> t = tokens;
        for (Step s : steps) t = s.apply(t);
        return String.join("", t);
    }

    /** GPT-2 byte-level: all tokens' table characters back to bytes, then UTF-8 (invalid bytes become U+FFFD). */
    static Step byteLevel() {
        return tokens -> {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            for (String t : tokens) ByteLevel.appendBytes(t, bytes);
            return List.of(bytes.toString(StandardCharsets.UTF_8));
        };
    }

    static Step replace(String pattern, String content) {
        return tokens -> tokens.stream().map(t -> t.replace(pattern, content)).toList();
    }

    /** Runs of "<0xAB>" tokens become the text their bytes spell; a byte run that is not UTF-8 gives U+FFFD per byte, as HF does. */
    static Step byteFallback() {
        return tokens -> {
            List<String> out = new ArrayList<>();
            ByteArrayOutputStream run = new ByteArrayOutputStream();
            int runTokens = 0;
            for (String t : tokens) {
                int b = byteToken(t);
                if (b >= 0) {
                    run.write(b);
                    runTokens++;
                    continue;
                }
                if (runTokens > 0) flush(run, runTokens, out);
                runTokens = 0;
                out.add(t);
            }
            if (runTokens > 0) flush(run, runTokens, out);
            return out;
        };
    }

    private static void flush(ByteArrayOutputStream run, int count, List<String> out) {
        byte[] bytes = run.toByteArray();
        run.reset();
        var decoder = StandardCharsets.UTF_8.newDecoder();
        try {
            out.add(decoder.decode(java.nio.ByteBuffer.wrap(bytes)).toString());
        } catch (java.nio.charset.CharacterCodingException e) {
            out.add("\uFFFD".repeat(count));
        }
    }

    /** The byte of a "<0xAB>" token, or -1. */
    static int byteToken(String t) {
        if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') return -1;
        try {
            return Integer.parseInt(t.substring(3, 5), 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static Step fuse() {
        return tokens -> List.of(String.join("", tokens));
    }

    /** HF's Strip: up to {@code start} leading and {@code stop} trailing {@code content} characters off each token. */
    static Step strip(char content, int start, int stop) {
        return tokens -> tokens.stream().map(t -> {
            int a = 0, b = t.length();
            while (a < start && a < b && t.charAt(a) == content) a++;
            int cut = 0;
            while (cut < stop && b > a && t.charAt(b - 1) == content) { b--; cut++; }
            return t.substring(a, b);
        }).toList();
    }

    /** HF's Metaspace decoder: replacement to space; the first token loses its leading space when one was prepended. */
    static Step metaspace(String replacement, boolean stripFirst) {
        return tokens -> {
            List<String> out = new ArrayList<>();
            for (int i = 0; i < tokens.size(); i++) {
                String t = tokens.get(i).replace(replacement, " ");
                if (i == 0 && stripFirst && t.startsWith(" ")) t = t.substring(1);
                out.add(t);
            }
            return out;
        };
    }
}
