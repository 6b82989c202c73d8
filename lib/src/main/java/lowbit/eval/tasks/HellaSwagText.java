package lowbit.eval.tasks;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * lm-eval's HellaSwag text handling (tasks/hellaswag/utils.py), and the way back to it from the shipped text.
 *
 * <p>lm-eval builds the query as {@code preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize())}. The
 * shipped file (llama.cpp's layout, from klosax/hellaswag_text_data) holds {@code activity_label + ": " + ctx} with
 * ctx = ctx_a + " " + ctx_b already run through the same bracket and space clean-up, but with ctx_b as the dataset
 * has it: lower case. The two fields are not kept apart, so ctx_b is taken to be what follows the last sentence end
 * (". ", "? ", "! ") when it starts with a lower-case letter; that is how ActivityNet items are cut (ctx_b "the
 * lady"), and it is the one place the rebuilt query can differ from lm-eval's (a ctx_b that is empty while ctx_a's
 * last sentence starts in lower case would be capitalized here and not there).
 */
final class HellaSwagText {
    private static final Pattern BRACKETS = Pattern.compile("\\[.*?\\]");

    private HellaSwagText() {}

    /** lm-eval's preprocess(): strip, " [title]" to ". ", bracket tags removed, double spaces halved once. */
    static String preprocess(String text) {
        String t = pyStrip(text);
        t = t.replace(" [title]", ". ");
        t = BRACKETS.matcher(t).replaceAll("");
        return t.replace("  ", " ");
    }

    /** The shipped "label: ctx" line with its trailing ctx_b capitalized as lm-eval's process_docs does. */
    static String query(String shippedContext) {
        int start = -1;
        for (String end : new String[] {". ", "? ", "! "}) {
            int at = shippedContext.lastIndexOf(end);
            if (at >= 0) start = Math.max(start, at + end.length());
        }
        if (start < 0 || start >= shippedContext.length() || !Character.isLowerCase(shippedContext.codePointAt(start)))
            return preprocess(shippedContext);
        return preprocess(shippedContext.substring(0, start) + capitalize(shippedContext.substring(start)));
    }

    /** Python's str.capitalize(): the first character in title case, the rest in lower case. */
    static String capitalize(String s) {
        if (s.isEmpty()) return s;
        int first = s.codePointAt(0);
        int n = Character.charCount(first);
        return new StringBuilder().appendCodePoint(Character.toTitleCase(first)).append(s.substring(n).toLowerCase(Locale.ROOT)).toString();
    }

    /** Python's str.strip(): every Unicode white space, including the no-break spaces Java's strip() keeps. */
    static String pyStrip(String s) {
        int a = 0, b = s.length();
        while (a < b && isPySpace(s.charAt(a))) a++;
        while (b > a && isPySpace(s.charAt(b - 1))) b--;
        return s.substring(a, b);
    }

    private static boolean isPySpace(char c) {
        return Character.isWhitespace(c) || Character.isSpaceChar(c) || c == '\u001c' || c == '\u001d' || c == '\u001e' || c == '\u001f'
                || c == '\u0085';
    }
}
