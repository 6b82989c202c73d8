package lowbit.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import lowbit.io.DataDir;

/** Golden outputs written by environment/fixtures/make_tokenizer_fixtures.py. */
final class Fixtures {
    private Fixtures() {}

    static Path resource(String name) {
        try {
            return Path.of(Fixtures.class.getResource("/tokenizer/" + name).toURI());
        } catch (Exception e) {
            throw new IllegalStateException("missing test resource tokenizer/" + name, e);
        }
    }

    static JsonNode json(String name) throws Exception {
        return new ObjectMapper().readTree(resource(name).toFile());
    }

    static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) out[i] = array.get(i).asInt();
        return out;
    }

    static String sha256(int[] ids) throws Exception {
        ByteBuffer b = ByteBuffer.allocate(ids.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int id : ids) b.putInt(id);
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(b.array()));
    }

    static String wikitext() throws Exception {
        return Files.readString(DataDir.require("wikitext-2-raw/wiki.test.raw"));
    }

    static String wikitextHead(int lines) throws Exception {
        String text = wikitext();
        int pos = 0;
        for (int i = 0; i < lines && pos >= 0; i++) {
            pos = text.indexOf('\n', pos);
            if (pos >= 0) pos++;
        }
        return pos < 0 ? text : text.substring(0, pos);
    }

    /** Count, first ids, then the digest of the whole sequence (in that order, so a mismatch shows where). */
    static void assertWhole(JsonNode expected, int[] ids) throws Exception {
        int[] first = ints(expected.path("first"));
        int[] ours = java.util.Arrays.copyOf(ids, Math.min(ids.length, first.length));
        assertArrayEquals(first, ours, "first ids");
        assertEquals(expected.path("count").asInt(), ids.length, "token count");
        assertEquals(expected.path("sha256").asText(), sha256(ids), "sha256 of all ids");
    }
}
