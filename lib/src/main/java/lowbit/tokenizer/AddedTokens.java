package lowbit.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Tokens that are cut out of the raw text before anything else sees it, as HF's AddedVocabulary and
 * llama.cpp's special-token partition do: the longest one wins where several start at the same place.
 */
final class AddedTokens {
    record Token(int id, String content, boolean lstrip, boolean rstrip) {}

    /** A run of ordinary text (id < 0) or one added token. */
    record Segment(String text, int id) {}

    private final Pattern pattern;
    private final List<Token> tokens;

    AddedTokens(List<Token> tokens) {
        this.tokens = tokens.stream().filter(t -> !t.content().isEmpty())
                .sorted(Comparator.comparingInt((Token t) -> t.content().length()).reversed()).toList();
        if (this.tokens.isEmpty()) {
            pattern = null;
            return;
        }
        // Java's alternation is leftmost-first, so longest-first order gives leftmost-longest matching
        StringBuilder re = new StringBuilder();
        for (int i = 0; i < this.tokens.size(); i++) {
            Token t = this.tokens.get(i);
            if (i > 0) re.append('|');
            re.append("(").append(t.lstrip() ? "\\s*" : "").append(Pattern.quote(t.content()))
                    .append(t.rstrip() ? "\\s*" : "").append(")");
        }
        pattern = Pattern.compile(re.toString(), Pattern.UNICODE_CHARACTER_CLASS);
    }

    static AddedTokens none() {
        return new AddedTokens(List.of());
    }

    List<Token> tokens() {
        return tokens;
    }

    List<Segment> split(String text) {
        List<Segment> out = new ArrayList<>();
        if (pattern == null) {
            if (!text.isEmpty()) out.add(new Segment(text, -1));
            return out;
        }
        Matcher m = pattern.matcher(text);
        int last = 0;
        while (m.find()) {
            if (m.start() > last) out.add(new Segment(text.substring(last, m.start()), -1));
            int group = 1;
            while (m.group(group) == null) group++;
            out.add(new Segment(null, tokens.get(group - 1).id()));
            last = m.end();
        }
        if (last < text.length()) out.add(new Segment(text.substring(last), -1));
        return out;
    }
}
