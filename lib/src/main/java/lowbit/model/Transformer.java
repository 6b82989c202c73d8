package lowbit.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import lowbit.io.Checkpoint;
import lowbit.io.TensorInfo;
import lowbit.tensor.Parallel;
import lowbit.tensor.VectorMath;

/**
 * A decoder-only transformer in float32: the Llama family (Llama, Mistral, SmolLM, Qwen2 with q/k/v biases,
 * Qwen3 with q/k norms) and OPT. Weights are loaded once from a {@link Checkpoint}; every window is run on
 * its own (no cache across windows), which is what perplexity and calibration need.
 */
public final class Transformer implements AutoCloseable {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Attention tiles: four query rows by four vectors of keys (or of head dimensions). */
    private static final int TILE = 4 * L;
    /** Rows of logits materialized at once: bounds memory at LOGIT_ROWS x vocab floats. */
    private static final int LOGIT_ROWS = 256;

    private final ModelConfig cfg;
    private final String source;
    private final String sha256;
    private final float[] embedTokens;   // [vocab][embedDim]
    private final float[] embedPositions; // OPT: [maxPositions + 2][hidden]
    private final Linear projectIn, projectOut; // OPT-350m style
    private final Block[] blocks;
    private final float[] finalNormW, finalNormB;
    private final Linear lmHead;
    private final Map<String, Linear> linears = new LinkedHashMap<>();
    /** Every non-linear tensor as loaded (live: scale folding changes norms in place), by Hugging Face name. */
    private final Map<String, float[]> tensors = new LinkedHashMap<>();
    private final List<ForwardHook> hooks = new CopyOnWriteArrayList<>();
    private Parallel par;
    /** Activation buffers reused across layers and windows: fresh arrays cost more than the matmuls (zeroing, page faults). */
    private final Map<String, float[]> buffers = new java.util.HashMap<>();
    private static final ThreadLocal<float[]> SCRATCH = ThreadLocal.withInitial(() -> new float[0]);

    private record Block(float[] attnNormW, float[] attnNormB, Linear q, Linear k, Linear v, Linear o,
                         float[] qNorm, float[] kNorm, float[] mlpNormW, float[] mlpNormB,
                         Linear gate, Linear up, Linear down) {}

    private Transformer(Checkpoint ckpt, int threads) {
        this.cfg = ckpt.config();
        this.source = ckpt.source();
        this.sha256 = ckpt.sha256();
        this.par = new Parallel(threads);
        Weights w = new Weights(ckpt, tensors);
        int hidden = cfg.hiddenSize();
        boolean opt = cfg.family() == ModelConfig.Family.OPT;
        String prefix = opt ? "model.decoder." : "model.";
        int embedDim = opt ? cfg.wordEmbedProjDim() : hidden;
        embedTokens = w.get(prefix + "embed_tokens.weight", cfg.vocabSize(), embedDim);
        if (opt) {
            embedPositions = w.get(prefix + "embed_positions.weight", cfg.maxPositions() + 2, hidden);
            projectIn = embedDim != hidden ? linear(w, prefix + "project_in", -1, "project_in", hidden, embedDim) : null;
            projectOut = embedDim != hidden ? linear(w, prefix + "project_out", -1, "project_out", embedDim, hidden) : null;
        } else {
            embedPositions = null;
            projectIn = projectOut = null;
        }
        blocks = new Block[cfg.numLayers()];
        for (int i = 0; i < blocks.length; i++) blocks[i] = opt ? optBlock(w, i) : llamaBlock(w, i);
        if (opt) {
            boolean hasFinal = cfg.normBefore() && w.has(prefix + "final_layer_norm.weight");
            finalNormW = hasFinal ? w.get(prefix + "final_layer_norm.weight", hidden) : null;
            finalNormB = hasFinal ? w.get(prefix + "final_layer_norm.bias", hidden) : null;
        } else {
            finalNormW = w.get("model.norm.weight", hidden);
            finalNormB = null;
        }
        boolean tied = cfg.tieWordEmbeddings() || !w.has("lm_head.weight");
        float[] head = tied ? embedTokens : w.get("lm_head.weight", cfg.vocabSize(), embedDim);
        lmHead = new Linear("lm_head", -1, "lm_head", head, cfg.vocabSize(), embedDim, null);
        linears.put("lm_head", lmHead);
    }

    /** Loads every weight of the checkpoint; uses all cores. */
    public static Transformer load(Checkpoint ckpt) {
        return new Transformer(ckpt, Parallel.defaultThreads());
    }

    public static Transformer load(Checkpoint ckpt, int threads) {
        return new Transformer(ckpt, threads);
    }

    private Block llamaBlock(Weights w, int i) {
        String p = "model.layers." + i + ".";
        int h = cfg.hiddenSize(), ff = cfg.intermediateSize();
        return new Block(
                w.get(p + "input_layernorm.weight", h), null,
                linear(w, p + "self_attn.q_proj", i, "q_proj", cfg.qDim(), h),
                linear(w, p + "self_attn.k_proj", i, "k_proj", cfg.kvDim(), h),
                linear(w, p + "self_attn.v_proj", i, "v_proj", cfg.kvDim(), h),
                linear(w, p + "self_attn.o_proj", i, "o_proj", h, cfg.qDim()),
                cfg.qkNorm() ? w.get(p + "self_attn.q_norm.weight", cfg.headDim()) : null,
                cfg.qkNorm() ? w.get(p + "self_attn.k_norm.weight", cfg.headDim()) : null,
                w.get(p + "post_attention_layernorm.weight", h), null,
                linear(w, p + "mlp.gate_proj", i, "gate_proj", ff, h),
                linear(w, p + "mlp.up_proj", i, "up_proj", ff, h),
                linear(w, p + "mlp.down_proj", i, "down_proj", h, ff));
    }

    private Block optBlock(Weights w, int i) {
        String p = "model.decoder.layers." + i + ".";
        int h = cfg.hiddenSize(), ff = cfg.intermediateSize();
        return new Block(
                w.get(p + "self_attn_layer_norm.weight", h), w.get(p + "self_attn_layer_norm.bias", h),
                linear(w, p + "self_attn.q_proj", i, "q_proj", h, h),
                linear(w, p + "self_attn.k_proj", i, "k_proj", h, h),
                linear(w, p + "self_attn.v_proj", i, "v_proj", h, h),
                linear(w, p + "self_attn.out_proj", i, "out_proj", h, h),
                null, null,
                w.get(p + "final_layer_norm.weight", h), w.get(p + "final_layer_norm.bias", h),
                null,
                linear(w, p + "fc1", i, "fc1", ff, h),
                linear(w, p + "fc2", i, "fc2", h, ff));
    }

    private Linear linear(Weights w, String name, int layer, String module, int out, int in) {
        float[] weight = w.get(name + ".weight", out, in);
        float[] bias = w.has(name + ".bias") ? w.get(name + ".bias", out) : null;
        Linear lin = new Linear(name, layer, module, weight, out, in, bias);
        tensors.remove(name + ".weight");   // packed inside the Linear; keeping the float copy would double memory
        linears.put(name, lin);
        return lin;
    }

    /** Reads tensors by name and checks their shapes against the config, naming the checkpoint on mismatch. */
    private record Weights(Checkpoint ckpt, Map<String, float[]> loaded) {
        boolean has(String name) {
            return ckpt.tensors().containsKey(name);
        }

        float[] get(String name, long... shape) {
            TensorInfo info = ckpt.tensors().get(name);
            if (info == null)
                throw new IllegalArgumentException(ckpt.source() + ": tensor " + name + " is missing (expected shape "
                        + Arrays.toString(shape) + " for a " + ckpt.config().modelType() + " model)");
            long n = 1;
            for (long d : shape) n *= d;
            if (info.elements() != n || (info.shape().length == shape.length && !Arrays.equals(info.shape(), shape)))
                throw new IllegalArgumentException(ckpt.source() + ": tensor " + name + " has shape "
                        + Arrays.toString(info.shape()) + ", the config implies " + Arrays.toString(shape));
            float[] values = ckpt.floats(name);
            loaded.put(name, values);
            return values;
        }
    }

    public ModelConfig config() {
        return cfg;
    }

    /** Where the weights came from. */
    public String source() {
        return source;
    }

    /** sha256 of the checkpoint's weight files. */
    public String sha256() {
        return sha256;
    }

    /**
     * A tensor's current values by Hugging Face name (after any scale folding), as a fresh array; null for
     * a name the model did not load.
     */
    public float[] tensor(String name) {
        if (name.endsWith(".weight")) {
            Linear l = linears.get(name.substring(0, name.length() - ".weight".length()));
            if (l != null) return l.weight();
        }
        float[] t = tensors.get(name);
        return t == null ? null : t.clone();
    }

    /** Every linear layer by module name, blocks in order, lm_head last. */
    public Map<String, Linear> linears() {
        return Collections.unmodifiableMap(linears);
    }

    public Linear linear(String name) {
        Linear l = linears.get(name);
        if (l == null) throw new IllegalArgumentException("no linear layer named " + name + " (have e.g. "
                + linears.keySet().stream().limit(4).toList() + ")");
        return l;
    }

    /** The linears of one block in execution order. */
    public List<Linear> blockLinears(int layer) {
        Block b = blocks[layer];
        List<Linear> out = new ArrayList<>(List.of(b.q, b.k, b.v, b.o));
        if (b.gate != null) out.add(b.gate);
        out.add(b.up);
        out.add(b.down);
        return out;
    }

    /** Adds a hook; closing the returned handle removes it. */
    public AutoCloseable addHook(ForwardHook hook) {
        hooks.add(hook);
        return () -> hooks.remove(hook);
    }

    public int threads() {
        return par.threads();
    }

    /** Changes the thread count; results are bitwise the same on any count. */
    public void setThreads(int threads) {
        if (threads != par.threads()) {
            par.close();
            par = new Parallel(threads);
        }
    }

    // ---------------------------------------------------------------- forward

    /** Token embeddings (plus OPT's learned positions and project_in): [tokens][hidden]. */
    public float[] embed(int[] tokens) {
        int T = tokens.length, h = cfg.hiddenSize();
        int e = embedPositions != null ? cfg.wordEmbedProjDim() : h;
        if (embedPositions != null && T > cfg.maxPositions())
            throw new IllegalArgumentException("window of " + T + " tokens is longer than OPT's "
                    + cfg.maxPositions() + " learned positions");
        float[] x = new float[T * e];
        for (int t = 0; t < T; t++) {
            int id = tokens[t];
            if (id < 0 || id >= cfg.vocabSize())
                throw new IllegalArgumentException("token id " + id + " at position " + t + " is outside the vocabulary of "
                        + cfg.vocabSize());
            System.arraycopy(embedTokens, id * e, x, t * e, e);
        }
        if (projectIn != null) x = run(projectIn, x, T, null);
        if (embedPositions != null) {
            // OPT's positions start at offset 2 (its first two rows are padding-related).
            for (int t = 0; t < T; t++)
                for (int j = 0; j < h; j++) x[t * h + j] += embedPositions[(t + 2) * h + j];
        }
        return x;
    }

    /** Runs transformer block {@code layer} on x [rows][hidden] in place. */
    public void block(int layer, float[] x, int rows) {
        Block b = blocks[layer];
        if (cfg.family() == ModelConfig.Family.OPT) optBlock(b, layer, x, rows);
        else llamaBlock(b, layer, x, rows);
    }

    private void llamaBlock(Block b, int layer, float[] x, int T) {
        addInto(x, attentionSublayer(b, layer, attentionNorm(b, x, T), T));
        addInto(x, mlpSublayer(b, mlpNorm(b, x, T), T));
    }

    private void optBlock(Block b, int layer, float[] x, int T) {
        boolean pre = cfg.normBefore();
        addInto(x, attentionSublayer(b, layer, pre ? attentionNorm(b, x, T) : x, T));
        if (!pre) System.arraycopy(attentionNorm(b, x, T), 0, x, 0, x.length);
        addInto(x, mlpSublayer(b, pre ? mlpNorm(b, x, T) : x, T));
        if (!pre) System.arraycopy(mlpNorm(b, x, T), 0, x, 0, x.length);
    }

    private float[] attentionNorm(Block b, float[] x, int T) {
        int h = cfg.hiddenSize();
        return b.attnNormB != null ? layerNorm(x, T, h, b.attnNormW, b.attnNormB) : rmsNorm(x, T, h, b.attnNormW);
    }

    private float[] mlpNorm(Block b, float[] x, int T) {
        int h = cfg.hiddenSize();
        return b.mlpNormB != null ? layerNorm(x, T, h, b.mlpNormW, b.mlpNormB) : rmsNorm(x, T, h, b.mlpNormW);
    }

    /** o_proj(attention(q(n), k(n), v(n))): the attention sub-layer's output, before the residual add. */
    private float[] attentionSublayer(Block b, int layer, float[] n, int T) {
        float[] q = run(b.q, n, T, "q"), k = run(b.k, n, T, "k"), v = run(b.v, n, T, "v");
        if (b.qNorm != null) {
            rmsNormHeads(q, T * cfg.numHeads(), b.qNorm);
            rmsNormHeads(k, T * cfg.numKvHeads(), b.kNorm);
        }
        if (cfg.family() != ModelConfig.Family.OPT) {
            rope(q, T, cfg.numHeads());
            rope(k, T, cfg.numKvHeads());
        }
        for (ForwardHook hook : hooks) hook.keyValue(layer, k, v, T);
        return run(b.o, attention(q, k, v, T), T, "o");
    }

    /** down(silu(gate(n)) * up(n)), or OPT's fc2(act(fc1(n))): the MLP's output, before the residual add. */
    private float[] mlpSublayer(Block b, float[] n, int T) {
        if (b.gate != null) {
            float[] g = run(b.gate, n, T, "gate"), u = run(b.up, n, T, "up");
            siluMul(g, u);
            return run(b.down, g, T, "down");
        }
        float[] f = run(b.up, n, T, "up");
        activation(f);
        return run(b.down, f, T, "down");
    }

    // ------------------------------------------------ sub-layers and folding, for AWQ and SmoothQuant

    /** The attention's input for block input x [rows][hidden]: the norm's output (x itself for post-norm OPT); a fresh array. */
    public float[] attentionInput(int layer, float[] x, int rows) {
        return cfg.normBefore() ? attentionNorm(blocks[layer], x, rows).clone() : x.clone();
    }

    /** The MLP's input for x [rows][hidden] = block input plus the attention's output; a fresh array. */
    public float[] mlpInput(int layer, float[] x, int rows) {
        return cfg.normBefore() ? mlpNorm(blocks[layer], x, rows).clone() : x.clone();
    }

    /** The attention sub-layer (through o_proj, no residual) on its input n; hooks see it; a fresh array. */
    public float[] attentionOutput(int layer, float[] n, int rows) {
        return attentionSublayer(blocks[layer], layer, n, rows).clone();
    }

    /** The MLP sub-layer (through down_proj/fc2, no residual) on its input n; a fresh array. */
    public float[] mlpOutput(int layer, float[] n, int rows) {
        return mlpSublayer(blocks[layer], n, rows).clone();
    }

    /** y = x W^T + b for one linear of this model, without hooks; a fresh array [rows][out]. */
    public float[] runLinear(Linear lin, float[] x, int rows) {
        float[] y = new float[rows * lin.outFeatures()];
        lin.apply(x, rows, y, par);
        return y;
    }

    /**
     * Divides the output of the norm in front of the attention ("attn") or the MLP ("mlp") by s, per channel:
     * weight (and LayerNorm bias) / s. Together with {@link Linear#scaleInputs} on the linears that read it,
     * the model computes the same function (AWQ's and SmoothQuant's scale folding). Post-norm OPT has no
     * norm in front of its sub-layers and is refused.
     */
    public void divideNorm(int layer, String which, float[] s) {
        if (!cfg.normBefore())
            throw new IllegalArgumentException("block " + layer + ": a post-norm model (OPT do_layer_norm_before=false) has no norm "
                    + "in front of its " + which + " to fold scales into");
        Block b = blocks[layer];
        float[] w, bias;
        switch (which) {
            case "attn" -> { w = b.attnNormW; bias = b.attnNormB; }
            case "mlp" -> { w = b.mlpNormW; bias = b.mlpNormB; }
            default -> throw new IllegalArgumentException("norm must be attn or mlp, got " + which);
        }
        if (s.length != w.length) throw new IllegalArgumentException("block " + layer + " " + which + " norm: " + s.length
                + " scales for " + w.length + " channels");
        for (int j = 0; j < w.length; j++) {
            w[j] /= s[j];
            if (bias != null) bias[j] /= s[j];
        }
    }

    /** The final norm (and OPT's project_out): the input of lm_head, [rows][embedDim]. */
    public float[] finalHidden(float[] x, int rows) {
        float[] n = x;
        if (finalNormW != null)
            n = finalNormB != null ? layerNorm(x, rows, cfg.hiddenSize(), finalNormW, finalNormB)
                    : rmsNorm(x, rows, cfg.hiddenSize(), finalNormW);
        if (projectOut != null) n = run(projectOut, n, rows, "final");
        return n;
    }

    /** Hidden states after every block: [tokens][hidden]. */
    public synchronized float[] hidden(int[] tokens) {
        float[] x = embed(tokens);
        for (int l = 0; l < blocks.length; l++) block(l, x, tokens.length);
        return x;
    }

    /** log-softmax of the logits at every position: [tokens][vocab]. Memory grows with vocab; for perplexity use {@link #nll}. */
    public synchronized float[][] logProbs(int[] tokens) {
        int T = tokens.length, V = cfg.vocabSize();
        float[] h = finalHidden(hidden(tokens), T);
        float[][] out = new float[T][];
        forLogitChunks(h, T, (row, logits, off) -> {
            float[] lp = new float[V];
            double lse = logSumExp(logits, off, V);
            for (int j = 0; j < V; j++) lp[j] = (float) (logits[off + j] - lse);
            out[row] = lp;
        });
        return out;
    }

    /** log-probs of a batch of independent windows: [window][position][vocab]. */
    public float[][][] logProbs(int[][] windows) {
        float[][][] out = new float[windows.length][][];
        for (int w = 0; w < windows.length; w++) out[w] = logProbs(windows[w]);
        return out;
    }

    /**
     * Next-token negative log-likelihood of a window: element t is -log p(tokens[t+1] | tokens[0..t]),
     * tokens.length - 1 values (the perplexity protocol scores every position).
     */
    public synchronized double[] nll(int[] tokens) {
        int T = tokens.length;
        if (T < 2) throw new IllegalArgumentException("a window needs at least 2 tokens, got " + T);
        float[] h = finalHidden(hidden(tokens), T);
        double[] nll = new double[T - 1];
        int V = cfg.vocabSize();
        forLogitChunks(h, T - 1, (row, logits, off) -> nll[row] = logSumExp(logits, off, V) - logits[off + tokens[row + 1]]);
        return nll;
    }

    private interface LogitRow {
        void accept(int row, float[] logits, int offset);
    }

    private void forLogitChunks(float[] h, int rows, LogitRow consumer) {
        int V = cfg.vocabSize(), e = lmHead.inFeatures();
        float[] logits = buffer("logits", LOGIT_ROWS * V);
        float[] chunk = buffer("logitsInput", LOGIT_ROWS * e);
        for (int r0 = 0; r0 < rows; r0 += LOGIT_ROWS) {
            int n = Math.min(LOGIT_ROWS, rows - r0);
            System.arraycopy(h, r0 * e, chunk, 0, n * e);
            for (ForwardHook hook : hooks) hook.linearInput(lmHead, chunk, n);
            lmHead.apply(chunk, n, logits, par);
            for (ForwardHook hook : hooks) hook.linearOutput(lmHead, logits, n);
            int base = r0;
            par.forEach(n, i -> consumer.accept(base + i, logits, i * V));
        }
    }

    private static double logSumExp(float[] a, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, a[off + j]);
        float sum = VectorMath.exp(a, off, null, 0, n, 1f, max);
        return max + Math.log(sum);
    }

    // ---------------------------------------------------------------- pieces

    /** y = lin(x) into the reusable buffer named slot (null: a fresh array the caller keeps). */
    private float[] run(Linear lin, float[] x, int rows, String slot) {
        for (ForwardHook hook : hooks) hook.linearInput(lin, x, rows);
        float[] y = slot == null ? new float[rows * lin.outFeatures()] : buffer(slot, rows * lin.outFeatures());
        lin.apply(x, rows, y, par);
        for (ForwardHook hook : hooks) hook.linearOutput(lin, y, rows);
        return y;
    }

    private float[] buffer(String slot, int size) {
        float[] b = buffers.get(slot);
        if (b == null || b.length != size) buffers.put(slot, b = new float[size]);
        return b;
    }

    /** A per-thread scratch array of at least n floats, contents undefined. */
    private static float[] scratch(int n) {
        float[] s = SCRATCH.get();
        if (s.length < n) SCRATCH.set(s = new float[n]);
        return s;
    }

    private float[] rmsNorm(float[] x, int rows, int d, float[] w) {
        float[] out = buffer("norm", rows * d);
        rmsNormRows(x, out, rows, d, w);
        return out;
    }

    /** RMSNorm over each head_dim slice, in place (Qwen3's q_norm/k_norm). */
    private void rmsNormHeads(float[] x, int slices, float[] w) {
        rmsNormRows(x, x, slices, cfg.headDim(), w);
    }

    /** out[r] = w * x[r] / rms(x[r]) for each row of d values, as transformers' LlamaRMSNorm (float32). */
    private void rmsNormRows(float[] x, float[] out, int rows, int d, float[] w) {
        float eps = (float) cfg.normEps();
        par.forEach(rows, r -> {
            int o = r * d;
            float ss = 0;
            for (int j = 0; j < d; j++) ss += x[o + j] * x[o + j];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int j = 0; j < d; j++) out[o + j] = w[j] * (x[o + j] * inv);
        });
    }

    private float[] layerNorm(float[] x, int rows, int d, float[] w, float[] b) {
        float[] out = buffer("norm", rows * d);
        double eps = cfg.normEps();
        par.forEach(rows, r -> {
            int o = r * d;
            double mean = 0;
            for (int j = 0; j < d; j++) mean += x[o + j];
            mean /= d;
            double var = 0;
            for (int j = 0; j < d; j++) var += (x[o + j] - mean) * (x[o + j] - mean);
            var /= d;
            double inv = 1.0 / Math.sqrt(var + eps);
            for (int j = 0; j < d; j++) out[o + j] = (float) ((x[o + j] - mean) * inv) * w[j] + b[j];
        });
        return out;
    }

    private float[] ropeCos = new float[0], ropeSin = new float[0];
    private int ropeRows;

    /** HF's rotate_half convention: dimension i pairs with i + headDim/2. */
    private void rope(float[] x, int T, int heads) {
        int d = cfg.headDim(), half = d / 2;
        ensureRope(T);
        float[] cos = ropeCos, sin = ropeSin;
        par.forEach(T, t -> {
            int c = t * half;
            for (int hd = 0; hd < heads; hd++) {
                int o = (t * heads + hd) * d;
                for (int i = 0; i < half; i++) {
                    float a = x[o + i], b = x[o + i + half];
                    x[o + i] = a * cos[c + i] - b * sin[c + i];
                    x[o + i + half] = b * cos[c + i] + a * sin[c + i];
                }
            }
        });
    }

    private synchronized void ensureRope(int T) {
        if (ropeRows >= T) return;
        int half = cfg.headDim() / 2;
        float[] cos = new float[T * half], sin = new float[T * half];
        for (int i = 0; i < half; i++) {
            // inv_freq in float32 as transformers computes it, the angle in double
            float invFreq = (float) (1.0 / Math.pow(cfg.ropeTheta(), (2.0 * i) / cfg.headDim()));
            for (int t = 0; t < T; t++) {
                float angle = (float) t * invFreq;
                cos[t * half + i] = (float) Math.cos(angle);
                sin[t * half + i] = (float) Math.sin(angle);
            }
        }
        ropeCos = cos;
        ropeSin = sin;
        ropeRows = T;
    }

    /**
     * Causal softmax attention with GQA. Keys are transposed per kv head so that both score and value
     * products are broadcast-FMA loops over contiguous memory; four query rows share each load.
     */
    private float[] attention(float[] q, float[] k, float[] v, int T) {
        int H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim();
        int qStride = H * d, kvStride = KV * d, group = H / KV;
        int Tp = (T + TILE - 1) / TILE * TILE;
        // Keys in tiles of TILE positions, each tile [d][TILE] contiguous, so a tile's score loop reads one
        // 16 KB block instead of d rows far apart; values per kv head [T][d]. Padding keys t >= T stay zero:
        // the buffer is only reused for the same T.
        float[] kt = buffer("keysTiled", KV * d * Tp);
        float[] vp = buffer("valuesPacked", KV * T * d);
        par.forEach(KV, g -> {
            int base = g * d * Tp;
            for (int t = 0; t < T; t++) {
                int tile = base + (t / TILE) * d * TILE + (t % TILE);
                int src = t * kvStride + g * d;
                for (int j = 0; j < d; j++) kt[tile + j * TILE] = k[src + j];
                System.arraycopy(v, src, vp, (g * T + t) * d, d);
            }
        });
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] out = buffer("attn", T * qStride);
        int qBlock = 16;
        int blocksPerHead = (T + qBlock - 1) / qBlock;
        par.forEach(H * blocksPerHead, task -> {
            int head = task / blocksPerHead, i0 = (task % blocksPerHead) * qBlock;
            int i1 = Math.min(T, i0 + qBlock);
            int g = head / group;
            float[] scores = scratch(4 * Tp);
            for (int r0 = i0; r0 < i1; r0 += 4) {
                int rows = Math.min(4, i1 - r0);
                attendRows(q, vp, g * T * d, kt, g * d * Tp, out, r0, rows, head, Tp, d, qStride, scale, scores);
            }
        });
        return out;
    }

    private static void attendRows(float[] q, float[] v, int vBase, float[] kt, int ktBase, float[] out, int r0, int rows,
                                   int head, int Tp, int d, int qStride, float scale, float[] s) {
        int last = r0 + rows - 1;               // the last query row sees keys 0..last
        int span = (last + TILE) / TILE * TILE; // keys to score, padded to whole tiles
        int q0 = r0 * qStride + head * d;
        int q1 = rows > 1 ? q0 + qStride : q0, q2 = rows > 2 ? q0 + 2 * qStride : q0, q3 = rows > 3 ? q0 + 3 * qStride : q0;
        for (int j = 0; j < span; j += TILE) {
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int c = 0, k = ktBase + j * d; c < d; c++, k += TILE) {
                FloatVector k0 = FloatVector.fromArray(S, kt, k);
                FloatVector k1 = FloatVector.fromArray(S, kt, k + L);
                FloatVector k2 = FloatVector.fromArray(S, kt, k + 2 * L);
                FloatVector k3 = FloatVector.fromArray(S, kt, k + 3 * L);
                FloatVector b = FloatVector.broadcast(S, q[q0 + c]);
                a00 = b.fma(k0, a00); a01 = b.fma(k1, a01); a02 = b.fma(k2, a02); a03 = b.fma(k3, a03);
                b = FloatVector.broadcast(S, q[q1 + c]);
                a10 = b.fma(k0, a10); a11 = b.fma(k1, a11); a12 = b.fma(k2, a12); a13 = b.fma(k3, a13);
                b = FloatVector.broadcast(S, q[q2 + c]);
                a20 = b.fma(k0, a20); a21 = b.fma(k1, a21); a22 = b.fma(k2, a22); a23 = b.fma(k3, a23);
                b = FloatVector.broadcast(S, q[q3 + c]);
                a30 = b.fma(k0, a30); a31 = b.fma(k1, a31); a32 = b.fma(k2, a32); a33 = b.fma(k3, a33);
            }
            a00.mul(scale).intoArray(s, j); a01.mul(scale).intoArray(s, j + L);
            a02.mul(scale).intoArray(s, j + 2 * L); a03.mul(scale).intoArray(s, j + 3 * L);
            int o = Tp + j;
            a10.mul(scale).intoArray(s, o); a11.mul(scale).intoArray(s, o + L);
            a12.mul(scale).intoArray(s, o + 2 * L); a13.mul(scale).intoArray(s, o + 3 * L);
            o += Tp;
            a20.mul(scale).intoArray(s, o); a21.mul(scale).intoArray(s, o + L);
            a22.mul(scale).intoArray(s, o + 2 * L); a23.mul(scale).intoArray(s, o + 3 * L);
            o += Tp;
            a30.mul(scale).intoArray(s, o); a31.mul(scale).intoArray(s, o + L);
            a32.mul(scale).intoArray(s, o + 2 * L); a33.mul(scale).intoArray(s, o + 3 * L);
        }
        // Unnormalized softmax: exp(s - max) here, the 1/sum applied to the four output rows at the end.
        float inv0 = 0, inv1 = 0, inv2 = 0, inv3 = 0;
        for (int r = 0; r < 4; r++) {
            int o = r * Tp;
            int valid = r < rows ? r0 + r + 1 : 0;  // causal: row r0+r sees keys 0..r0+r
            for (int j = valid; j < span; j++) s[o + j] = 0f;
            if (valid == 0) continue;
            FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            int j = 0;
            for (; j + L <= valid; j += L) mv = mv.max(FloatVector.fromArray(S, s, o + j));
            float max = mv.reduceLanes(VectorOperators.MAX); // max is exact in any order
            for (; j < valid; j++) max = Math.max(max, s[o + j]);
            float inv = 1f / VectorMath.exp(s, o, s, o, valid, 1f, max);
            switch (r) {
                case 0 -> inv0 = inv;
                case 1 -> inv1 = inv;
                case 2 -> inv2 = inv;
                default -> inv3 = inv;
            }
        }
        int c = 0;
        for (; c + TILE <= d; c += TILE) {
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int j = 0, vj = vBase + c; j <= last; j++, vj += d) {
                FloatVector v0 = FloatVector.fromArray(S, v, vj);
                FloatVector v1 = FloatVector.fromArray(S, v, vj + L);
                FloatVector v2 = FloatVector.fromArray(S, v, vj + 2 * L);
                FloatVector v3 = FloatVector.fromArray(S, v, vj + 3 * L);
                FloatVector p = FloatVector.broadcast(S, s[j]);
                a00 = p.fma(v0, a00); a01 = p.fma(v1, a01); a02 = p.fma(v2, a02); a03 = p.fma(v3, a03);
                p = FloatVector.broadcast(S, s[Tp + j]);
                a10 = p.fma(v0, a10); a11 = p.fma(v1, a11); a12 = p.fma(v2, a12); a13 = p.fma(v3, a13);
                p = FloatVector.broadcast(S, s[2 * Tp + j]);
                a20 = p.fma(v0, a20); a21 = p.fma(v1, a21); a22 = p.fma(v2, a22); a23 = p.fma(v3, a23);
                p = FloatVector.broadcast(S, s[3 * Tp + j]);
                a30 = p.fma(v0, a30); a31 = p.fma(v1, a31); a32 = p.fma(v2, a32); a33 = p.fma(v3, a33);
            }
            int o = q0 + c;
            a00.mul(inv0).intoArray(out, o); a01.mul(inv0).intoArray(out, o + L);
            a02.mul(inv0).intoArray(out, o + 2 * L); a03.mul(inv0).intoArray(out, o + 3 * L);
            if (rows > 1) {
                o = q1 + c;
                a10.mul(inv1).intoArray(out, o); a11.mul(inv1).intoArray(out, o + L);
                a12.mul(inv1).intoArray(out, o + 2 * L); a13.mul(inv1).intoArray(out, o + 3 * L);
            }
            if (rows > 2) {
                o = q2 + c;
                a20.mul(inv2).intoArray(out, o); a21.mul(inv2).intoArray(out, o + L);
                a22.mul(inv2).intoArray(out, o + 2 * L); a23.mul(inv2).intoArray(out, o + 3 * L);
            }
            if (rows > 3) {
                o = q3 + c;
                a30.mul(inv3).intoArray(out, o); a31.mul(inv3).intoArray(out, o + L);
                a32.mul(inv3).intoArray(out, o + 2 * L); a33.mul(inv3).intoArray(out, o + 3 * L);
            }
        }
        // head dimensions left over when headDim is not a multiple of the tile: one vector at a time
        for (; c < d; c += L) {
            VectorMask<Float> m = S.indexInRange(c, d);
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j <= last; j++) {
                FloatVector vv = FloatVector.fromArray(S, v, vBase + j * d + c, m);
                a0 = FloatVector.broadcast(S, s[j]).fma(vv, a0);
                a1 = FloatVector.broadcast(S, s[Tp + j]).fma(vv, a1);
                a2 = FloatVector.broadcast(S, s[2 * Tp + j]).fma(vv, a2);
                a3 = FloatVector.broadcast(S, s[3 * Tp + j]).fma(vv, a3);
            }
            a0.mul(inv0).intoArray(out, q0 + c, m);
            if (rows > 1) a1.mul(inv1).intoArray(out, q1 + c, m);
            if (rows > 2) a2.mul(inv2).intoArray(out, q2 + c, m);
            if (rows > 3) a3.mul(inv3).intoArray(out, q3 + c, m);
        }
    }

    private void siluMul(float[] g, float[] u) {
        int n = g.length;
        int chunk = 1 << 14;
        par.forEach((n + chunk - 1) / chunk, c -> {
            int from = c * chunk, to = Math.min(n, from + chunk);
            VectorMath.siluMul(g, u, from, to, scratch(to - from));
        });
    }

    private void activation(float[] f) {
        switch (cfg.hiddenAct()) {
            case "relu" -> {
                for (int i = 0; i < f.length; i++) if (f[i] < 0) f[i] = 0;
            }
            case "gelu" -> {
                for (int i = 0; i < f.length; i++) f[i] = (float) (0.5 * f[i] * (1 + Erf.erf(f[i] / Math.sqrt(2))));
            }
            default -> throw new IllegalStateException("unsupported activation " + cfg.hiddenAct());
        }
    }

    private static void addInto(float[] x, float[] y) {
        for (int i = 0; i < x.length; i++) x[i] += y[i];
    }

    @Override
    public void close() {
        par.close();
    }
}
