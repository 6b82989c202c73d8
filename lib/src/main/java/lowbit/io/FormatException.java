package lowbit.io;

import java.nio.file.Path;

/** A checkpoint, tokenizer or data file that is not what it claims to be; the message names the file and the problem. */
public class FormatException extends RuntimeException {
    private final Path file;

    public FormatException(Path file, String problem) {
        super(file + ": " + problem);
        this.file = file;
    }

    public FormatException(Path file, String problem, Throwable cause) {
        super(file + ": " + problem, cause);
        this.file = file;
    }

    public Path file() {
        return file;
    }
}
