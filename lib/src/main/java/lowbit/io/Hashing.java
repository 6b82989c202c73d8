package lowbit.io;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** sha256 in lowercase hex, the form the Hub and {@code sha256sum} print. */
public final class Hashing {
    private Hashing() {}

    public static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK always has SHA-256", e);
        }
    }

    public static String sha256(byte[] bytes) {
        return HexFormat.of().formatHex(sha256().digest(bytes));
    }

    public static String sha256(Path file) {
        MessageDigest md = sha256();
        try (InputStream in = Files.newInputStream(file)) {
            update(md, in);
        } catch (IOException e) {
            throw new FormatException(file, "cannot read: " + e, e);
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** Feeds the rest of the stream into the digest. */
    public static void update(MessageDigest md, InputStream in) throws IOException {
        byte[] buffer = new byte[1 << 20];
        for (int n; (n = in.read(buffer)) > 0; ) md.update(buffer, 0, n);
    }
}
