package lowbit.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * GPT-2's reversible byte-to-character table: every byte becomes a printable character so that BPE
 * vocabularies can be stored as text (space is 'Ġ', newline 'Ċ').
 */
final class ByteLevel {
    private ByteLevel() {}

    private static final char[] BYTE_TO_CHAR = new char[256];
    private static final int[] CHAR_TO_BYTE = new int[512];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) (256 + n++);
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    /** The text's UTF-8 bytes, one table character each. */
    static String encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        char[] out = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) out[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        return new String(out);
    }

    static char charOf(int b) {
        return BYTE_TO_CHAR[b & 0xFF];
    }

    /**
     * Appends a token's bytes. Like HF's ByteLevel decoder, a token holding any character outside the
     * table (an added token such as " " or "<|fin|>" with non-table characters) goes in as plain UTF-8.
     */
    static void appendBytes(String token, ByteArrayOutputStream out) {
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            if (c >= CHAR_TO_BYTE.length || CHAR_TO_BYTE[c] < 0) {
                out.writeBytes(token.getBytes(StandardCharsets.UTF_8));
                return;
            }
        }
        for (int i = 0; i < token.length(); i++) out.write(CHAR_TO_BYTE[token.charAt(i)]);
    }
}
