package lowbit.io.safetensors;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Writes small safetensors files byte by byte for tests, including deliberately broken ones. */
public final class SafetensorsBuilder {
    private record Entry(String name, String dtype, long[] shape, byte[] data) {}

    private final List<Entry> entries = new ArrayList<>();
    private final Map<String, String> metadata = new LinkedHashMap<>();

    public SafetensorsBuilder metadata(String key, String value) {
        metadata.put(key, value);
        return this;
    }

    public SafetensorsBuilder f32(String name, long[] shape, float... values) {
        ByteBuffer b = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : values) b.putFloat(v);
        return raw(name, "F32", shape, b.array());
    }

    /** 16-bit patterns as given (F16 or BF16), little-endian. */
    public SafetensorsBuilder bits16(String name, String dtype, long[] shape, int... patterns) {
        ByteBuffer b = ByteBuffer.allocate(2 * patterns.length).order(ByteOrder.LITTLE_ENDIAN);
        for (int p : patterns) b.putShort((short) p);
        return raw(name, dtype, shape, b.array());
    }

    public SafetensorsBuilder raw(String name, String dtype, long[] shape, byte[] data) {
        entries.add(new Entry(name, dtype, shape, data));
        return this;
    }

    public String header() {
        StringBuilder json = new StringBuilder("{");
        if (!metadata.isEmpty()) {
            json.append("\"__metadata__\":{");
            String sep = "";
            for (var m : metadata.entrySet()) {
                json.append(sep).append('"').append(m.getKey()).append("\":\"").append(m.getValue()).append('"');
                sep = ",";
            }
            json.append("}");
        }
        long offset = 0;
        for (Entry e : entries) {
            if (json.length() > 1) json.append(',');
            json.append('"').append(e.name).append("\":{\"dtype\":\"").append(e.dtype).append("\",\"shape\":")
                    .append(Arrays.toString(e.shape).replace(" ", "")).append(",\"data_offsets\":[")
                    .append(offset).append(',').append(offset + e.data.length).append("]}");
            offset += e.data.length;
        }
        return json.append('}').toString();
    }

    public byte[] data() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Entry e : entries) out.writeBytes(e.data);
        return out.toByteArray();
    }

    public Path write(Path file) throws IOException {
        return writeRaw(file, header(), data());
    }

    /** Header length prefix, the header (padded with spaces to a multiple of 8 as the reference does), then data. */
    public static Path writeRaw(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        int padded = (h.length + 7) / 8 * 8;
        ByteBuffer b = ByteBuffer.allocate(8 + padded + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(padded).put(h);
        for (int i = h.length; i < padded; i++) b.put((byte) ' ');
        b.put(data);
        Files.createDirectories(file.toAbsolutePath().getParent());
        Files.write(file, b.array());
        return file;
    }
}
