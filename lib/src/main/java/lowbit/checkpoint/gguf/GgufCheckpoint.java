package lowbit.checkpoint.gguf;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import lowbit.checkpoint.Checkpoint;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.model.ModelConfig;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;

/**
 * A llama.cpp GGUF model seen as the Hugging Face checkpoint it was converted from: transformers tensor
 * names, PyTorch shapes, and for the llama architecture the q/k rows put back in Hugging Face order.
 *
 * <p>llama.cpp's convert_hf_to_gguf.py permutes the rows of q_proj and k_proj of llama-architecture models
 * (LlamaModel.permute: reshape(n_head, 2, head_dim/2, cols).swapaxes(1, 2)) so that ggml's interleaved RoPE
 * (rotating pairs 2j, 2j+1) computes what Hugging Face's rotate_half RoPE (pairs j, j + head_dim/2) does.
 * {@link #floats} undoes it, as transformers' own GGUF loader does. Qwen2 and Qwen3 are converted without
 * the permutation (llama.cpp runs them with NEOX-style RoPE), so their rows are taken as stored.
 *
 * <p>Rope scaling is refused (linear with factor 1 counts as none): {@link ModelConfig} has no field for it,
 * and silently ignoring it would give wrong logits beyond the original context.
 */
public final class GgufCheckpoint implements Checkpoint {
    /** GGUF general.architecture values this class maps; Mistral and SmolLM are converted as "llama". */
    public static final List<String> ARCHITECTURES = List.of("llama", "qwen2", "qwen3");

    private static final Pattern BLOCK = Pattern.compile("blk\\.(\\d+)\\.([a-z_]+)\\.(weight|bias)");
    private static final Map<String, String> BLOCK_NAMES = Map.ofEntries(
            Map.entry("attn_norm", "input_layernorm"),
            Map.entry("attn_q", "self_attn.q_proj"),
            Map.entry("attn_k", "self_attn.k_proj"),
            Map.entry("attn_v", "self_attn.v_proj"),
            Map.entry("attn_output", "self_attn.o_proj"),
            Map.entry("attn_q_norm", "self_attn.q_norm"),
            Map.entry("attn_k_norm", "self_attn.k_norm"),
            Map.entry("ffn_norm", "post_attention_layernorm"),
            Map.entry("ffn_gate", "mlp.gate_proj"),
            Map.entry("ffn_up", "mlp.up_proj"),
            Map.entry("ffn_down", "mlp.down_proj"));
    private static final Map<String, String> TOP_NAMES = Map.of(
            "token_embd.weight", "model.embed_tokens.weight",
            "output_norm.weight", "model.norm.weight",
            "output.weight", "lm_head.weight");

    /** The GGUF metadata key (after "ARCH.") each config.json key is read from. */
    private static final Map<String, String> GGUF_KEYS = Map.of(
            "hidden_size", "embedding_length",
            "num_hidden_layers", "block_count",
            "intermediate_size", "feed_forward_length",
            "num_attention_heads", "attention.head_count",
            "num_key_value_heads", "attention.head_count_kv",
            "head_dim", "attention.key_length",
            "max_position_embeddings", "context_length",
            "rope_theta", "rope.freq_base",
            "rms_norm_eps", "attention.layer_norm_rms_epsilon");

    private final GgufFile file;
    private final ModelConfig config;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> ggufNames;
    private volatile String sha256;

    private GgufCheckpoint(GgufFile file) {
        this.file = file;
        Map<String, Object> meta = file.metadata();
        Object archValue = meta.get("general.architecture");
        if (!(archValue instanceof String arch))
            throw fail("metadata key general.architecture is " + (archValue == null ? "missing" : "not a string: " + archValue));
        if (!ARCHITECTURES.contains(arch))
            throw fail("architecture '" + arch + "' is not supported (supported: llama (also Mistral, SmolLM), qwen2, qwen3)");

        Map<String, TensorInfo> infos = new LinkedHashMap<>();
        Map<String, String> names = new LinkedHashMap<>();
        for (GgufTensor t : file.tensors()) {
            String hf = hfName(t.name());
            if (t.name().equals("rope_freqs.weight"))
                throw fail("tensor rope_freqs.weight carries Llama-3-style rope scaling, which is not supported");
            if (hf == null)
                throw fail("tensor '" + t.name() + "' has no Hugging Face counterpart in a " + arch
                        + " model (known: token_embd, output_norm, output, blk.N." + String.join("/", BLOCK_NAMES.keySet()) + ")");
            infos.put(hf, new TensorInfo(hf, t.type().name(), t.shape()));
            names.put(hf, t.name());
        }
        this.tensors = Collections.unmodifiableMap(infos);
        this.ggufNames = Collections.unmodifiableMap(names);
        this.config = readConfig(arch, meta);
        checkShapes();
    }

    /** Opens a GGUF file of a supported architecture; FormatException names the file and what is wrong. */
    public static GgufCheckpoint open(Path path) {
        GgufFile f = GgufFile.open(path);
        try {
            return new GgufCheckpoint(f);
        } catch (RuntimeException e) {
            f.close();
            throw e;
        }
    }

    /** The Hugging Face name of a GGUF tensor name, or null when it has none. */
    public static String hfName(String ggufName) {
        String top = TOP_NAMES.get(ggufName);
        if (top != null) return top;
        Matcher m = BLOCK.matcher(ggufName);
        if (!m.matches()) return null;
        String part = BLOCK_NAMES.get(m.group(2));
        return part == null ? null : "model.layers." + Integer.parseInt(m.group(1)) + "." + part + "." + m.group(3);
    }

    private static final Pattern HF_BLOCK = Pattern.compile("model\\.layers\\.(\\d+)\\.(.+)\\.(weight|bias)");

    /** The GGUF name llama.cpp gives a Hugging Face tensor name (the inverse of {@link #hfName}), or null when it has none. */
    public static String toGgufName(String hfName) {
        for (var e : TOP_NAMES.entrySet()) if (e.getValue().equals(hfName)) return e.getKey();
        Matcher m = HF_BLOCK.matcher(hfName);
        if (!m.matches()) return null;
        for (var e : BLOCK_NAMES.entrySet())
            if (e.getValue().equals(m.group(2))) return "blk." + Integer.parseInt(m.group(1)) + "." + e.getKey() + "." + m.group(3);
        return null;
    }

    /** The underlying file, for raw block access and the full metadata. */
    public GgufFile gguf() {
        return file;
    }

    public Map<String, Object> metadata() {
        return file.metadata();
    }

    /** The GGUF name a Hugging Face tensor name is stored under. */
    public String ggufName(String hfName) {
        String g = ggufNames.get(hfName);
        if (g == null) throw new IllegalArgumentException("no tensor '" + hfName + "' in " + file.path());
        return g;
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
        String g = ggufName(name);
        float[] x = file.dequantize(g);
        int heads = permutedHeads(g);
        if (heads == 0) return x;
        long[] shape = tensors.get(name).shape();
        int rows = (int) shape[0];
        return unpermute(x, rows, x.length / rows, heads);
    }

    /** Whether the stored rows of this GGUF tensor are in llama.cpp's permuted order, and over how many heads. */
    private int permutedHeads(String ggufName) {
        return permutedHeads(config, ggufName);
    }

    /** Over how many heads llama.cpp permutes the rows of this GGUF tensor of a model of {@code config}; 0 when it does not. */
    static int permutedHeads(ModelConfig config, String ggufName) {
        if (!config.modelType().equals("llama")) return 0;
        if (ggufName.matches("blk\\.\\d+\\.attn_q\\.(weight|bias)")) return config.numHeads();
        if (ggufName.matches("blk\\.\\d+\\.attn_k\\.(weight|bias)")) return config.numKvHeads();
        return 0;
    }

    /**
     * Inverse of convert_hf_to_gguf.py's permute: stored row h*hd + 2j + i holds Hugging Face row
     * h*hd + i*hd/2 + j (head h, half i, pair j).
     */
    static float[] unpermute(float[] stored, int rows, int cols, int heads) {
        float[] out = new float[stored.length];
        for (int r = 0; r < rows; r++) System.arraycopy(stored, r * cols, out, hfRow(r, rows, heads) * cols, cols);
        return out;
    }

    /** convert_hf_to_gguf.py's permute, the exact inverse of {@link #unpermute}: Hugging Face rows into llama.cpp's stored order. */
    static float[] permute(float[] hf, int rows, int cols, int heads) {
        float[] out = new float[hf.length];
        for (int r = 0; r < rows; r++) System.arraycopy(hf, hfRow(r, rows, heads) * cols, out, r * cols, cols);
        return out;
    }

    /** {@link #permute} for rows of {@code rowBytes} bytes each (blocks of a quantized tensor). */
    static byte[] permute(byte[] hf, int rows, int rowBytes, int heads) {
        byte[] out = new byte[hf.length];
        for (int r = 0; r < rows; r++) System.arraycopy(hf, hfRow(r, rows, heads) * rowBytes, out, r * rowBytes, rowBytes);
        return out;
    }

    /** The Hugging Face row that llama.cpp stores at {@code storedRow}: stored h*hd + 2j + i holds h*hd + i*hd/2 + j. */
    private static int hfRow(int storedRow, int rows, int heads) {
        int hd = rows / heads, half = hd / 2;
        int h = storedRow / hd, within = storedRow % hd;
        return h * hd + (within % 2) * half + within / 2;
    }

    @Override
    public Tokenizer tokenizer() {
        return Tokenizers.fromGguf(file.path(), file.metadata());
    }

    @Override
    public String sha256() {
        String s = sha256;
        if (s == null) {
            synchronized (this) {
                if (sha256 == null) sha256 = lowbit.io.Hashing.sha256(file.path());
                s = sha256;
            }
        }
        return s;
    }

    @Override
    public String source() {
        return file.path().toString();
    }

    @Override
    public void close() {
        file.close();
    }

    private ModelConfig readConfig(String arch, Map<String, Object> meta) {
        String p = arch + ".";
        if (meta.containsKey(p + "expert_count") && intKey(meta, p + "expert_count", 0) > 0)
            throw fail("mixture-of-experts models (" + p + "expert_count = " + meta.get(p + "expert_count") + ") are not supported");
        int hidden = intKey(meta, p + "embedding_length", null);
        int layers = intKey(meta, p + "block_count", null);
        int ffn = intKey(meta, p + "feed_forward_length", null);
        int heads = intKey(meta, p + "attention.head_count", null);
        int kvHeads = intKey(meta, p + "attention.head_count_kv", heads);
        if (heads <= 0 || hidden % heads != 0 && !meta.containsKey(p + "attention.key_length"))
            throw fail(p + "attention.head_count = " + heads + " does not divide " + p + "embedding_length = " + hidden
                    + " and " + p + "attention.key_length is not given");
        int headDim = intKey(meta, p + "attention.key_length", hidden / heads);
        int valueDim = intKey(meta, p + "attention.value_length", headDim);
        if (valueDim != headDim)
            throw fail(p + "attention.value_length = " + valueDim + " differs from the key length " + headDim + "; not supported");
        int ropeDims = intKey(meta, p + "rope.dimension_count", headDim);
        if (ropeDims != headDim)
            throw fail(p + "rope.dimension_count = " + ropeDims + " is not the head dimension " + headDim
                    + " (partial rotary embeddings are not supported)");
        double theta = floatKey(meta, p + "rope.freq_base", 10000.0);
        double eps = floatKey(meta, p + "attention.layer_norm_rms_epsilon", null);
        int context = intKey(meta, p + "context_length", null);
        checkRopeScaling(meta, p);

        if (!file.hasTensor("token_embd.weight")) throw fail("tensor token_embd.weight is missing");
        long[] embd = file.tensor("token_embd.weight").dims();
        if (embd.length != 2 || embd[0] != hidden)
            throw fail("tensor token_embd.weight has dims " + Arrays.toString(embd)
                    + ", expected [" + hidden + ", vocab] for " + p + "embedding_length = " + hidden);
        int vocab = Math.toIntExact(embd[1]);
        boolean tie = !file.hasTensor("output.weight");
        boolean bias = file.hasTensor("blk.0.attn_q.bias");
        boolean qkNorm = file.hasTensor("blk.0.attn_q_norm.weight");
        int bos = intKey(meta, "tokenizer.ggml.bos_token_id", -1);
        int eos = intKey(meta, "tokenizer.ggml.eos_token_id", -1);
        try {
            return new ModelConfig(ModelConfig.Family.LLAMA, arch, vocab, hidden, ffn, layers, heads, kvHeads, headDim,
                    context, theta, eps, tie, bias, qkNorm, "silu", true, hidden, bos, eos);
        } catch (IllegalArgumentException e) {
            // ModelConfig names config.json's key; name the GGUF key it was read from too
            String key = e.getMessage().split(" ", 2)[0];
            String gguf = GGUF_KEYS.get(key);
            throw new FormatException(file.path(), "inconsistent hyper-parameters: " + e.getMessage()
                    + (gguf != null ? " (GGUF key " + p + gguf + ")" : ""), e);
        }
    }

    private void checkRopeScaling(Map<String, Object> meta, String p) {
        Object type = meta.get(p + "rope.scaling.type");
        if (type != null && !(type.equals("none") || type.equals("linear")))
            throw fail(p + "rope.scaling.type = '" + type + "' is not supported (only none, or linear with factor 1)");
        for (String key : List.of(p + "rope.scaling.factor", p + "rope.scale_linear")) {
            if (!meta.containsKey(key)) continue;
            double factor = floatKey(meta, key, null);
            // llama.cpp reads a factor of 0 as "not set"
            if (factor != 0.0 && factor != 1.0 && !"none".equals(type))
                throw fail(key + " = " + factor + ": rope scaling is not supported");
        }
    }

    private void checkShapes() {
        int hidden = config.hiddenSize();
        for (int layer = 0; layer < config.numLayers(); layer++) {
            String b = "blk." + layer + ".";
            expectDims(b + "attn_q.weight", hidden, config.qDim());
            expectDims(b + "attn_k.weight", hidden, config.kvDim());
            expectDims(b + "attn_v.weight", hidden, config.kvDim());
            expectDims(b + "attn_output.weight", config.qDim(), hidden);
            expectDims(b + "ffn_gate.weight", hidden, config.intermediateSize());
            expectDims(b + "ffn_up.weight", hidden, config.intermediateSize());
            expectDims(b + "ffn_down.weight", config.intermediateSize(), hidden);
        }
        for (GgufTensor t : file.tensors()) {
            Matcher m = BLOCK.matcher(t.name());
            if (m.matches() && Long.parseLong(m.group(1)) >= config.numLayers())
                throw fail("tensor '" + t.name() + "' belongs to a layer beyond block_count = " + config.numLayers());
        }
        if (config.modelType().equals("llama") && config.headDim() % 2 != 0)
            throw fail("head dimension " + config.headDim() + " is odd; the q/k row permutation cannot be undone");
    }

    private void expectDims(String name, long ne0, long ne1) {
        if (!file.hasTensor(name)) throw fail("tensor '" + name + "' is missing");
        long[] d = file.tensor(name).dims();
        if (d.length != 2 || d[0] != ne0 || d[1] != ne1)
            throw fail("tensor '" + name + "' has dims " + Arrays.toString(d) + ", expected [" + ne0 + ", " + ne1
                    + "] (GGUF order) from the model's metadata");
    }

    private int intKey(Map<String, Object> meta, String key, Integer fallback) {
        Object v = meta.get(key);
        if (v == null) {
            if (fallback == null) throw fail("required metadata key " + key + " is missing");
            return fallback;
        }
        if (v instanceof List<?>) throw fail("metadata key " + key + " holds per-layer values " + v + "; only one value is supported");
        if (!(v instanceof Integer || v instanceof Long))
            throw fail("metadata key " + key + " must be an integer, found " + v.getClass().getSimpleName() + " " + v);
        long x = ((Number) v).longValue();
        if (x < Integer.MIN_VALUE || x > Integer.MAX_VALUE) throw fail("metadata key " + key + " = " + x + " is out of range");
        return (int) x;
    }

    private double floatKey(Map<String, Object> meta, String key, Double fallback) {
        Object v = meta.get(key);
        if (v == null) {
            if (fallback == null) throw fail("required metadata key " + key + " is missing");
            return fallback;
        }
        if (!(v instanceof Float || v instanceof Double))
            throw fail("metadata key " + key + " must be a float, found " + v.getClass().getSimpleName() + " " + v);
        return ((Number) v).doubleValue();
    }

    private FormatException fail(String problem) {
        return new FormatException(file.path(), problem);
    }
}
