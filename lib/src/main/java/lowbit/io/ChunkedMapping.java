package lowbit.io;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A read-only memory mapping of a whole file of any size.
 *
 * <p>The build targets Java 21, where java.lang.foreign is still a preview API, so files beyond the
 * 2 GB limit of one {@link MappedByteBuffer} are mapped as 1 GiB chunks that overlap by
 * {@link #MAX_SLICE} bytes: any slice of at most MAX_SLICE bytes then lies inside one chunk and comes
 * back as a view, never a copy. The mapping is released by the garbage collector (there is no portable
 * unmap before java.lang.foreign).
 */
public final class ChunkedMapping {
    public static final int MAX_SLICE = 1 << 26;
    static final long CHUNK = 1L << 30;

    private final Path file;
    private final long size;
    private final MappedByteBuffer[] chunks;

    private ChunkedMapping(Path file, long size, MappedByteBuffer[] chunks) {
        this.file = file;
        this.size = size;
        this.chunks = chunks;
    }

    public static ChunkedMapping map(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = channel.size();
            int n = (int) ((size + CHUNK - 1) / CHUNK);
            MappedByteBuffer[] chunks = new MappedByteBuffer[n];
            for (int i = 0; i < n; i++) {
                long start = i * CHUNK;
                chunks[i] = channel.map(FileChannel.MapMode.READ_ONLY, start, Math.min(size - start, CHUNK + MAX_SLICE));
            }
            return new ChunkedMapping(file, size, chunks);
        }
    }

    public Path file() {
        return file;
    }

    public long size() {
        return size;
    }

    /** A little-endian view of {@code length <= MAX_SLICE} bytes at {@code offset}. */
    public ByteBuffer slice(long offset, int length) {
        if (offset < 0 || length < 0 || length > MAX_SLICE || offset + length > size)
            throw new IndexOutOfBoundsException(file + ": bytes [" + offset + ", " + (offset + length)
                    + ") outside the file of " + size + " bytes (or more than " + MAX_SLICE + " at once)");
        if (length == 0) return ByteBuffer.allocate(0).order(ByteOrder.LITTLE_ENDIAN);
        int i = (int) (offset / CHUNK);
        return chunks[i].slice((int) (offset - i * CHUNK), length).order(ByteOrder.LITTLE_ENDIAN);
    }
}
