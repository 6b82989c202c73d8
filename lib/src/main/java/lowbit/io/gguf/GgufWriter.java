package lowbit.io.gguf;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import lowbit.io.AtomicOutput;

/**
 * Writes a GGUF v3 file (gguf.h's layout, little-endian): header, metadata, tensor infos, then each tensor's
 * data at an offset aligned to {@code general.alignment} (32 unless the metadata sets it). Tensor data is
 * produced one tensor at a time while writing, so a model never has to be held quantized in memory at once.
 * The file appears at its path only when complete ({@link AtomicOutput}).
 */
public final class GgufWriter {
    /**
     * One tensor: {@code dims} in GGUF order (ne0 innermost, so a PyTorch [out, in] weight is {in, out});
     * {@code data} yields exactly {@code type.byteSize(elements)} bytes when called, once.
     */
    public record Tensor(String name, GgmlType type, long[] dims, Supplier<byte[]> data) {
        public Tensor {
            dims = dims.clone();
            if (dims.length < 1 || dims.length > GgufFile.MAX_DIMS)
                throw new IllegalArgumentException("tensor '" + name + "' has " + dims.length + " dimensions, expected 1.." + GgufFile.MAX_DIMS);
            if (dims[0] % type.blockSize != 0)
                throw new IllegalArgumentException("tensor '" + name + "' of type " + type + " has a row of " + dims[0]
                        + " elements, not a multiple of the block size " + type.blockSize);
        }

        public long elements() {
            long n = 1;
            for (long d : dims) n *= d;
            return n;
        }

        public long byteSize() {
            return type.byteSize(elements());
        }
    }

    private final Map<String, GgufValue> metadata = new LinkedHashMap<>();
    private final List<Tensor> tensors = new ArrayList<>();
    private final Set<String> names = new HashSet<>();

    /** Sets (or replaces, keeping its place) a metadata key. */
    public GgufWriter put(String key, GgufValue value) {
        metadata.put(key, value);
        return this;
    }

    public GgufWriter putAll(Map<String, GgufValue> values) {
        values.forEach(this::put);
        return this;
    }

    public GgufWriter remove(String key) {
        metadata.remove(key);
        return this;
    }

    /** Adds a tensor; the file lists them in the order added. */
    public GgufWriter add(Tensor t) {
        if (!names.add(t.name())) throw new IllegalArgumentException("tensor '" + t.name() + "' is added twice");
        tensors.add(t);
        return this;
    }

    public int alignment() {
        GgufValue a = metadata.get("general.alignment");
        if (a == null) return GgufFile.DEFAULT_ALIGNMENT;
        if (a.type() != GgufValue.Type.UINT32 || !(a.value() instanceof Long v) || v <= 0 || Long.bitCount(v) != 1)
            throw new IllegalArgumentException("general.alignment must be a uint32 power of two, got " + a);
        return (int) (long) v;
    }

    /** Writes the file at {@code out}, which must not exist; returns its absolute path. */
    public Path write(Path out) {
        int alignment = alignment();
        return AtomicOutput.file(out, partial -> {
            try (OutputStream os = new BufferedOutputStream(Files.newOutputStream(partial), 1 << 20)) {
                Header h = new Header();
                h.u32(GgufFile.MAGIC);
                h.u32(3);
                h.u64(tensors.size());
                h.u64(metadata.size());
                for (var e : metadata.entrySet()) {
                    h.string(e.getKey());
                    h.u32(e.getValue().type().id());
                    h.value(e.getValue(), e.getKey());
                }
                long offset = 0;
                for (Tensor t : tensors) {
                    h.string(t.name());
                    h.u32(t.dims().length);
                    for (long d : t.dims()) h.u64(d);
                    h.u32(t.type().id);
                    h.u64(offset);
                    offset = align(offset + t.byteSize(), alignment);
                }
                long written = h.size();
                h.writeTo(os);
                written = pad(os, written, alignment);
                for (Tensor t : tensors) {
                    byte[] data = t.data().get();
                    if (data.length != t.byteSize())
                        throw new IllegalStateException("tensor '" + t.name() + "' produced " + data.length + " bytes, expected "
                                + t.byteSize() + " (" + t.type() + ", " + t.elements() + " elements)");
                    os.write(data);
                    written = pad(os, written + data.length, alignment);
                }
            }
        });
    }

    private static long align(long n, int alignment) {
        return (n + alignment - 1) / alignment * alignment;
    }

    private static long pad(OutputStream os, long written, int alignment) throws IOException {
        long to = align(written, alignment);
        os.write(new byte[(int) (to - written)]);
        return to;
    }

    /** The header and metadata, little-endian, in a growing buffer (they are small next to the tensor data). */
    private static final class Header {
        private ByteBuffer b = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

        private void room(int n) {
            if (b.remaining() >= n) return;
            ByteBuffer bigger = ByteBuffer.allocate(Math.max(b.capacity() * 2, b.position() + n)).order(ByteOrder.LITTLE_ENDIAN);
            bigger.put(b.flip());
            b = bigger;
        }

        long size() {
            return b.position();
        }

        void writeTo(OutputStream os) throws IOException {
            os.write(b.array(), 0, b.position());
        }

        void u8(int v) { room(1); b.put((byte) v); }
        void u16(int v) { room(2); b.putShort((short) v); }
        void u32(long v) { room(4); b.putInt((int) v); }
        void u64(long v) { room(8); b.putLong(v); }

        void string(String s) {
            byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
            u64(bytes.length);
            room(bytes.length);
            b.put(bytes);
        }

        void value(GgufValue v, String key) {
            if (v.type() == GgufValue.Type.ARRAY) {
                List<?> list = (List<?>) v.value();
                u32(v.elementType().id());
                u64(list.size());
                for (Object o : list) scalar(v.elementType(), o, key);
            } else {
                scalar(v.type(), v.value(), key);
            }
        }

        private void scalar(GgufValue.Type type, Object o, String key) {
            try {
                switch (type) {
                    case UINT8, INT8 -> u8(((Number) o).intValue());
                    case UINT16, INT16 -> u16(((Number) o).intValue());
                    case UINT32, INT32 -> u32(((Number) o).longValue());
                    case UINT64, INT64 -> u64(((Number) o).longValue());
                    case FLOAT32 -> { room(4); b.putFloat(((Number) o).floatValue()); }
                    case FLOAT64 -> { room(8); b.putDouble(((Number) o).doubleValue()); }
                    case BOOL -> u8((Boolean) o ? 1 : 0);
                    case STRING -> string((String) o);
                    case ARRAY -> throw new IllegalArgumentException("metadata '" + key + "': nested arrays are not written");
                }
            } catch (ClassCastException e) {
                throw new IllegalArgumentException("metadata '" + key + "': a " + type + " cannot hold " + o.getClass().getSimpleName() + " " + o);
            }
        }
    }
}
