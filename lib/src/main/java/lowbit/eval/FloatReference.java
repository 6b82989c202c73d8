package lowbit.eval;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Locale;
import lowbit.io.FormatException;
import lowbit.io.Hashing;

/**
 * The float model's next-token log-probabilities over a set of windows, on disk, so that each quantized
 * configuration compared with it by {@link KlDivergence} costs one forward pass. Stored exactly: float32
 * log-softmax rows, windows x (seqlen - 1) x vocab, little-endian, after a 4096-byte header (magic, version,
 * vocab, seqlen, windows, and the key). No top-k truncation, so the KL has no storage error; the price is size
 * (the study's 2 windows of 2048 with a 49152-token vocabulary take 805 MB), so a reference larger than
 * {@link #maxBytes()} or than the free space of its directory is refused with both figures.
 *
 * <p>Safety: a file is written under a hidden temporary name in the same directory and renamed when complete, so a
 * reference file is never partial; its name is derived from the key, and opening it checks the header's key,
 * shape and the file's length, so a reference is never used for another model, tokenizer, dataset, window length
 * or window set (the key holds the float model's sha256 and the sha256 of the exact token ids scored).
 */
public final class FloatReference implements AutoCloseable {
    private static final byte[] MAGIC = "LBFLOGP1".getBytes(StandardCharsets.US_ASCII);
    private static final int VERSION = 1;
    static final int HEADER = 4096;

    /** What a reference is of: the float model, its vocabulary, and the exact windows scored. */
    public record Key(String modelSha256, int vocab, int seqlen, int windows, String tokensSha256) {
        /** The key of the first {@code windows} windows of {@code seqlen} tokens of {@code ids}. */
        public static Key of(String modelSha256, int vocab, int[] ids, int seqlen, int windows) {
            ByteBuffer b = ByteBuffer.allocate(4 * windows * seqlen).order(ByteOrder.LITTLE_ENDIAN);
            b.asIntBuffer().put(ids, 0, windows * seqlen);
            return new Key(modelSha256, vocab, seqlen, windows, Hashing.sha256(b.array()));
        }

        String text() {
            return String.join("|", "model=" + modelSha256, "vocab=" + vocab, "seqlen=" + seqlen, "windows=" + windows,
                    "tokens=" + tokensSha256);
        }

        long bytes() {
            return (long) windows * (seqlen - 1) * vocab * 4;
        }

        String fileName() {
            return "float-logprobs-" + Hashing.sha256(text().getBytes(StandardCharsets.UTF_8)).substring(0, 32) + ".f32";
        }
    }

    private final Path file;
    private final Key key;
    private final FileChannel channel;
    private final ThreadLocal<ByteBuffer> rowBuffers;

    private FloatReference(Path file, Key key, FileChannel channel) {
        this.file = file;
        this.key = key;
        this.channel = channel;
        this.rowBuffers = ThreadLocal.withInitial(() -> ByteBuffer.allocate(4 * key.vocab()).order(ByteOrder.LITTLE_ENDIAN));
    }

    /** The largest reference written: 32 GiB unless the system property lowbit.kld.maxBytes says otherwise. */
    public static long maxBytes() {
        return Long.getLong("lowbit.kld.maxBytes", 32L << 30);
    }

    public static Path file(Path dir, Key key) {
        return dir.resolve(key.fileName());
    }

    public static boolean exists(Path dir, Key key) {
        return Files.isRegularFile(file(dir, key));
    }

    /** Opens the reference for {@code key} in {@code dir}, checking that its header and length are the key's. */
    public static FloatReference open(Path dir, Key key) {
        Path f = file(dir, key);
        if (!Files.isRegularFile(f))
            throw new IllegalArgumentException("no float reference for KL divergence in " + dir + " for " + key.text());
        FileChannel ch = null;
        try {
            ch = FileChannel.open(f, StandardOpenOption.READ);
            ByteBuffer h = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
            while (h.hasRemaining() && ch.read(h, h.position()) > 0) {}
            h.flip();
            byte[] magic = new byte[MAGIC.length];
            if (h.remaining() < HEADER) throw new FormatException(f, "shorter than the " + HEADER + "-byte header of a float reference");
            h.get(magic);
            if (!Arrays.equals(magic, MAGIC)) throw new FormatException(f, "not a lowbit float reference (bad magic)");
            int version = h.getInt();
            if (version != VERSION) throw new FormatException(f, "float reference version " + version + ", expected " + VERSION);
            int vocab = h.getInt(), seqlen = h.getInt(), windows = h.getInt(), n = h.getInt();
            if (n < 0 || n > HEADER - h.position()) throw new FormatException(f, "header key length " + n + " is out of range");
            byte[] k = new byte[n];
            h.get(k);
            String stored = new String(k, StandardCharsets.UTF_8);
            if (!stored.equals(key.text()) || vocab != key.vocab() || seqlen != key.seqlen() || windows != key.windows())
                throw new FormatException(f, "holds the float reference of " + stored + ", not of " + key.text());
            if (ch.size() != HEADER + key.bytes())
                throw new FormatException(f, "is " + ch.size() + " bytes, expected " + (HEADER + key.bytes()) + " for its header's shape");
            return new FloatReference(f, key, ch);
        } catch (IOException e) {
            close(ch);
            throw new UncheckedIOException("reading the float reference " + f, e);
        } catch (RuntimeException e) {
            close(ch);
            throw e;
        }
    }

    public Key key() {
        return key;
    }

    public Path file() {
        return file;
    }

    /** Reads row {@code position} of window {@code window} (log p(. | tokens[0..position])) into {@code dst}; thread-safe. */
    public void row(int window, int position, float[] dst) {
        ByteBuffer b = rowBuffers.get().clear();
        long off = HEADER + ((long) window * (key.seqlen() - 1) + position) * key.vocab() * 4;
        try {
            while (b.hasRemaining()) {
                int r = channel.read(b, off + b.position());
                if (r < 0) throw new FormatException(file, "ends inside window " + window + ", position " + position);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading the float reference " + file, e);
        }
        b.flip();
        b.asFloatBuffer().get(dst, 0, key.vocab());
    }

    @Override
    public void close() {
        close(channel);
    }

    private static void close(FileChannel ch) {
        if (ch == null) return;
        try {
            ch.close();
        } catch (IOException e) {
            // read-only: nothing was lost
        }
    }

    /**
     * Starts writing the reference for {@code key} into {@code dir}, refusing first, with the figures, one that is
     * larger than {@link #maxBytes()} or than the directory's free space.
     */
    public static Writer create(Path dir, Key key) {
        String refused = tooLarge(dir, key);
        if (refused != null) throw new IllegalArgumentException(refused + ": evaluate fewer windows (--windows K)");
        try {
            Path tmp = Files.createTempFile(dir, "." + key.fileName() + ".partial-", "");
            FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE);
            ByteBuffer h = ByteBuffer.allocate(HEADER).order(ByteOrder.LITTLE_ENDIAN);
            byte[] k = key.text().getBytes(StandardCharsets.UTF_8);
            h.put(MAGIC).putInt(VERSION).putInt(key.vocab()).putInt(key.seqlen()).putInt(key.windows()).putInt(k.length).put(k);
            h.position(0).limit(HEADER);
            while (h.hasRemaining()) ch.write(h, h.position());
            return new Writer(dir, key, tmp, ch);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write a float reference into " + dir, e);
        }
    }

    /**
     * Why the reference for {@code key} cannot be written into {@code dir} (larger than {@link #maxBytes()}, or than the
     * free space there less 1 GB), or null when it can.
     */
    public static String tooLarge(Path dir, Key key) {
        long bytes = HEADER + key.bytes();
        String shape = String.format(Locale.ROOT, "%d windows x %d positions x %d vocabulary entries in float32", key.windows(),
                key.seqlen() - 1, key.vocab());
        if (bytes > maxBytes())
            return String.format(Locale.ROOT, "the float reference for KL divergence would take %.2f GB (%s), more than the %.2f GB limit",
                    bytes / 1e9, shape, maxBytes() / 1e9);
        try {
            Files.createDirectories(dir);
            long free = Files.getFileStore(dir).getUsableSpace();
            if (bytes + (1L << 30) > free)
                return String.format(Locale.ROOT, "the float reference for KL divergence would take %.2f GB (%s) and %s has %.2f GB free (1 GB kept spare)",
                        bytes / 1e9, shape, dir, free / 1e9);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot use " + dir + " for the float reference", e);
        }
        return null;
    }

    /** A reference being written; rows may be written from many threads; {@link #commit} makes it visible. */
    public static final class Writer implements AutoCloseable {
        private final Path dir;
        private final Key key;
        private final Path tmp;
        private final FileChannel channel;
        private final ThreadLocal<ByteBuffer> buffers;
        private boolean committed;

        private Writer(Path dir, Key key, Path tmp, FileChannel channel) {
            this.dir = dir;
            this.key = key;
            this.tmp = tmp;
            this.channel = channel;
            this.buffers = ThreadLocal.withInitial(() -> ByteBuffer.allocate(4 * key.vocab()).order(ByteOrder.LITTLE_ENDIAN));
        }

        public void row(int window, int position, float[] logProbs) {
            ByteBuffer b = buffers.get().clear();
            b.asFloatBuffer().put(logProbs, 0, key.vocab());
            long off = HEADER + ((long) window * (key.seqlen() - 1) + position) * key.vocab() * 4;
            try {
                while (b.hasRemaining()) channel.write(b, off + b.position());
            } catch (IOException e) {
                throw new UncheckedIOException("writing the float reference " + tmp, e);
            }
        }

        /** Flushes and renames the file into place (replacing one another process wrote for the same key). */
        public void commit() {
            try {
                channel.force(false);
                channel.close();
                try {
                    Files.move(tmp, file(dir, key), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } catch (AtomicMoveNotSupportedException e) {
                    Files.move(tmp, file(dir, key), StandardCopyOption.REPLACE_EXISTING);
                }
                committed = true;
            } catch (IOException e) {
                throw new UncheckedIOException("cannot finish the float reference " + file(dir, key), e);
            }
        }

        /** Without a commit, deletes the partial file. */
        @Override
        public void close() {
            if (committed) return;
            try {
                channel.close();
                Files.deleteIfExists(tmp);
            } catch (IOException e) {
                // a leftover hidden .partial file is never read
            }
        }
    }
}
