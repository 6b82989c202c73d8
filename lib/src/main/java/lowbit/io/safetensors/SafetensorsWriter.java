package lowbit.io.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes a safetensors file: tensors are added in order, then written in one pass with the header first. */
public final class SafetensorsWriter {
    private record Entry(String name, Dtype dtype, long[] shape, byte[] data) {}

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsWriter metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsWriter f32(String name, float[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return add(name, Dtype.F32, shape, b.array());
    }

    /** Values rounded to IEEE half precision. */
    public SafetensorsWriter f16(String name, float[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putShort(Float.floatToFloat16(v));
        return add(name, Dtype.F16, shape, b.array());
    }

    public SafetensorsWriter u8(String name, byte[] values, long... shape) {
        return add(name, Dtype.U8, shape, values.clone());
    }

    public SafetensorsWriter i32(String name, int[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asIntBuffer().put(values);
        return add(name, Dtype.I32, shape, b.array());
    }

    public SafetensorsWriter i64(String name, long[] values, long... shape) {
        ByteBuffer b = ByteBuffer.allocate(8 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asLongBuffer().put(values);
        return add(name, Dtype.I64, shape, b.array());
    }

    private SafetensorsWriter add(String name, Dtype dtype, long[] shape, byte[] data) {
        long n = 1;
        for (long d : shape) n *= d;
        if (n * dtype.bytes != data.length)
            throw new IllegalArgumentException(name + ": shape " + java.util.Arrays.toString(shape) + " of " + dtype
                    + " needs " + n * dtype.bytes + " bytes, got " + data.length);
        for (Entry e : entries) if (e.name.equals(name)) throw new IllegalArgumentException("tensor " + name + " added twice");
        entries.add(new Entry(name, dtype, shape, data));
        return this;
    }

    public void write(Path file) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode header = json.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode m = header.putObject("__metadata__");
            metadata.forEach(m::put);
        }
        long offset = 0;
        for (Entry e : entries) {
            ObjectNode t = header.putObject(e.name);
            t.put("dtype", e.dtype.name());
            var shape = t.putArray("shape");
            for (long d : e.shape) shape.add(d);
            var offsets = t.putArray("data_offsets");
            offsets.add(offset);
            offsets.add(offset + e.data.length);
            offset += e.data.length;
        }
        byte[] h;
        try {
            h = json.writeValueAsString(header).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int padded = (h.length + 7) / 8 * 8;   // the reference pads the header with spaces to 8 bytes
        try (OutputStream out = new java.io.BufferedOutputStream(Files.newOutputStream(file), 1 << 20)) {
            out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
            out.write(h);
            for (int i = h.length; i < padded; i++) out.write(' ');
            for (Entry e : entries) out.write(e.data);
        } catch (IOException e) {
            throw new UncheckedIOException("writing " + file, e);
        }
    }
}
