package lowbit.io.gguf;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;

/**
 * A GGUF file (versions 2 and 3, little-endian), memory-mapped read-only.
 *
 * <p>Metadata values come back as Java objects: uint8, int8, uint16, int16, int32 as Integer; uint32,
 * int64, uint64 as Long (a uint64 above 2^63-1 wraps to a negative Long); float32 as Float, float64 as
 * Double, bool as Boolean, string as String, arrays as unmodifiable {@code List<Object>} of those,
 * nested arrays as lists of lists.
 *
 * <p>The project compiles at Java 21 where java.lang.foreign is still a preview API, so the mapping is
 * made of {@link java.nio.MappedByteBuffer}s: the first 2 GiB once for the header and the tensors that
 * lie inside it, and each tensor beyond that mapped on its own. Files larger than 2 GiB therefore work;
 * a single tensor must stay under 2 GiB of storage (true of every tensor a float[] could hold anyway).
 */
public final class GgufFile implements AutoCloseable {
    /** "GGUF" read as a little-endian uint32. */
    public static final int MAGIC = 0x46554747;
    public static final int DEFAULT_ALIGNMENT = 32;
    public static final int MAX_DIMS = 4;
    private static final int MAX_ARRAY_NESTING = 16;

    private final Path path;
    private final FileChannel channel;
    private final long fileSize;
    private final ByteBuffer head;
    private final int version;
    private final Map<String, Object> metadata;
    private final Map<String, GgufValue> typedMetadata;
    private final List<GgufTensor> tensors;
    private final Map<String, GgufTensor> byName;
    private final int alignment;
    private final long dataStart;
    private volatile boolean closed;

    private GgufFile(Path path, FileChannel channel) throws IOException {
        this.path = path;
        this.channel = channel;
        this.fileSize = channel.size();
        this.head = channel.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(fileSize, Integer.MAX_VALUE))
                .order(ByteOrder.LITTLE_ENDIAN);
        Reader r = new Reader();

        r.need(4, "the magic number");
        int magic = head.getInt(0);
        if (magic != MAGIC)
            throw fail(String.format("not a GGUF file: magic is 0x%08x (%s), expected 0x%08x (\"GGUF\")",
                    magic, printable(magic), MAGIC));
        r.pos = 4;
        version = r.u32("the version");
        if (version != 2 && version != 3) {
            String hint = Integer.reverseBytes(version) == 2 || Integer.reverseBytes(version) == 3
                    ? " (this looks like a big-endian GGUF, which is not supported)"
                    : version == 1 ? " (GGUF v1 is obsolete; re-convert with a current llama.cpp)" : "";
            throw fail("unsupported GGUF version " + Integer.toUnsignedString(version) + ", expected 2 or 3" + hint);
        }
        long tensorCount = r.u64("the tensor count");
        long kvCount = r.u64("the metadata count");
        // smallest metadata entry: 8-byte key length + 4-byte type + 1-byte value; smallest tensor info: 32 bytes
        if (kvCount < 0 || kvCount > r.remaining() / 13)
            throw fail("metadata count " + Long.toUnsignedString(kvCount) + " is impossible for a file of " + fileSize + " bytes");
        if (tensorCount < 0 || tensorCount > r.remaining() / 32)
            throw fail("tensor count " + Long.toUnsignedString(tensorCount) + " is impossible for a file of " + fileSize + " bytes");

        Map<String, Object> meta = new LinkedHashMap<>();
        Map<String, GgufValue> typed = new LinkedHashMap<>();
        for (long i = 0; i < kvCount; i++) {
            String key = r.string("metadata key #" + i);
            int type = r.u32("the type of metadata '" + key + "'");
            // an array's element type is the next u32; peeked so that the typed copy can be written back as read
            int elementType = type == GgufValue.Type.ARRAY.id() && r.remaining() >= 4 ? head.getInt((int) r.pos) : -1;
            Object value = r.value(type, "metadata '" + key + "'", 0);
            if (meta.putIfAbsent(key, value) != null) throw fail("duplicate metadata key '" + key + "'");
            if (elementType != GgufValue.Type.ARRAY.id())
                typed.put(key, new GgufValue(GgufValue.Type.byId(type), elementType < 0 ? null : GgufValue.Type.byId(elementType), value));
        }
        metadata = Collections.unmodifiableMap(meta);
        typedMetadata = Collections.unmodifiableMap(typed);

        Object align = metadata.get("general.alignment");
        if (align == null) alignment = DEFAULT_ALIGNMENT;
        else if (align instanceof Long a && a > 0 && a <= (1 << 30) && Long.bitCount(a) == 1) alignment = (int) (long) a;
        else throw fail("general.alignment must be a uint32 power of two, found " + align
                + " (" + align.getClass().getSimpleName() + ")");

        List<GgufTensor> list = new ArrayList<>();
        Map<String, GgufTensor> names = new LinkedHashMap<>();
        for (long i = 0; i < tensorCount; i++) {
            String name = r.string("the name of tensor #" + i);
            String what = "tensor '" + name + "'";
            int nDims = r.u32("the dimension count of " + what);
            if (nDims < 1 || nDims > MAX_DIMS)
                throw fail(what + " has n_dims = " + Integer.toUnsignedString(nDims) + ", expected 1.." + MAX_DIMS);
            long[] ne = new long[nDims];
            long elements = 1;
            for (int d = 0; d < nDims; d++) {
                ne[d] = r.u64("dimension " + d + " of " + what);
                if (ne[d] < 0) throw fail(what + " has a negative dimension ne" + d + " = " + ne[d]);
                if (ne[d] != 0 && elements > Long.MAX_VALUE / ne[d])
                    throw fail(what + " has an element count that overflows 64 bits");
                elements *= ne[d];
            }
            int typeId = r.u32("the type of " + what);
            GgmlType type = GgmlType.byId(typeId);
            if (type == null)
                throw fail(what + " has unknown ggml type id " + Integer.toUnsignedString(typeId));
            long offset = r.u64("the offset of " + what);
            if (ne[0] % type.blockSize != 0)
                throw fail(what + " of type " + type + " has ne0 = " + ne[0]
                        + ", not a multiple of the block size " + type.blockSize);
            if (elements / type.blockSize > Long.MAX_VALUE / type.typeSize)
                throw fail(what + " is too large");
            GgufTensor t = new GgufTensor(name, type, ne, offset, type.byteSize(elements));
            if (names.putIfAbsent(name, t) != null) throw fail("duplicate tensor name '" + name + "'");
            list.add(t);
        }
        long headerEnd = r.pos;
        dataStart = (headerEnd + alignment - 1) / alignment * alignment;
        for (GgufTensor t : list) {
            String what = "tensor '" + t.name() + "'";
            if (Long.remainderUnsigned(t.offset(), alignment) != 0)
                throw fail(what + " has offset " + Long.toUnsignedString(t.offset())
                        + ", not a multiple of the alignment " + alignment);
            long available = fileSize - dataStart;
            if (t.offset() < 0 || t.offset() > available || t.byteSize() > available - t.offset())
                throw fail(what + " (" + t.type() + ", " + t.byteSize() + " bytes at data offset "
                        + Long.toUnsignedString(t.offset()) + ") runs past the end of the file: the data section starts at byte "
                        + dataStart + " and the file has " + fileSize + " bytes (truncated download?)");
        }
        // Two tensors sharing bytes are a corrupt or crafted file, refused as the safetensors reader does.
        List<GgufTensor> byOffset = new ArrayList<>(list);
        byOffset.sort(Comparator.comparingLong(GgufTensor::offset).thenComparingLong(GgufTensor::byteSize));
        GgufTensor previous = null;
        for (GgufTensor t : byOffset) {
            if (t.byteSize() == 0) continue; // an empty tensor occupies nothing, wherever it points
            if (previous != null && t.offset() < previous.offset() + previous.byteSize())
                throw fail("tensor '" + t.name() + "' (data offset " + t.offset() + ") overlaps tensor '" + previous.name()
                        + "' (data offsets " + previous.offset() + ".." + (previous.offset() + previous.byteSize()) + ")");
            previous = t;
        }
        tensors = Collections.unmodifiableList(list);
        byName = Collections.unmodifiableMap(names);
    }

    /** Opens and validates a GGUF file; the header is parsed eagerly, tensor data is read on demand. */
    public static GgufFile open(Path path) {
        FileChannel ch;
        try {
            ch = FileChannel.open(path, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new FormatException(path, "no such file", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot open " + path, e);
        }
        try {
            return new GgufFile(path, ch);
        } catch (IOException e) {
            closeQuietly(ch);
            throw new UncheckedIOException("cannot read " + path, e);
        } catch (RuntimeException e) {
            closeQuietly(ch);
            throw e;
        }
    }

    public Path path() {
        return path;
    }

    public int version() {
        return version;
    }

    /** All metadata in file order (unmodifiable). */
    public Map<String, Object> metadata() {
        return metadata;
    }

    /** The metadata with each value's wire type, in file order, for copying into a file {@link GgufWriter} writes (nested arrays left out). */
    public Map<String, GgufValue> typedMetadata() {
        return typedMetadata;
    }

    /** Tensor infos in file order (unmodifiable). */
    public List<GgufTensor> tensors() {
        return tensors;
    }

    public boolean hasTensor(String name) {
        return byName.containsKey(name);
    }

    /** The tensor of this name; IllegalArgumentException naming the file when there is none. */
    public GgufTensor tensor(String name) {
        GgufTensor t = byName.get(name);
        if (t == null) throw new IllegalArgumentException("no tensor '" + name + "' in " + path);
        return t;
    }

    public int alignment() {
        return alignment;
    }

    /** Absolute file offset of the data section (tensor offsets count from here). */
    public long dataStart() {
        return dataStart;
    }

    /** The tensor's stored bytes, read-only and little-endian, position 0, limit = byte size. */
    public ByteBuffer raw(String name) {
        GgufTensor t = tensor(name);
        if (closed) throw new IllegalStateException(path + " is closed");
        if (t.byteSize() > Integer.MAX_VALUE)
            throw new FormatException(path, "tensor '" + name + "' takes " + t.byteSize() + " bytes; tensors over 2 GiB are not supported");
        long start = dataStart + t.offset();
        int size = (int) t.byteSize();
        ByteBuffer b;
        if (start + size <= head.capacity()) {
            b = head.slice((int) start, size);
        } else {
            try {
                b = channel.map(FileChannel.MapMode.READ_ONLY, start, size);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot map tensor '" + name + "' of " + path, e);
            }
        }
        return b.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The tensor as float32 in GGUF element order (ne0 fastest), which is row-major order of {@link GgufTensor#shape()}. */
    public float[] dequantize(String name) {
        GgufTensor t = tensor(name);
        if (!t.type().isSupported())
            throw new FormatException(path, "unsupported tensor type " + t.type() + " for tensor '" + name
                    + "' (supported: " + GgmlType.supportedNames() + ")");
        if (t.elements() > Integer.MAX_VALUE - 8)
            throw new FormatException(path, "tensor '" + name + "' has " + t.elements() + " elements, more than a Java array holds");
        float[] out = new float[(int) t.elements()];
        Dequantize.dequantize(t.type(), raw(name), out.length, out);
        return out;
    }

    /**
     * Closes the file. The mapped pages are returned to the OS when the buffers become unreachable: Java 21
     * has no supported way to unmap eagerly, and doing it unsafely would crash any code still holding a buffer.
     */
    @Override
    public void close() {
        closed = true;
        closeQuietly(channel);
    }

    private FormatException fail(String problem) {
        return new FormatException(path, problem);
    }

    private static void closeQuietly(FileChannel ch) {
        try {
            ch.close();
        } catch (IOException ignored) {
            // nothing was written; a failing close of a read-only channel loses nothing
        }
    }

    private static String printable(int magic) {
        StringBuilder s = new StringBuilder("\"");
        for (int i = 0; i < 4; i++) {
            int c = (magic >>> (8 * i)) & 0xFF;
            s.append(c >= 32 && c < 127 ? String.valueOf((char) c) : String.format("\\x%02x", c));
        }
        return s.append('"').toString();
    }

    /** Sequential reads through the header with bounds checks that name what was being read. */
    private final class Reader {
        long pos;

        long remaining() {
            return head.capacity() - pos;
        }

        void need(long bytes, String what) {
            if (bytes < 0 || bytes > remaining()) {
                String where = head.capacity() < fileSize ? "the first 2 GiB (headers larger than that are not supported)"
                        : "the end of the file (" + fileSize + " bytes)";
                throw fail("reading " + what + " at byte " + pos + ": "
                        + (bytes < 0 ? Long.toUnsignedString(bytes) : bytes) + " bytes run past " + where);
            }
        }

        int u8(String what) {
            need(1, what);
            return head.get((int) pos++) & 0xFF;
        }

        int u16(String what) {
            need(2, what);
            int v = head.getShort((int) pos) & 0xFFFF;
            pos += 2;
            return v;
        }

        int u32(String what) {
            need(4, what);
            int v = head.getInt((int) pos);
            pos += 4;
            return v;
        }

        long u64(String what) {
            need(8, what);
            long v = head.getLong((int) pos);
            pos += 8;
            return v;
        }

        String string(String what) {
            long len = u64("the length of " + what);
            need(len, what + " (a string of " + Long.toUnsignedString(len) + " bytes)");
            byte[] bytes = new byte[(int) len];
            head.get((int) pos, bytes);
            pos += len;
            // malformed UTF-8 becomes U+FFFD rather than failing: llama.cpp writes byte tokens as <0xNN>, so a
            // valid file never needs raw bytes here
            return new String(bytes, StandardCharsets.UTF_8);
        }

        Object value(int type, String what, int depth) {
            return switch (type) {
                case 0 -> u8(what);
                case 1 -> (int) (byte) u8(what);
                case 2 -> u16(what);
                case 3 -> (int) (short) u16(what);
                case 4 -> Integer.toUnsignedLong(u32(what));
                case 5 -> u32(what);
                case 6 -> Float.intBitsToFloat(u32(what));
                case 7 -> {
                    int b = u8(what);
                    if (b > 1) throw fail(what + " is a bool with byte value " + b + " at byte " + (pos - 1) + ", expected 0 or 1");
                    yield b == 1;
                }
                case 8 -> string(what);
                case 9 -> array(what, depth);
                case 10, 11 -> u64(what);
                case 12 -> Double.longBitsToDouble(u64(what));
                default -> throw fail(what + " has unknown value type " + Integer.toUnsignedString(type)
                        + " at byte " + (pos - 4) + " (expected 0..12)");
            };
        }

        private List<Object> array(String what, int depth) {
            if (depth >= MAX_ARRAY_NESTING) throw fail(what + " nests arrays deeper than " + MAX_ARRAY_NESTING);
            int elementType = u32("the element type of " + what);
            long count = u64("the length of " + what);
            int minSize = switch (elementType) {
                case 0, 1, 7 -> 1;
                case 2, 3 -> 2;
                case 4, 5, 6 -> 4;
                case 8, 10, 11, 12 -> 8;
                case 9 -> 12;
                default -> throw fail(what + " is an array of unknown value type " + Integer.toUnsignedString(elementType)
                        + " (expected 0..12)");
            };
            if (count < 0 || count > remaining() / minSize)
                throw fail(what + " is an array of " + Long.toUnsignedString(count) + " elements at byte " + pos
                        + ", which cannot fit in the " + remaining() + " bytes left in the file");
            List<Object> list = new ArrayList<>((int) count);
            for (long i = 0; i < count; i++) list.add(value(elementType, what, depth + 1));
            return Collections.unmodifiableList(list);
        }
    }
}
