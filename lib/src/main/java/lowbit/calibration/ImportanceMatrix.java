package lowbit.calibration;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import lowbit.checkpoint.gguf.GgufCheckpoint;
import lowbit.io.FormatException;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * llama.cpp's importance matrix (tools/imatrix): per weight tensor of the transformer blocks, the sum over
 * calibration tokens of x^2 for each input column, and the number of tokens. llama-quantize hands the
 * quantizer the per-column mean, {@link #importance}. Keyed by GGUF tensor name (blk.N.attn_q.weight); q, k
 * and v read the same input and each has its own (equal) entry, as llama-imatrix stores them. Like
 * llama-imatrix without --process-output, the output head is not measured.
 *
 * <p>Dense models only: a mixture-of-experts entry (one count per expert) is refused when read. Files are read
 * and written by {@link ImportanceMatrixFiles} (the GGUF format and the legacy .dat).
 */
public final class ImportanceMatrix {
    /**
     * One tensor's statistics. For the GGUF format and a computed matrix, {@code sums} is the sum of x^2 per input
     * column and {@code count} the number of tokens. The legacy format stores (sum / tokens) * ncall with
     * count = ncall (the tokens in chunks, rounded up), so sums / count is the mean in both.
     */
    public record Entry(float[] sums, long count) {
        public Entry {
            Objects.requireNonNull(sums, "sums");
            if (count < 0) throw new IllegalArgumentException("negative count " + count);
        }

        public int columns() {
            return sums.length;
        }
    }

    private final Path source;
    private final boolean legacy;
    private final Map<String, Entry> entries;
    private final List<String> datasets;
    private final int chunkCount;
    private final int chunkSize;

    /**
     * @param source     the file it was read from (named in errors), or null for a computed matrix
     * @param legacy     whether the entries hold the legacy format's scaled means
     * @param chunkCount chunks of {@code chunkSize} tokens it was computed on
     * @param chunkSize  tokens per chunk (0 when unknown: the legacy format does not record it)
     */
    ImportanceMatrix(Path source, boolean legacy, Map<String, Entry> entries, List<String> datasets, int chunkCount, int chunkSize) {
        this.source = source;
        this.legacy = legacy;
        this.entries = Collections.unmodifiableMap(new TreeMap<>(entries));
        this.datasets = List.copyOf(datasets);
        this.chunkCount = chunkCount;
        this.chunkSize = chunkSize;
    }

    /** Reads llama.cpp's imatrix GGUF or legacy .dat file, told apart by content (the GGUF magic), not by name. */
    public static ImportanceMatrix read(Path file) {
        return ImportanceMatrixFiles.read(file);
    }

    /** Writes llama-imatrix's GGUF format at {@code out}, which must not exist; returns its absolute path. */
    public Path write(Path out) {
        return ImportanceMatrixFiles.writeGguf(this, out, Map.of());
    }

    /**
     * As {@link #write(Path)}, with {@code provenance} (model, calibration draw, code version) as JSON under the
     * metadata key {@value ImportanceMatrixFiles#PROVENANCE}, which llama.cpp ignores.
     */
    public Path write(Path out, Map<String, Object> provenance) {
        return ImportanceMatrixFiles.writeGguf(this, out, provenance);
    }

    /**
     * The per-column mean of x^2 that llama-quantize passes to the quantizer for this tensor, or null when the
     * matrix has no entry for it. As llama-quantize: sums / count in float; a zero count gives 1 per column
     * (GGUF format) or the stored values (legacy).
     */
    public float[] importance(String ggufTensorName) {
        Entry e = entries.get(ggufTensorName);
        if (e == null) return null;
        float[] out = new float[e.sums.length];
        if (e.count == 0) {
            if (legacy) System.arraycopy(e.sums, 0, out, 0, out.length);
            else Arrays.fill(out, 1f);
            return out;
        }
        float count = (float) e.count;
        for (int i = 0; i < out.length; i++) out[i] = e.sums[i] / count;
        return out;
    }

    /**
     * Refuses a matrix made for another model: an entry whose tensor the model lacks, or whose column count
     * differs from the tensor's input columns. Tensors of the model without an entry are allowed (llama-quantize
     * quantizes them without importance and warns); they are returned, sorted.
     *
     * @param columnsByGgufName the model's weight tensors that may be quantized, by GGUF name, with their input
     *                          columns (ne0)
     */
    public List<String> checkAgainst(Map<String, Integer> columnsByGgufName) {
        for (var e : entries.entrySet()) {
            Integer columns = columnsByGgufName.get(e.getKey());
            if (columns == null)
                throw refuse("has tensor '" + e.getKey() + "' that the model lacks: an imatrix for another model");
            if (columns != e.getValue().columns())
                throw refuse("tensor '" + e.getKey() + "' has " + e.getValue().columns() + " columns but the model's has " + columns
                        + ": an imatrix for another model");
        }
        List<String> missing = new ArrayList<>();
        for (String name : columnsByGgufName.keySet()) if (!entries.containsKey(name)) missing.add(name);
        Collections.sort(missing);
        return missing;
    }

    private RuntimeException refuse(String problem) {
        return source != null ? new FormatException(source, problem) : new IllegalArgumentException("the importance matrix " + problem);
    }

    /** Entries by GGUF tensor name, sorted by name. */
    public Map<String, Entry> entries() {
        return entries;
    }

    /** The file it was read from, or null when computed. */
    public Path source() {
        return source;
    }

    public boolean legacy() {
        return legacy;
    }

    /** The calibration text(s) named in the file, or given when computed. */
    public List<String> datasets() {
        return datasets;
    }

    public int chunkCount() {
        return chunkCount;
    }

    /** Tokens per chunk; 0 when unknown (legacy files). */
    public int chunkSize() {
        return chunkSize;
    }

    /**
     * Computes the matrix over calibration windows, each one chunk as llama-imatrix evaluates it (a fresh context
     * per window; every token counted), through the model's forward hooks. Every linear of the blocks is measured.
     *
     * @param datasets what the windows were drawn from, stored in the file as llama-imatrix stores its text file
     */
    public static ImportanceMatrix compute(Transformer model, int[][] windows, List<String> datasets, Progress progress) {
        if (windows.length == 0) throw new IllegalArgumentException("no calibration windows");
        int seqlen = windows[0].length;
        for (int[] w : windows)
            if (w.length != seqlen) throw new IllegalArgumentException("calibration windows differ in length: " + w.length + " vs " + seqlen);
        Map<Linear, String> names = new LinkedHashMap<>();
        for (Linear lin : model.linears().values()) {
            if (lin.layer() < 0) continue;
            String gguf = GgufCheckpoint.toGgufName(lin.name() + ".weight");
            if (gguf == null)
                throw new IllegalArgumentException("linear " + lin.name() + " has no llama.cpp tensor name; the importance matrix needs "
                        + "a llama-family model");
            names.put(lin, gguf);
        }
        SquareSums sums = new SquareSums(names.keySet());
        try (AutoCloseable h = model.addHook(sums); Progress.Task task = progress.start("imatrix", windows.length, "win")) {
            for (int[] w : windows) {
                model.hidden(w);
                task.step(1);
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        for (var e : names.entrySet()) entries.put(e.getValue(), sums.entry(e.getKey()));
        // llama-imatrix's chunk count: tokens seen / chunk size, one chunk per window here
        return new ImportanceMatrix(null, false, entries, datasets, windows.length, seqlen);
    }

    /** Per linear, the running sum of x^2 per input column (in double: 10^5 tokens of float sums would lose digits) and the token count. */
    private static final class SquareSums implements ForwardHook {
        private final Map<Linear, double[]> sums = new LinkedHashMap<>();
        private final Map<Linear, long[]> counts = new LinkedHashMap<>();

        SquareSums(Iterable<Linear> linears) {
            for (Linear lin : linears) {
                sums.put(lin, new double[lin.inFeatures()]);
                counts.put(lin, new long[1]);
            }
        }

        @Override
        public void linearInput(Linear linear, float[] x, int rows) {
            double[] acc = sums.get(linear);
            if (acc == null) return;
            int n = acc.length;
            for (int r = 0; r < rows; r++) {
                int off = r * n;
                for (int j = 0; j < n; j++) {
                    double v = x[off + j];
                    acc[j] += v * v;
                }
            }
            counts.get(linear)[0] += rows;
        }

        Entry entry(Linear lin) {
            double[] acc = sums.get(lin);
            float[] f = new float[acc.length];
            for (int j = 0; j < f.length; j++) {
                f[j] = (float) acc[j];
                // llama-imatrix stops on these too: a quantizer weighted by NaN or infinity is meaningless
                if (!Float.isFinite(f[j]))
                    throw new IllegalStateException("the inputs of " + lin.name() + " have a non-finite sum of squares " + f[j] + " at column " + j);
            }
            return new Entry(f, counts.get(lin)[0]);
        }
    }
}
