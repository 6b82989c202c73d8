package lowbit.io;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The one place data and models are found: system property {@code lowbit.data}, else environment
 * variable {@code LOWBIT_DATA}, else {@code data/} under the working directory or its nearest parent
 * that has one. Set-up fills it with links to a shared copy or with downloads.
 */
public final class DataDir {
    private DataDir() {}

    public static Path root() {
        String configured = System.getProperty("lowbit.data");
        if (configured == null || configured.isBlank()) configured = System.getenv("LOWBIT_DATA");
        if (configured != null && !configured.isBlank()) return Path.of(configured).toAbsolutePath().normalize();
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path candidate = dir.resolve("data");
            if (Files.isDirectory(candidate)) return candidate;
        }
        return Path.of("data").toAbsolutePath();
    }

    /** A file or folder under the data directory; fails with a hint at set-up when it is missing. */
    public static Path require(String relative) {
        Path p = root().resolve(relative);
        if (!Files.exists(p))
            throw new FormatException(p, "not found in the data directory " + root()
                    + " (run ./lowbit setup, or set LOWBIT_DATA / -Dlowbit.data to a directory that has it)");
        return p;
    }

    public static Path defaultModel() {
        return require("models/SmolLM2-135M-Instruct.Q4_1.gguf");
    }
}
