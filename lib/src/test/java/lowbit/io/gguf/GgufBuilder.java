package lowbit.io.gguf;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Writes GGUF files byte by byte for tests, with hooks to corrupt any field. Independent of GgufFile. */
public final class GgufBuilder {
    public int magic = 0x46554747;
    public int version = 3;
    public Long tensorCountOverride;
    public Long kvCountOverride;
    public int alignment = 32;
    private final Out kvs = new Out();
    private int kvCount;
    private final List<Tensor> tensors = new ArrayList<>();

    public static final class Tensor {
        public String name;
        public int nDims;
        public long[] ne;
        public int type;
        public byte[] data;
        public Long offsetOverride;
    }

    /** Little-endian byte sink. */
    public static final class Out {
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        public Out u8(int v) { bytes.write(v); return this; }
        public Out u16(int v) { return u8(v & 0xFF).u8((v >>> 8) & 0xFF); }
        public Out u32(long v) { for (int i = 0; i < 4; i++) u8((int) (v >>> (8 * i)) & 0xFF); return this; }
        public Out u64(long v) { for (int i = 0; i < 8; i++) u8((int) (v >>> (8 * i)) & 0xFF); return this; }
        public Out f32(float v) { return u32(Float.floatToRawIntBits(v)); }
        public Out f64(double v) { return u64(Double.doubleToRawLongBits(v)); }
        public Out str(String s) { byte[] b = s.getBytes(StandardCharsets.UTF_8); u64(b.length); bytes.writeBytes(b); return this; }
        public Out raw(byte[] b) { bytes.writeBytes(b); return this; }
        public byte[] toBytes() { return bytes.toByteArray(); }
        public int size() { return bytes.size(); }
    }

    /** A metadata entry whose value bytes (after the type) the caller writes. */
    public GgufBuilder kv(String key, int type, java.util.function.Consumer<Out> value) {
        kvs.str(key).u32(type);
        value.accept(kvs);
        kvCount++;
        return this;
    }

    public GgufBuilder kvString(String key, String v) { return kv(key, 8, o -> o.str(v)); }
    public GgufBuilder kvU32(String key, long v) { return kv(key, 4, o -> o.u32(v)); }
    public GgufBuilder kvF32(String key, float v) { return kv(key, 6, o -> o.f32(v)); }

    public GgufBuilder alignment(int a) {
        alignment = a;
        return kvU32("general.alignment", a);
    }

    public Tensor tensor(String name, int type, long[] ne, byte[] data) {
        Tensor t = new Tensor();
        t.name = name;
        t.nDims = ne.length;
        t.ne = ne;
        t.type = type;
        t.data = data;
        tensors.add(t);
        return t;
    }

    /** An F32 tensor; values in GGUF element order (ne0 fastest). */
    public Tensor f32(String name, long[] ne, float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return tensor(name, 0, ne, b.array());
    }

    public byte[] build() {
        Out o = new Out();
        o.u32(magic).u32(version);
        o.u64(tensorCountOverride != null ? tensorCountOverride : tensors.size());
        o.u64(kvCountOverride != null ? kvCountOverride : kvCount);
        o.raw(kvs.toBytes());
        long offset = 0;
        List<Long> offsets = new ArrayList<>();
        for (Tensor t : tensors) {
            offsets.add(offset);
            o.str(t.name).u32(t.nDims);
            for (long d : t.ne) o.u64(d);
            o.u32(t.type).u64(t.offsetOverride != null ? t.offsetOverride : offset);
            offset = align(offset + t.data.length);
        }
        while (o.size() % alignment != 0) o.u8(0);
        int dataStart = o.size();
        for (int i = 0; i < tensors.size(); i++) {
            while (o.size() < dataStart + offsets.get(i)) o.u8(0);
            o.raw(tensors.get(i).data);
        }
        return o.toBytes();
    }

    public Path write(Path file) {
        return write(file, build());
    }

    public static Path write(Path file, byte[] bytes) {
        try {
            return Files.write(file, bytes);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    private long align(long x) {
        return (x + alignment - 1) / alignment * alignment;
    }
}
