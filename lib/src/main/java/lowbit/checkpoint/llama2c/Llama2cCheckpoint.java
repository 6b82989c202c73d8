package lowbit.checkpoint.llama2c;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.io.ChunkedMapping;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;

/**
 * llama2.c's legacy (version 0) .bin checkpoint, e.g. stories260K.bin: a header of seven int32
 * (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size means
 * the classifier is not shared with the embedding), then float32 weights grouped by kind across
 * layers in the order run.c reads them.
 *
 * <p>Tensors are presented under Hugging Face Llama names. llama2.c's RoPE rotates interleaved pairs
 * (rows 2i, 2i+1 of a head), transformers' rotate_half rotates rows i and i + D/2, so q and k rows are
 * permuted the way llama2.c's export.py does for its Hugging Face export ({@code permute_original}):
 * HF row {@code h*D + j*(D/2) + i} is llama2.c row {@code h*D + 2i + j}.
 */
public final class Llama2cCheckpoint implements Checkpoint {
    static final int HEADER_BYTES = 7 * Integer.BYTES;
    /** The magic of llama2.c's newer (version 1+) exports, "ak42". */
    static final int VERSIONED_MAGIC = 0x616b3432;

    public record Header(int dim, int hiddenDim, int nLayers, int nHeads, int nKvHeads, int vocabSize, int seqLen) {
        public boolean sharedClassifier() {
            return vocabSize > 0;
        }

        public int headSize() {
            return dim / nHeads;
        }
    }

    /** Where a tensor is and, for q/k, how many heads to permute (0: stored as is). */
    private record Entry(TensorInfo info, long offset, int permuteHeads) {}

    private final Path file;
    private final Header header;
    private final ModelConfig config;
    private final ChunkedMapping mapping;
    private final Map<String, Entry> entries;
    private final Map<String, TensorInfo> tensors;
    private String sha256;
    private Tokenizer tokenizer;

    private Llama2cCheckpoint(Path file, Header header, ChunkedMapping mapping, Map<String, Entry> entries) {
        this.file = file;
        this.header = header;
        this.mapping = mapping;
        this.entries = entries;
        Map<String, TensorInfo> t = new LinkedHashMap<>();
        entries.forEach((name, e) -> t.put(name, e.info()));
        this.tensors = Collections.unmodifiableMap(t);
        int vocab = Math.abs(header.vocabSize());
        // run.c's tokenizer: BOS 1, EOS 2 (sentencepiece's Llama ids)
        this.config = new ModelConfig(ModelConfig.Family.LLAMA, "llama2c", vocab, header.dim(), header.hiddenDim(),
                header.nLayers(), header.nHeads(), header.nKvHeads(), header.headSize(), header.seqLen(), 10000.0, 1e-5,
                header.sharedClassifier(), false, false, "silu", true, header.dim(), 1, 2);
    }

    public static Llama2cCheckpoint open(Path file) {
        ChunkedMapping mapping;
        try {
            mapping = ChunkedMapping.map(file);
        } catch (IOException e) {
            throw new FormatException(file, "cannot read: " + e, e);
        }
        if (mapping.size() < HEADER_BYTES)
            throw new FormatException(file, "file is " + mapping.size() + " bytes, shorter than the 28-byte llama2.c header");
        ByteBuffer h = mapping.slice(0, HEADER_BYTES);
        if (h.getInt(0) == VERSIONED_MAGIC)
            throw new FormatException(file, "llama2.c version " + h.getInt(4)
                    + " export (magic ak42); only the legacy version-0 format (export.py --version 0) is supported");
        Header header = new Header(h.getInt(0), h.getInt(4), h.getInt(8), h.getInt(12), h.getInt(16), h.getInt(20), h.getInt(24));
        validate(file, header);
        Map<String, Entry> entries = layout(header);
        long expected = entries.values().stream().mapToLong(e -> e.offset() + 4 * e.info().elements()).max().orElse(0);
        // rms_final is followed by the unused freq_cis tables; with a shared classifier they end the file
        long freqEnd = offsetAfterFreqs(header);
        expected = Math.max(expected, freqEnd);
        if (mapping.size() != expected)
            throw new FormatException(file, "expected " + expected + " bytes for a llama2.c file with " + header
                    + ", found " + mapping.size() + (mapping.size() < expected ? " (truncated?)" : ""));
        return new Llama2cCheckpoint(file, header, mapping, entries);
    }

    private static void validate(Path file, Header h) {
        if (h.dim() <= 0 || h.hiddenDim() <= 0 || h.nLayers() <= 0 || h.nHeads() <= 0 || h.nKvHeads() <= 0
                || h.vocabSize() == 0 || h.vocabSize() == Integer.MIN_VALUE || h.seqLen() <= 0)
            throw new FormatException(file, "implausible llama2.c header " + h + " (not a llama2.c legacy .bin?)");
        double floats = (double) Math.abs((long) h.vocabSize()) * h.dim() * 2
                + (double) h.nLayers() * h.dim() * (4.0 * h.dim() + 3.0 * h.hiddenDim() + 2) + (double) h.seqLen() * h.dim();
        if (floats > 1e15 / 4) // the sizes below are computed in long arithmetic; a petabyte is no model
            throw new FormatException(file, "implausible llama2.c header " + h + " (implies a file of petabytes)");
        if (h.dim() % h.nHeads() != 0 || h.headSize() % 2 != 0 || h.nHeads() % h.nKvHeads() != 0)
            throw new FormatException(file, "inconsistent llama2.c header " + h
                    + ": dim must split into n_heads heads of even size, and n_heads be a multiple of n_kv_heads");
    }

    private static Map<String, Entry> layout(Header h) {
        long dim = h.dim(), hidden = h.hiddenDim(), vocab = Math.abs((long) h.vocabSize());
        long kvDim = (long) h.nKvHeads() * h.headSize();
        int layers = h.nLayers();
        Map<String, Entry> m = new LinkedHashMap<>();
        long[] at = {HEADER_BYTES};
        add(m, at, "model.embed_tokens.weight", 0, vocab, dim);
        perLayer(m, at, layers, "input_layernorm.weight", 0, dim);
        perLayer(m, at, layers, "self_attn.q_proj.weight", h.nHeads(), dim, dim);
        perLayer(m, at, layers, "self_attn.k_proj.weight", h.nKvHeads(), kvDim, dim);
        perLayer(m, at, layers, "self_attn.v_proj.weight", 0, kvDim, dim);
        perLayer(m, at, layers, "self_attn.o_proj.weight", 0, dim, dim);
        perLayer(m, at, layers, "post_attention_layernorm.weight", 0, dim);
        // llama2.c's FFN is w2(silu(w1 x) * w3 x): w1 = gate, w3 = up, w2 = down
        perLayer(m, at, layers, "mlp.gate_proj.weight", 0, hidden, dim);
        perLayer(m, at, layers, "mlp.down_proj.weight", 0, dim, hidden);
        perLayer(m, at, layers, "mlp.up_proj.weight", 0, hidden, dim);
        add(m, at, "model.norm.weight", 0, dim);
        if (!h.sharedClassifier()) {
            at[0] = offsetAfterFreqs(h);
            add(m, at, "lm_head.weight", 0, vocab, dim);
        }
        return m;
    }

    /** End of the freq_cis_real/imag tables (seq_len * head_size / 2 floats each) that follow model.norm. */
    private static long offsetAfterFreqs(Header h) {
        long dim = h.dim(), hidden = h.hiddenDim(), vocab = Math.abs((long) h.vocabSize()), layers = h.nLayers();
        long kvDim = (long) h.nKvHeads() * h.headSize();
        long floats = vocab * dim + layers * (dim + dim * dim + 2 * kvDim * dim + dim * dim + dim + 3 * hidden * dim) + dim
                + 2L * h.seqLen() * (h.headSize() / 2);
        return HEADER_BYTES + 4 * floats;
    }

    private static void perLayer(Map<String, Entry> m, long[] at, int layers, String suffix, int permuteHeads, long... shape) {
        for (int l = 0; l < layers; l++) add(m, at, "model.layers." + l + "." + suffix, permuteHeads, shape);
    }

    private static void add(Map<String, Entry> m, long[] at, String name, int permuteHeads, long... shape) {
        TensorInfo info = new TensorInfo(name, "F32", shape);
        m.put(name, new Entry(info, at[0], permuteHeads));
        at[0] += 4 * info.elements();
    }

    public Header header() {
        return header;
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public float[] floats(String name) {
        Entry e = entries.get(name);
        if (e == null) throw new FormatException(file, "no tensor named " + name + " in this llama2.c checkpoint");
        long n = e.info().elements();
        if (n > Integer.MAX_VALUE - 8)
            throw new FormatException(file, "tensor " + name + " has " + n + " elements, more than one Java array holds");
        float[] raw = new float[(int) n];
        int perPiece = ChunkedMapping.MAX_SLICE / 4;
        for (int done = 0; done < n; ) {
            int count = (int) Math.min(perPiece, n - done);
            mapping.slice(e.offset() + 4L * done, 4 * count).asFloatBuffer().get(raw, done, count);
            done += count;
        }
        return e.permuteHeads() == 0 ? raw : interleavedToHalves(raw, e.permuteHeads(), (int) e.info().shape()[1]);
    }

    /** Rows of each head from llama2.c's pair order (2i + j) to rotate_half order (j*D/2 + i). */
    static float[] interleavedToHalves(float[] w, int heads, int cols) {
        int rows = w.length / cols, d = rows / heads, half = d / 2;
        float[] out = new float[w.length];
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < half; i++)
                for (int j = 0; j < 2; j++)
                    System.arraycopy(w, (h * d + 2 * i + j) * cols, out, (h * d + j * half + i) * cols, cols);
        return out;
    }

    /** tok{vocab}.bin beside the checkpoint, else tokenizer.bin; loaded on first use. */
    @Override
    public synchronized Tokenizer tokenizer() {
        if (tokenizer == null) {
            Path dir = file.toAbsolutePath().getParent();
            List<Path> candidates = List.of(dir.resolve("tok" + config.vocabSize() + ".bin"), dir.resolve("tokenizer.bin"));
            Path found = candidates.stream().filter(Files::isRegularFile).findFirst().orElseThrow(() -> new FormatException(file,
                    "no llama2.c tokenizer beside the checkpoint (looked for " + candidates + ")"));
            tokenizer = Tokenizers.fromLlama2c(found, config.vocabSize());
        }
        return tokenizer;
    }

    /** sha256 of the .bin file. */
    @Override
    public synchronized String sha256() {
        if (sha256 == null) sha256 = Hashing.sha256(file);
        return sha256;
    }

    @Override
    public String source() {
        return file.toString();
    }

    @Override
    public void close() {}
}
