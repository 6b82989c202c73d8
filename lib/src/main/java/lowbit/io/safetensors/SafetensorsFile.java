package lowbit.io.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.ChunkedMapping;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;

/**
 * A memory-mapped safetensors file: an 8-byte little-endian header length, a JSON header naming each
 * tensor's dtype, shape and byte range, then the tensor data. Everything in the header is checked
 * against the file when it is opened, so reading a tensor later cannot run off the file.
 *
 * <p>Like the reference implementation, overlapping tensors are refused; unlike it, unused gaps
 * between tensors are tolerated (they do no harm to reading).
 */
public final class SafetensorsFile implements AutoCloseable {
    /** The reference implementation refuses headers above 100 MB; so do we. */
    static final long MAX_HEADER = 100_000_000L;

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where a tensor's bytes are in the file (absolute offset). */
    public record Location(TensorInfo info, Dtype dtype, long offset, long byteSize) {}

    private final Path file;
    private final ChunkedMapping mapping;
    private final Map<String, String> metadata;
    private final Map<String, Location> locations;
    private final Map<String, TensorInfo> tensors;

    private SafetensorsFile(Path file, ChunkedMapping mapping, Map<String, String> metadata, Map<String, Location> locations) {
        this.file = file;
        this.mapping = mapping;
        this.metadata = Collections.unmodifiableMap(metadata);
        this.locations = Collections.unmodifiableMap(locations);
        Map<String, TensorInfo> t = new LinkedHashMap<>();
        locations.forEach((name, loc) -> t.put(name, loc.info()));
        this.tensors = Collections.unmodifiableMap(t);
    }

    public static SafetensorsFile open(Path file) {
        ChunkedMapping mapping;
        try {
            mapping = ChunkedMapping.map(file);
        } catch (IOException e) {
            throw new FormatException(file, "cannot read: " + e, e);
        }
        long size = mapping.size();
        if (size < 8)
            throw new FormatException(file, "file is " + size + " bytes, shorter than the 8-byte safetensors header length");
        long headerLength = mapping.slice(0, 8).getLong(0);
        if (headerLength < 2 || headerLength > MAX_HEADER || 8 + headerLength > size)
            throw new FormatException(file, "header length " + Long.toUnsignedString(headerLength)
                    + " is impossible for a file of " + size + " bytes (must be 2.." + Math.min(MAX_HEADER, size - 8)
                    + "); not a safetensors file?");
        ByteBuffer headerBytes = mapping.slice(8, (int) headerLength);
        byte[] raw = new byte[(int) headerLength];
        headerBytes.get(raw);
        JsonNode header;
        try {
            header = JSON.readTree(new String(raw, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new FormatException(file, "safetensors header is not valid JSON: " + e.getOriginalMessage(), e);
        }
        if (header == null || !header.isObject())
            throw new FormatException(file, "safetensors header must be a JSON object");
        long dataStart = 8 + headerLength;
        long dataSize = size - dataStart;

        Map<String, String> metadata = new LinkedHashMap<>();
        List<Location> found = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                if (!e.getValue().isObject())
                    throw new FormatException(file, "__metadata__ must be an object of strings");
                e.getValue().fields().forEachRemaining(m -> metadata.put(m.getKey(),
                        m.getValue().isTextual() ? m.getValue().textValue() : m.getValue().toString()));
                continue;
            }
            found.add(location(file, e.getKey(), e.getValue(), dataStart, dataSize));
        }
        found.sort(Comparator.comparingLong(Location::offset).thenComparingLong(Location::byteSize));
        Map<String, Location> locations = new LinkedHashMap<>();
        Location previous = null;
        for (Location loc : found) {
            locations.put(loc.info().name(), loc);
            if (loc.byteSize() == 0) continue; // an empty tensor occupies nothing, wherever it points
            if (previous != null && loc.offset() < previous.offset() + previous.byteSize())
                throw new FormatException(file, "tensor " + loc.info().name() + " (data_offsets from "
                        + (loc.offset() - dataStart) + ") overlaps tensor " + previous.info().name()
                        + " (ending at " + (previous.offset() + previous.byteSize() - dataStart) + ")");
            previous = loc;
        }
        return new SafetensorsFile(file, mapping, metadata, locations);
    }

    private static Location location(Path file, String name, JsonNode node, long dataStart, long dataSize) {
        if (!node.isObject()) throw new FormatException(file, "tensor " + name + ": header entry must be an object");
        JsonNode dtypeNode = node.get("dtype");
        if (dtypeNode == null || !dtypeNode.isTextual())
            throw new FormatException(file, "tensor " + name + ": missing dtype");
        Dtype dtype = Dtype.parse(dtypeNode.textValue()).orElseThrow(() -> new FormatException(file,
                "tensor " + name + ": unknown dtype " + dtypeNode.textValue() + " (known: " + List.of(Dtype.values()) + ")"));
        JsonNode shapeNode = node.get("shape");
        if (shapeNode == null || !shapeNode.isArray())
            throw new FormatException(file, "tensor " + name + ": missing shape");
        long[] shape = new long[shapeNode.size()];
        long elements = 1;
        for (int i = 0; i < shape.length; i++) {
            JsonNode d = shapeNode.get(i);
            if (!d.isIntegralNumber() || !d.canConvertToLong() || d.longValue() < 0)
                throw new FormatException(file, "tensor " + name + ": shape " + shapeNode + " must hold non-negative integers");
            shape[i] = d.longValue();
            try {
                elements = Math.multiplyExact(elements, shape[i]);
            } catch (ArithmeticException overflow) {
                throw new FormatException(file, "tensor " + name + ": shape " + shapeNode + " is absurdly large");
            }
        }
        JsonNode offsets = node.get("data_offsets");
        if (offsets == null || !offsets.isArray() || offsets.size() != 2
                || !offsets.get(0).isIntegralNumber() || !offsets.get(1).isIntegralNumber()
                || !offsets.get(0).canConvertToLong() || !offsets.get(1).canConvertToLong())
            throw new FormatException(file, "tensor " + name + ": data_offsets must be [begin, end]");
        long begin = offsets.get(0).longValue(), end = offsets.get(1).longValue();
        if (begin < 0 || end < begin || end > dataSize)
            throw new FormatException(file, "tensor " + name + ": data_offsets [" + begin + ", " + end
                    + "] outside the data section of " + dataSize + " bytes (or end before begin)");
        long expected = elements > Long.MAX_VALUE / dtype.bytes ? -1 : elements * dtype.bytes;
        if (end - begin != expected)
            throw new FormatException(file, "tensor " + name + ": " + dtype + " shape " + shapeNode + " needs "
                    + expected + " bytes but data_offsets [" + begin + ", " + end + "] hold " + (end - begin));
        return new Location(new TensorInfo(name, dtype.name(), shape), dtype, dataStart + begin, end - begin);
    }

    public Path file() {
        return file;
    }

    /** The header's {@code __metadata__} (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** Tensors by name, in the order of their data in the file. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public Location location(String name) {
        Location loc = locations.get(name);
        if (loc == null) throw new FormatException(file, "no tensor named " + name);
        return loc;
    }

    /** The tensor converted to float32 (F32, F16, BF16, F64 and the integer types; 8-bit floats are refused). */
    public float[] floats(String name) {
        Location loc = location(name);
        Dtype dtype = loc.dtype();
        if (!dtype.convertible())
            throw new FormatException(file, "tensor " + name + ": dtype " + dtype + " is not supported for conversion to float32");
        long n = loc.info().elements();
        if (n > Integer.MAX_VALUE - 8)
            throw new FormatException(file, "tensor " + name + " has " + n + " elements, more than one Java array holds");
        float[] out = new float[(int) n];
        int perPiece = ChunkedMapping.MAX_SLICE / dtype.bytes;
        for (int done = 0; done < n; ) {
            int count = (int) Math.min(perPiece, n - done);
            dtype.toFloats(mapping.slice(loc.offset() + (long) done * dtype.bytes, count * dtype.bytes), out, done, count);
            done += count;
        }
        return out;
    }

    /** The raw little-endian bytes of a tensor of at most {@link ChunkedMapping#MAX_SLICE} bytes. */
    public ByteBuffer bytes(String name) {
        Location loc = location(name);
        if (loc.byteSize() > ChunkedMapping.MAX_SLICE)
            throw new IllegalArgumentException(file + ": tensor " + name + " is " + loc.byteSize()
                    + " bytes, too large for one buffer; read it with floats() instead");
        return mapping.slice(loc.offset(), (int) loc.byteSize());
    }

    @Override
    public void close() {
        // the mapping is released by the garbage collector; nothing else is held
    }
}
