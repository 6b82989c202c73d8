package lowbit.eval.tasks.mmlu;

/**
 * Python's {@code str.strip()} with no argument, which lm-eval's template applies to the question. Java's
 * {@link String#strip()} disagrees with it on some characters (Python strips U+00A0, U+0085, U+2007, U+202F;
 * Java does not), and MMLU's text is scraped from the web, so the exact set matters.
 */
final class PythonText {
    private PythonText() {}

    static String strip(String s) {
        int from = 0;
        int to = s.length();
        while (from < to && isSpace(s.charAt(from))) from++;
        while (to > from && isSpace(s.charAt(to - 1))) to--;
        return s.substring(from, to);
    }

    /** Python's str.isspace() for one character: Unicode category Zs or bidirectional class WS, B or S. */
    static boolean isSpace(char c) {
        return switch (c) {
            case '\t', '\n', '\u000B', '\u000C', '\r', '\u001C', '\u001D', '\u001E', '\u001F', ' ', '\u0085', '\u00A0',
                 '\u1680', '\u2028', '\u2029', '\u202F', '\u205F', '\u3000' -> true;
            default -> c >= '\u2000' && c <= '\u200A';
        };
    }
}
