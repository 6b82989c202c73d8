package lowbit.calibration;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import lowbit.io.FormatException;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.io.gguf.GgufValue;
import lowbit.io.gguf.GgufWriter;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * llama.cpp's two importance-matrix files (common/imatrix-loader.cpp reads both, tools/imatrix writes both).
 *
 * <p>GGUF: general.type "imatrix", imatrix.datasets (string array), imatrix.chunk_count and imatrix.chunk_size
 * (uint32), and per weight tensor NAME two F32 tensors, NAME.in_sum2 (the sums of x^2, ne0 = input columns,
 * ne1 = experts) and NAME.counts (tokens, one per expert), in name order.
 *
 * <p>Legacy .dat, little-endian: int32 n_entries; per entry int32 name length, the name, int32 ncall (chunks,
 * rounded up), int32 nval, nval float32 of (sum / tokens) * ncall; then optionally int32 chunk count, int32
 * length and the dataset's name.
 */
final class ImportanceMatrixFiles {
    static final String TYPE = "imatrix";
    /** lowbit's provenance of a computed matrix (JSON): model, calibration draw, code version. */
    static final String PROVENANCE = "lowbit.provenance";
    static final String DATASETS = "imatrix.datasets";
    static final String CHUNK_COUNT = "imatrix.chunk_count";
    static final String CHUNK_SIZE = "imatrix.chunk_size";
    static final String SUMS = ".in_sum2";
    static final String COUNTS = ".counts";

    private ImportanceMatrixFiles() {}

    static ImportanceMatrix read(Path file) {
        byte[] head = new byte[4];
        int n;
        try (InputStream in = Files.newInputStream(file)) {
            n = in.readNBytes(head, 0, 4);
        } catch (NoSuchFileException e) {
            throw new FormatException(file, "no such file", e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        if (n == 4 && ByteBuffer.wrap(head).order(ByteOrder.LITTLE_ENDIAN).getInt() == GgufFile.MAGIC) return readGguf(file);
        return readLegacy(file);
    }

    private static ImportanceMatrix readGguf(Path file) {
        try (GgufFile g = GgufFile.open(file)) {
            Map<String, Object> meta = g.metadata();
            Object type = meta.get("general.type");
            if (type != null && !TYPE.equals(type))
                throw new FormatException(file, "a GGUF of general.type '" + type + "', not an importance matrix (general.type 'imatrix')");
            if (!meta.containsKey(DATASETS) || !meta.containsKey(CHUNK_COUNT) || !meta.containsKey(CHUNK_SIZE))
                throw new FormatException(file, "not an importance matrix: missing the imatrix metadata (" + DATASETS + ", " + CHUNK_COUNT
                        + ", " + CHUNK_SIZE + ") that llama-imatrix writes");
            List<String> datasets = new ArrayList<>();
            if (meta.get(DATASETS) instanceof List<?> l) for (Object o : l) datasets.add(String.valueOf(o));
            int chunkCount = uint32(file, meta, CHUNK_COUNT), chunkSize = uint32(file, meta, CHUNK_SIZE);

            Map<String, GgufTensor> sums = new TreeMap<>(), counts = new TreeMap<>();
            for (GgufTensor t : g.tensors()) {
                if (t.name().endsWith(SUMS)) sums.put(t.name().substring(0, t.name().length() - SUMS.length()), t);
                else if (t.name().endsWith(COUNTS)) counts.put(t.name().substring(0, t.name().length() - COUNTS.length()), t);
            }
            if (sums.isEmpty() && counts.isEmpty()) throw new FormatException(file, "no importance data (no NAME.in_sum2 tensors)");
            Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
            for (String name : union(sums, counts)) {
                GgufTensor s = sums.get(name), c = counts.get(name);
                if (s == null || c == null)
                    throw new FormatException(file, "tensor '" + name + "' has " + (s == null ? "counts but no " + SUMS : "sums but no " + COUNTS));
                if (s.type() != GgmlType.F32 || c.type() != GgmlType.F32)
                    throw new FormatException(file, "'" + name + "': sums and counts must be F32, got " + s.type() + " and " + c.type());
                long experts = c.elements();
                if (experts != 1 || s.elements() != s.dims()[0])
                    throw new FormatException(file, "tensor '" + name + "' has statistics for " + Math.max(experts, s.elements() / s.dims()[0])
                            + " experts (a mixture-of-experts imatrix); lowbit reads dense models' importance matrices only");
                refuseExperts(file, name);
                float[] v = floats(g, s.name());
                float count = floats(g, c.name())[0];
                if (!Float.isFinite(count) || count < 0)
                    throw new FormatException(file, "tensor '" + name + "' has token count " + count);
                entries.put(name, new ImportanceMatrix.Entry(finite(file, name, v), Math.round((double) count)));
            }
            return new ImportanceMatrix(file, false, entries, datasets, chunkCount, chunkSize);
        }
    }

    private static List<String> union(Map<String, ?> a, Map<String, ?> b) {
        TreeMap<String, Boolean> all = new TreeMap<>();
        a.keySet().forEach(k -> all.put(k, true));
        b.keySet().forEach(k -> all.put(k, true));
        return new ArrayList<>(all.keySet());
    }

    private static int uint32(Path file, Map<String, Object> meta, String key) {
        if (!(meta.get(key) instanceof Long v) || v < 0 || v > Integer.MAX_VALUE)
            throw new FormatException(file, key + " must be a uint32, got " + meta.get(key));
        return (int) (long) v;
    }

    private static float[] floats(GgufFile g, String tensor) {
        FloatBuffer b = g.raw(tensor).asFloatBuffer();
        float[] out = new float[b.remaining()];
        b.get(out);
        return out;
    }

    /** llama.cpp's merged experts are named blk.N.ffn_*_exps.weight: refused by name where the format cannot tell (legacy). */
    private static void refuseExperts(Path file, String name) {
        if (name.contains("_exps."))
            throw new FormatException(file, "tensor '" + name + "' is a mixture-of-experts tensor; lowbit reads dense models' "
                    + "importance matrices only");
    }

    /** llama-quantize refuses non-finite importance ("imatrix contains non-finite value"); so do we, naming the tensor. */
    private static float[] finite(Path file, String name, float[] v) {
        for (int i = 0; i < v.length; i++)
            if (!Float.isFinite(v[i])) throw new FormatException(file, "tensor '" + name + "' has a non-finite value " + v[i] + " at column " + i);
        return v;
    }

    private static ImportanceMatrix readLegacy(Path file) {
        ByteBuffer b;
        try {
            b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + file, e);
        }
        String what = "the entry count";
        try {
            int n = b.getInt();
            if (n < 1)
                throw new FormatException(file, "neither a GGUF importance matrix (no GGUF magic) nor a legacy .dat one (entry count " + n + ")");
            Map<String, ImportanceMatrix.Entry> entries = new LinkedHashMap<>();
            for (int i = 0; i < n; i++) {
                what = "entry " + (i + 1) + " of " + n;
                int len = b.getInt();
                if (len < 1 || len > b.remaining())
                    throw new FormatException(file, "not an importance matrix: " + what + " has a name of " + len + " bytes");
                byte[] nameBytes = new byte[len];
                b.get(nameBytes);
                String name = new String(nameBytes, StandardCharsets.UTF_8);
                what = "entry '" + name + "'";
                int ncall = b.getInt(), nval = b.getInt();
                if (ncall < 0 || nval < 1)
                    throw new FormatException(file, "not an importance matrix: " + what + " has ncall " + ncall + " and " + nval + " values");
                if ((long) nval * 4 > b.remaining())
                    throw new FormatException(file, "truncated legacy importance matrix: the file ends inside " + what + " ("
                            + nval + " values, " + b.remaining() + " bytes left)");
                float[] v = new float[nval];
                b.asFloatBuffer().get(v);
                b.position(b.position() + 4 * nval);
                refuseExperts(file, name);
                if (entries.put(name, new ImportanceMatrix.Entry(finite(file, name, v), ncall)) != null)
                    throw new FormatException(file, "tensor '" + name + "' appears twice");
            }
            int chunkCount = 0;
            List<String> datasets = new ArrayList<>();
            if (b.hasRemaining()) {
                what = "the chunk count";
                chunkCount = b.getInt();
                what = "the dataset name";
                int len = b.getInt();
                if (len < 0 || len > b.remaining()) throw new FormatException(file, "the dataset name has " + len + " bytes");
                byte[] d = new byte[len];
                b.get(d);
                if (len > 0) datasets.add(new String(d, StandardCharsets.UTF_8));
                if (b.hasRemaining()) throw new FormatException(file, b.remaining() + " bytes after the dataset name");
            }
            return new ImportanceMatrix(file, true, entries, datasets, chunkCount, 0);
        } catch (BufferUnderflowException e) {
            throw new FormatException(file, "truncated legacy importance matrix: the file ends inside " + what);
        }
    }

    static Path writeGguf(ImportanceMatrix m, Path out, Map<String, Object> provenance) {
        GgufWriter w = new GgufWriter();
        w.put("general.type", GgufValue.string(TYPE));
        if (!provenance.isEmpty()) {
            try {
                w.put(PROVENANCE, GgufValue.string(new ObjectMapper().writeValueAsString(provenance)));
            } catch (JsonProcessingException e) {
                throw new IllegalArgumentException("the imatrix provenance cannot be written as JSON: " + e.getMessage(), e);
            }
        }
        w.put(DATASETS, GgufValue.array(GgufValue.Type.STRING, m.datasets()));
        w.put(CHUNK_COUNT, GgufValue.uint32(m.chunkCount()));
        w.put(CHUNK_SIZE, GgufValue.uint32(m.chunkSize()));
        for (var e : m.entries().entrySet()) {
            float[] sums = e.getValue().sums();
            float count = e.getValue().count();
            w.add(new GgufWriter.Tensor(e.getKey() + SUMS, GgmlType.F32, new long[] {sums.length}, () -> bytes(sums)));
            w.add(new GgufWriter.Tensor(e.getKey() + COUNTS, GgmlType.F32, new long[] {1}, () -> bytes(new float[] {count})));
        }
        return w.write(out);
    }

    private static byte[] bytes(float[] v) {
        ByteBuffer b = ByteBuffer.allocate(4 * v.length).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(v);
        return b.array();
    }
}
