package lowbit.tokenizer;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Cuts normalized text into the words BPE runs on, as a chain of steps each applied to every piece the
 * previous step left (HF tokenizers' pre-tokenizer Sequence; llama.cpp applies its regex lists the same way).
 */
final class PreTokenizer {
    /** GPT-2's pattern; HF's ByteLevel uses it, llama.cpp's "gpt-2" without the final \s+ (same split). */
    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String QWEN2 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
            + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    /** One step: a piece in, its sub-pieces out. */
    interface Step {
        void split(String piece, boolean first, List<String> out);
    }

    private final List<Step> steps;

    PreTokenizer(List<Step> steps) {
        this.steps = List.copyOf(steps);
    }

    static PreTokenizer none() {
        return new PreTokenizer(List.of());
    }

    /** @param first whether this text starts the input (Metaspace's prepend_scheme "first" needs it) */
    List<String> split(String text, boolean first) {
        List<String> pieces = new ArrayList<>();
        if (text.isEmpty()) return pieces;
        pieces.add(text);
        for (Step step : steps) {
            List<String> next = new ArrayList<>();
            for (int i = 0; i < pieces.size(); i++) step.split(pieces.get(i), first && i == 0, next);
            pieces = next;
        }
        return pieces;
    }

    /**
     * Java's \s and \w are ASCII unless asked; the Rust engines (onig, fancy-regex, regex) treat them as
     * Unicode, so every pattern is compiled with UNICODE_CHARACTER_CLASS. \p{L} and \p{N} are Unicode either way.
     */
    static Pattern compile(String regex) {
        return Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS);
    }

    /** HF's Split pre-tokenizer (and each regex of llama.cpp's lists, which isolate matches). */
    static Step split(Pattern pattern, Behavior behavior, boolean invert) {
        return (piece, first, out) -> {
            // (start, end, isDelimiter) spans covering the piece
            List<int[]> spans = new ArrayList<>();
            Matcher m = pattern.matcher(piece);
            int last = 0;
            while (m.find()) {
                if (m.end() == m.start()) continue;
                if (m.start() > last) spans.add(new int[] {last, m.start(), invert ? 1 : 0});
                spans.add(new int[] {m.start(), m.end(), invert ? 0 : 1});
                last = m.end();
            }
            if (last < piece.length()) spans.add(new int[] {last, piece.length(), invert ? 1 : 0});
            // the folds of HF tokenizers' NormalizedString::split, over (start, end, isDelimiter) spans
            List<int[]> pieces = new ArrayList<>();
            boolean previous = false;
            switch (behavior) {
                case ISOLATED -> pieces.addAll(spans);
                case REMOVED -> spans.stream().filter(s -> s[2] == 0).forEach(pieces::add);
                case MERGED_WITH_PREVIOUS -> {
                    for (int[] s : spans) {
                        boolean match = s[2] == 1;
                        if (match && !previous && !pieces.isEmpty()) pieces.getLast()[1] = s[1];
                        else pieces.add(s.clone());
                        previous = match;
                    }
                }
                case MERGED_WITH_NEXT -> {
                    for (int i = spans.size() - 1; i >= 0; i--) {
                        int[] s = spans.get(i);
                        boolean match = s[2] == 1;
                        if (match && !previous && !pieces.isEmpty()) pieces.getLast()[0] = s[0];
                        else pieces.add(s.clone());
                        previous = match;
                    }
                    java.util.Collections.reverse(pieces);
                }
                case CONTIGUOUS -> {
                    for (int[] s : spans) {
                        boolean match = s[2] == 1;
                        if (match == previous && !pieces.isEmpty()) pieces.getLast()[1] = s[1];
                        else pieces.add(s.clone());
                        previous = match;
                    }
                }
            }
            for (int[] s : pieces) out.add(piece.substring(s[0], s[1]));
        };
    }

    static Step isolate(String regex) {
        return split(compile(regex), Behavior.ISOLATED, false);
    }

    /** HF's ByteLevel pre-tokenizer, minus the byte mapping (done on each word by the model). */
    static Step byteLevel(boolean addPrefixSpace, boolean useRegex) {
        Step regex = useRegex ? isolate(GPT2) : null;
        return (piece, first, out) -> {
            String p = addPrefixSpace && !piece.startsWith(" ") ? " " + piece : piece;
            if (regex == null) out.add(p);
            else regex.split(p, first, out);
        };
    }

    /** HF's Metaspace: spaces become the replacement character, optionally prefixed, split before each. */
    static Step metaspace(String replacement, String prependScheme, boolean split) {
        Step splitter = split ? split(Pattern.compile(Pattern.quote(replacement)), Behavior.MERGED_WITH_NEXT, false) : null;
        return (piece, first, out) -> {
            String p = piece.replace(" ", replacement);
            boolean prepend = switch (prependScheme) {
                case "always" -> true;
                case "first" -> first;
                default -> false;
            };
            if (prepend && !p.startsWith(replacement)) p = replacement + p;
            if (splitter == null) out.add(p);
            else splitter.split(p, first, out);
        };
    }
}
