package lowbit.model;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import lowbit.tensor.Attention;
import lowbit.tensor.Hadamard;
import lowbit.tensor.Parallel;
import lowbit.tensor.RmsNorm;
import lowbit.tensor.Scratch;
import lowbit.tensor.VectorMath;
import lowbit.tensor.WeightFormat;

/**
 * A decoder-only transformer in float32: the Llama family (Llama, Mistral, SmolLM, Qwen2 with q/k/v biases,
 * Qwen3 with q/k norms) and OPT. Weights are taken once from {@link ModelWeights}; every window is run on
 * its own (no cache across windows), which is what perplexity and calibration need. Continuations scored after
 * a shared context (zero-shot tasks) reuse the context's keys and values: {@link #prefix},
 * {@link #continuationLogProbs(int[], List)}.
 *
 * <p>Every linear (lm_head included) holds its weight in the model's {@link #weightFormat()}: float32, or bf16 for half
 * the memory with products still accumulated in float32. Embeddings, positions and norms stay float32 in both: they are
 * a few percent of a model's weights, and an embedding row is copied, not multiplied.
 */
public final class Transformer implements AutoCloseable {
    /** Rows of logits materialized at once: bounds memory at LOGIT_ROWS x vocab floats. */
    private static final int LOGIT_ROWS = 256;

    private ModelConfig cfg;   // replaced only by untieEmbeddings
    private final String source;
    private final String sha256;
    private final float[] embedTokens;   // [vocab][embedDim]
    private final float[] embedPositions; // OPT: [maxPositions + 2][hidden]
    private final Linear projectIn, projectOut; // OPT-350m style
    private final Block[] blocks;
    private final float[] finalNormW, finalNormB;
    private final Linear lmHead;
    private final Map<String, Linear> linears = new LinkedHashMap<>();
    private final Map<String, Linear> linearsByWeight = new LinkedHashMap<>();
    /** Every non-linear tensor as loaded (live: scale folding changes norms in place), by checkpoint name. */
    private final Map<String, float[]> tensors = new LinkedHashMap<>();
    private final List<ForwardHook> hooks = new CopyOnWriteArrayList<>();
    private Parallel par;
    /** Activation buffers reused across layers and windows: fresh arrays cost more than the matmuls (zeroing, page faults). */
    private final Map<String, float[]> buffers = new java.util.HashMap<>();
    private final Attention attention;
    /** Online Hadamard transforms a rotated model's weights expect (QuaRot); null when off. */
    private Hadamard downInputHadamard, queryKeyHadamard;

    private record Block(float[] attnNormW, float[] attnNormB, Linear q, Linear k, Linear v, Linear o,
                         float[] qNorm, float[] kNorm, float[] mlpNormW, float[] mlpNormB,
                         Linear gate, Linear up, Linear down) {}

    private final WeightFormat weightFormat;

    private Transformer(ModelWeights w, int threads, WeightFormat weightFormat) {
        this.weightFormat = weightFormat;
        this.cfg = w.config();
        this.source = w.source();
        this.sha256 = w.sha256();
        this.par = new Parallel(threads);
        this.attention = new Attention(cfg.numHeads(), cfg.numKvHeads(), cfg.headDim());
        embedTokens = keep(w.tokenEmbeddings());
        embedPositions = keep(w.positionEmbeddings());
        projectIn = linear(w.projectIn());
        projectOut = linear(w.projectOut());
        blocks = new Block[cfg.numLayers()];
        for (int i = 0; i < blocks.length; i++) {
            ModelWeights.BlockWeights b = w.block(i);
            blocks[i] = new Block(keep(b.attentionNorm().weight()), keep(b.attentionNorm().bias()),
                    linear(b.q()), linear(b.k()), linear(b.v()), linear(b.o()), keep(b.qNorm()), keep(b.kNorm()),
                    keep(b.mlpNorm().weight()), keep(b.mlpNorm().bias()), linear(b.gate()), linear(b.up()), linear(b.down()));
        }
        ModelWeights.Norm fin = w.finalNorm();
        finalNormW = fin == null ? null : keep(fin.weight());
        finalNormB = fin == null ? null : keep(fin.bias());
        lmHead = linear(w.lmHead());
    }

    /** Builds the model from its weights, on all cores, linears in float32. */
    public static Transformer load(ModelWeights weights) {
        return load(weights, Parallel.defaultThreads());
    }

    /** Builds the model from its weights, linears in float32. */
    public static Transformer load(ModelWeights weights, int threads) {
        return load(weights, threads, WeightFormat.FP32);
    }

    /**
     * Builds the model from its weights with every linear held in {@code format}. The weights are taken part by part
     * (one block's tensors at a time), and each linear's float array is dropped once packed, so loading in bf16 peaks
     * near the bf16 model plus one block's float tensors.
     */
    public static Transformer load(ModelWeights weights, int threads, WeightFormat format) {
        return new Transformer(weights, threads, java.util.Objects.requireNonNull(format, "format"));
    }

    /** How the linears hold their weights. */
    public WeightFormat weightFormat() {
        return weightFormat;
    }

    /** Keeps a non-linear tensor under its checkpoint name (live: scale folding changes norms in place); null for none. */
    private float[] keep(ModelWeights.Tensor t) {
        if (t == null) return null;
        tensors.put(t.name(), t.values());
        return t.values();
    }

    private Linear linear(ModelWeights.LinearWeights lw) {
        if (lw == null) return null;
        // the weight is packed inside the Linear; keeping its float copy too would double memory
        Linear lin = new Linear(lw.name(), lw.layer(), lw.module(), lw.weight().values(), lw.out(), lw.in(), keep(lw.bias()),
                weightFormat);
        linears.put(lw.name(), lin);
        linearsByWeight.put(lw.weight().name(), lin);
        return lin;
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
        Linear l = linearsByWeight.get(name);
        if (l != null) return l.weight();
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
        if (embedPositions != null && tokens.length > cfg.maxPositions())
            throw new IllegalArgumentException("window of " + tokens.length + " tokens is longer than OPT's "
                    + cfg.maxPositions() + " learned positions");
        return embed(tokens, null);
    }

    /** Embeddings of tokens at the given positions (null: 0..T-1), which OPT's learned positions must cover. */
    private float[] embed(int[] tokens, int[] positions) {
        int T = tokens.length, h = cfg.hiddenSize();
        int e = embedPositions != null ? cfg.wordEmbedProjDim() : h;
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
            for (int t = 0; t < T; t++) {
                int pos = (positions == null ? t : positions[t]) + 2;
                for (int j = 0; j < h; j++) x[t * h + j] += embedPositions[pos * h + j];
            }
        }
        return x;
    }

    /** Runs transformer block {@code layer} on x [rows][hidden] in place. */
    public void block(int layer, float[] x, int rows) {
        block(layer, x, rows, null);
    }

    /** Block {@code layer} on the rows of a pass (null: one window from position 0). */
    private void block(int layer, float[] x, int rows, Pass pass) {
        Block b = blocks[layer];
        if (cfg.family() == ModelConfig.Family.OPT) optBlock(b, layer, x, rows, pass);
        else llamaBlock(b, layer, x, rows, pass);
    }

    private void llamaBlock(Block b, int layer, float[] x, int T, Pass pass) {
        addInto(x, attentionSublayer(b, layer, attentionNorm(b, x, T), T, pass));
        addInto(x, mlpSublayer(b, mlpNorm(b, x, T), T));
    }

    private void optBlock(Block b, int layer, float[] x, int T, Pass pass) {
        boolean pre = cfg.normBefore();
        addInto(x, attentionSublayer(b, layer, pre ? attentionNorm(b, x, T) : x, T, pass));
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
    private float[] attentionSublayer(Block b, int layer, float[] n, int T, Pass pass) {
        float[] q = run(b.q, n, T, "q"), k = run(b.k, n, T, "k"), v = run(b.v, n, T, "v");
        if (b.qNorm != null) {
            rmsNormHeads(q, T * cfg.numHeads(), b.qNorm);
            rmsNormHeads(k, T * cfg.numKvHeads(), b.kNorm);
        }
        if (cfg.family() != ModelConfig.Family.OPT) {
            int[] positions = pass == null ? null : pass.positions;
            rope(q, T, cfg.numHeads(), positions);
            rope(k, T, cfg.numKvHeads(), positions);
        }
        if (queryKeyHadamard != null) {
            // q.k is unchanged by the same orthogonal map on both; the keys the cache quantizes have their outliers spread
            queryKeyHadamard.transformRows(q, T * cfg.numHeads(), par);
            queryKeyHadamard.transformRows(k, T * cfg.numKvHeads(), par);
        }
        for (ForwardHook hook : hooks) hook.keyValue(layer, k, v, T);
        return run(b.o, pass == null ? attention.causal(q, k, v, T, par) : pass.attend(this, layer, q, k, v, T), T, "o");
    }

    /** down(silu(gate(n)) * up(n)), or OPT's fc2(act(fc1(n))): the MLP's output, before the residual add. */
    private float[] mlpSublayer(Block b, float[] n, int T) {
        if (b.gate != null) {
            float[] g = run(b.gate, n, T, "gate"), u = run(b.up, n, T, "up");
            siluMul(g, u);
            // before run: the hooks (activation quantization, calibration) must see what down_proj's folded weight reads
            if (downInputHadamard != null) downInputHadamard.transformRows(g, T, par);
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
        return attentionSublayer(blocks[layer], layer, n, rows, null).clone();
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

    // ------------------------------------------------ in-place access for rotations (QuaRot)

    /**
     * The weight of the norm in front of block {@code layer}'s attention ("attn") or MLP ("mlp"), of the final norm
     * ("final", layer ignored), or Qwen3's per-head norms on queries and keys ("q_norm", "k_norm"): a fresh copy; null
     * when the model has none there (post-norm OPT's final norm, q/k norms outside Qwen3).
     */
    public float[] normWeight(int layer, String which) {
        float[] w = normArray(layer, which);
        return w == null ? null : w.clone();
    }

    /** Replaces that norm's weight in place (a rotation folds it into the linears that read it and leaves it plain). */
    public synchronized void setNormWeight(int layer, String which, float[] w) {
        float[] live = normArray(layer, which);
        if (live == null) throw new IllegalArgumentException("the model has no " + which + " norm to set");
        if (w.length != live.length)
            throw new IllegalArgumentException(which + " norm of block " + layer + ": " + w.length + " values for " + live.length + " channels");
        System.arraycopy(w, 0, live, 0, w.length);
    }

    private float[] normArray(int layer, String which) {
        return switch (which) {
            case "attn" -> blocks[layer].attnNormW;
            case "mlp" -> blocks[layer].mlpNormW;
            case "final" -> finalNormW;
            case "q_norm" -> blocks[layer].qNorm;
            case "k_norm" -> blocks[layer].kNorm;
            default -> throw new IllegalArgumentException("norm must be attn, mlp, final, q_norm or k_norm, got " + which);
        };
    }

    /** The token embeddings [vocab][embedDim], a fresh copy. */
    public float[] tokenEmbeddings() {
        return embedTokens.clone();
    }

    /** Replaces the token embeddings in place; lm_head keeps its own weight (see {@link #untieEmbeddings}). */
    public synchronized void setTokenEmbeddings(float[] e) {
        if (e.length != embedTokens.length)
            throw new IllegalArgumentException("token embeddings: " + e.length + " values for " + embedTokens.length);
        System.arraycopy(e, 0, embedTokens, 0, e.length);
    }

    /**
     * Records that lm_head no longer shares the token embeddings' values. lm_head always holds its own packed copy,
     * so only the config changes: a model written from here stores lm_head.weight and tie_word_embeddings false.
     */
    public synchronized void untieEmbeddings() {
        cfg = cfg.withTieWordEmbeddings(false);
    }

    /**
     * Switches the online Hadamard transforms a rotated model's weights expect (QuaRot): on down_proj's input (order
     * intermediate_size, whose transpose is folded into down_proj's weight) and on every head of the queries and keys
     * after RoPE and Qwen3's q/k norm (order head_dim; it leaves attention unchanged and spreads the keys' outliers
     * before a quantized KV cache). They run inside the forward pass, before any hook sees those activations. An order
     * with no Hadamard construction is refused, naming the dimension, and nothing changes.
     */
    public synchronized void setOnlineHadamards(boolean downInput, boolean queriesKeys) {
        if ((downInput || queriesKeys) && cfg.family() == ModelConfig.Family.OPT)
            throw new IllegalArgumentException("online Hadamard transforms need the Llama family's gated MLP and rotary attention; "
                    + cfg.modelType() + " is OPT");
        Hadamard down = downInput ? Hadamard.of(cfg.intermediateSize(), "down_proj input (intermediate_size)") : null;
        Hadamard qk = queriesKeys ? Hadamard.of(cfg.headDim(), "queries and keys per head (head_dim)") : null;
        downInputHadamard = down;
        queryKeyHadamard = qk;
    }

    /** Whether down_proj's input goes through the online Hadamard. */
    public boolean onlineDownHadamard() {
        return downInputHadamard != null;
    }

    /** Whether queries and keys go through the online per-head Hadamard after RoPE. */
    public boolean onlineQueryKeyHadamard() {
        return queryKeyHadamard != null;
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
            double lse = logSumExpOf(logits, off, V);
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
        forLogitChunks(h, T - 1, (row, logits, off) -> nll[row] = logSumExpOf(logits, off, V) - logits[off + tokens[row + 1]]);
        return nll;
    }

    /**
     * Streams the next-token log-softmax rows of a window without holding [tokens][vocab]: row t (t in [0, T-1))
     * is log p(. | tokens[0..t]) in float32, the distribution {@link #nll} scores tokens[t+1] with. The consumer is
     * called from the compute threads, concurrently for different rows, and must not keep the array: it is reused.
     */
    public synchronized void nextTokenLogProbs(int[] tokens, java.util.function.ObjIntConsumer<float[]> row) {
        int T = tokens.length;
        if (T < 2) throw new IllegalArgumentException("a window needs at least 2 tokens, got " + T);
        nextTokenLogProbsOfHidden(hidden(tokens), T, row);
    }

    /**
     * The raw next-token logits of rows 0..T-2 from the last block's output x [T][hidden] (final norm and lm_head
     * applied, no softmax), for a consumer that needs less than a log-softmax row (a KL divergence against a fixed
     * distribution needs only its dot product with the logits and their log-sum-exp). Called from the compute threads.
     */
    public synchronized void nextTokenLogitsOfHidden(float[] x, int T, LogitRow row) {
        forLogitChunks(finalHidden(x, T), T - 1, row);
    }

    /** log sum_j exp(logits[offset + j]) over n entries, as every log-softmax here computes it. */
    public static double logSumExp(float[] logits, int offset, int n) {
        return logSumExpOf(logits, offset, n);
    }

    /**
     * {@link #nextTokenLogProbs} from the last block's output x [T][hidden] instead of tokens: a caller that ran the
     * blocks itself ({@link #embed}, {@link #block}), e.g. from a cached block input, gets the same rows.
     */
    public synchronized void nextTokenLogProbsOfHidden(float[] x, int T, java.util.function.ObjIntConsumer<float[]> row) {
        float[] h = finalHidden(x, T);
        int V = cfg.vocabSize();
        ThreadLocal<float[]> rows = ThreadLocal.withInitial(() -> new float[V]);
        forLogitChunks(h, T - 1, (r, logits, off) -> {
            float[] lp = rows.get();
            double lse = logSumExpOf(logits, off, V);
            for (int j = 0; j < V; j++) lp[j] = (float) (logits[off + j] - lse);
            row.accept(lp, r);
        });
    }

    // ------------------------------------------------ a context once, continuations after it

    /**
     * A context run once through the model: every layer's keys and values exactly as attention read them in
     * that pass (after q/k norm, RoPE and the hooks' {@link ForwardHook#keyValue}, so a quantized KV cache is
     * kept quantized), and the log-probs at its last position, which score each continuation's first token.
     * Valid for the model that made it, with the weights and hooks it had then.
     */
    public static final class Prefix {
        private final Transformer model;
        private final int length;
        private final float[][] keys, values;  // [layer][length][numKvHeads * headDim]
        private float[] lastLogProbs;         // [vocab]

        private Prefix(Transformer model, int length) {
            this.model = model;
            this.length = length;
            this.keys = new float[model.blocks.length][];
            this.values = new float[model.blocks.length][];
        }

        /** Tokens in the context. */
        public int length() {
            return length;
        }
    }

    /**
     * One continuation's tokens scored after a prefix: element i is log p(token i | context, tokens before i), a
     * float32 log-softmax as {@link #logProbs(int[])} computes it, and whether token i was the argmax of that
     * distribution (the first index of the largest log-prob, as torch.argmax breaks ties).
     */
    public record TokenLogProbs(float[] logProbs, boolean[] argmax) {}

    /**
     * Runs {@code context} once and keeps what continuations after it need. Only the last position's logits are
     * computed; hooks see the context's rows as in a full pass over it.
     */
    public synchronized Prefix prefix(int[] context) {
        if (context.length == 0) throw new IllegalArgumentException("a prefix needs at least one context token");
        return afterContext(context, null, List.of()).prefix();
    }

    /**
     * Scores continuations after {@code prefix} in one batched pass: the continuations' tokens (each without its
     * last, which is only scored) are concatenated as the rows of every linear, each row at its position after the
     * context, and each continuation attends over the context's kept keys and values plus its own earlier tokens.
     * The log-probs equal those of a full pass over context + continuation; hooks see the batched rows as in a full
     * pass (keyValue: the continuations' new rows only). Logits are computed for continuation positions only.
     */
    public synchronized List<TokenLogProbs> continuationLogProbs(Prefix prefix, List<int[]> continuations) {
        if (prefix.model != this) throw new IllegalArgumentException("the prefix was computed by another model");
        return afterContext(null, prefix, continuations).continuations();
    }

    /**
     * {@link #prefix} and {@link #continuationLogProbs(Prefix, List)} in one pass: the context's rows and the
     * continuations' rows go through each linear as one matrix product, so the weights are read once per request.
     */
    public synchronized List<TokenLogProbs> continuationLogProbs(int[] context, List<int[]> continuations) {
        if (context.length == 0) throw new IllegalArgumentException("a prefix needs at least one context token");
        return afterContext(context, null, continuations).continuations();
    }

    private record AfterContext(Prefix prefix, List<TokenLogProbs> continuations) {}

    /**
     * One forward pass over the rows of {@code context} (when not null: its keys and values are kept in a new
     * prefix) followed by the rows of the continuations, which attend after the context's keys and values (those
     * just kept, or {@code past}'s). Continuations that begin with the same tokens share those tokens' rows (PIQA's
     * two solutions often differ only after many words): a row depends on its token and the tokens before it only.
     */
    private AfterContext afterContext(int[] context, Prefix past, List<int[]> continuations) {
        int P = context != null ? context.length : past.length, V = cfg.vocabSize(), K = continuations.size();
        int contextRows = context != null ? P : 0, h = cfg.hiddenSize();
        if (context != null && embedPositions != null && P > cfg.maxPositions())
            throw new IllegalArgumentException("context of " + P + " tokens is longer than OPT's " + cfg.maxPositions()
                    + " learned positions");
        // rowOf[c][i]: the row whose input is token i of continuation c (its last token is only scored, never input)
        int[][] rowOf = new int[K][];
        int[] starts = new int[K], shared = new int[K];
        int rows = contextRows, longest = 0;
        for (int c = 0; c < K; c++) {
            int[] cont = continuations.get(c);
            if (cont.length == 0) throw new IllegalArgumentException("continuation " + c + " has no tokens to score");
            for (int i = 0; i < cont.length; i++)
                if (cont[i] < 0 || cont[i] >= V)
                    throw new IllegalArgumentException("continuation " + c + ": token id " + cont[i] + " at position " + i
                            + " is outside the vocabulary of " + V);
            if (embedPositions != null && P + cont.length - 1 > cfg.maxPositions())
                throw new IllegalArgumentException("context of " + P + " tokens and continuation " + c + " of " + cont.length
                        + " tokens need " + (P + cont.length - 1) + " positions, more than OPT's " + cfg.maxPositions()
                        + " learned positions");
            int inputs = cont.length - 1, parent = -1;
            for (int e = 0; e < c; e++) {
                int[] earlier = continuations.get(e);
                int m = 0, limit = Math.min(inputs, earlier.length - 1);
                while (m < limit && earlier[m] == cont[m]) m++;
                if (m > shared[c]) {
                    shared[c] = m;
                    parent = e;
                }
            }
            rowOf[c] = new int[inputs];
            for (int i = 0; i < shared[c]; i++) rowOf[c][i] = rowOf[parent][i];
            starts[c] = rows;
            for (int i = shared[c]; i < inputs; i++) rowOf[c][i] = rows++;
            longest = Math.max(longest, inputs);
        }
        int[] tokens = new int[rows], positions = new int[rows];
        for (int t = 0; t < contextRows; t++) {
            tokens[t] = context[t];
            positions[t] = t;
        }
        // the tokens each row's distribution scores: continuation c's token i + 1 from row rowOf[c][i]
        List<List<int[]>> scoredAt = new ArrayList<>(Collections.nCopies(rows, null));
        for (int c = 0; c < K; c++) {
            int[] cont = continuations.get(c);
            for (int i = 0; i < rowOf[c].length; i++) {
                int r = rowOf[c][i];
                tokens[r] = cont[i];
                positions[r] = P + i;
                if (scoredAt.get(r) == null) scoredAt.set(r, new ArrayList<>(1));
                scoredAt.get(r).add(new int[]{c, i + 1});
            }
        }
        Prefix kept = context != null ? new Prefix(this, P) : past;
        float[][] logProbs = new float[K][];
        boolean[][] argmax = new boolean[K][];
        for (int c = 0; c < K; c++) {
            logProbs[c] = new float[continuations.get(c).length];
            argmax[c] = new boolean[logProbs[c].length];
        }
        if (rows > 0) {
            float[] x = embed(tokens, positions);
            Pass pass = new Pass(context != null ? kept : null, kept, contextRows, rowOf, starts, shared, longest, positions);
            for (int l = 0; l < blocks.length; l++) block(l, x, rows, pass);
            // logits for the context's last position (when it was run here) and the continuations' rows only
            int first = contextRows > 0 ? contextRows - 1 : 0;
            float[] hidden = finalHidden(Arrays.copyOfRange(x, first * h, rows * h), rows - first);
            forLogitChunks(hidden, rows - first, (r, logits, off) -> {
                int row = first + r;
                double lse = logSumExpOf(logits, off, V);
                if (row < contextRows) {
                    float[] lp = new float[V];
                    for (int j = 0; j < V; j++) lp[j] = (float) (logits[off + j] - lse);
                    kept.lastLogProbs = lp;
                    return;
                }
                for (int[] at : scoredAt.get(row)) {
                    int target = continuations.get(at[0])[at[1]];
                    float lp = (float) (logits[off + target] - lse);
                    boolean top = true;
                    for (int j = 0; j < V && top; j++) {
                        float other = (float) (logits[off + j] - lse);
                        if (j < target ? other >= lp : other > lp) top = false;
                    }
                    logProbs[at[0]][at[1]] = lp;
                    argmax[at[0]][at[1]] = top;
                }
            });
        }
        float[] last = kept.lastLogProbs;
        int lastArgmax = argmax(last);
        List<TokenLogProbs> out = new ArrayList<>(K);
        for (int c = 0; c < K; c++) {
            int token = continuations.get(c)[0];
            logProbs[c][0] = last[token];
            argmax[c][0] = lastArgmax == token;
            out.add(new TokenLogProbs(logProbs[c], argmax[c]));
        }
        return new AfterContext(kept, out);
    }

    /** The first index of the largest value. */
    private static int argmax(float[] row) {
        int best = 0;
        for (int j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        return best;
    }

    /**
     * The rows of a forward pass that is not one window from position 0: first {@code contextRows} rows of a context
     * whose keys and values go into {@code keep}, then continuations after the keys and values of {@code after}.
     * Continuation c's inputs are rows rowOf[c]: its first shared[c] rows belong to an earlier continuation with the
     * same tokens, the rest are its own, from starts[c] on. Row r is at positions[r].
     */
    private record Pass(Prefix keep, Prefix after, int contextRows, int[][] rowOf, int[] starts, int[] shared, int longest,
                        int[] positions) {
        /** Attention output [T][heads * headDim] of layer for this pass's rows, keys and values as the hooks left them. */
        float[] attend(Transformer m, int layer, float[] q, float[] k, float[] v, int T) {
            int kvDim = m.cfg.numKvHeads() * m.cfg.headDim(), qDim = m.cfg.numHeads() * m.cfg.headDim();
            if (keep != null) {
                keep.keys[layer] = Arrays.copyOf(k, contextRows * kvDim);
                keep.values[layer] = Arrays.copyOf(v, contextRows * kvDim);
            }
            // the context's rows are the first of q, k and v, and Attention reads only the rows it is given
            if (T == contextRows) return m.attention.causal(q, k, v, T, m.par);
            float[] out = m.buffer("segmentsAttended", T * qDim);
            if (contextRows > 0)
                System.arraycopy(m.attention.causal(q, k, v, contextRows, m.par), 0, out, 0, contextRows * qDim);
            // A continuation's keys are the context's followed by its own rows': the context part is written once per layer.
            int P = after.length;
            float[] keys = m.buffer("segmentKeys", (P + longest) * kvDim), vals = m.buffer("segmentValues", (P + longest) * kvDim);
            float[] queries = m.buffer("segmentQueries", longest * qDim);
            System.arraycopy(after.keys[layer], 0, keys, 0, P * kvDim);
            System.arraycopy(after.values[layer], 0, vals, 0, P * kvDim);
            for (int c = 0; c < rowOf.length; c++) {
                int[] own = rowOf[c];
                int n = own.length - shared[c];
                if (n == 0) continue;
                for (int i = 0; i < own.length; i++) {
                    System.arraycopy(k, own[i] * kvDim, keys, (P + i) * kvDim, kvDim);
                    System.arraycopy(v, own[i] * kvDim, vals, (P + i) * kvDim, kvDim);
                }
                System.arraycopy(q, starts[c] * qDim, queries, 0, n * qDim);
                System.arraycopy(m.attention.causal(queries, keys, vals, n, P + shared[c], m.par), 0, out, starts[c] * qDim, n * qDim);
            }
            return out;
        }
    }

    /** One row of logits: vocab floats of {@code logits} from {@code offset}, valid only during the call. */
    public interface LogitRow {
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

    private static double logSumExpOf(float[] a, int off, int n) {
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
        RmsNorm.rows(x, out, rows, d, w, (float) cfg.normEps(), par);
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

    private RotaryTables rotary;

    /** HF's rotate_half convention: dimension i pairs with i + headDim/2; row t at positions[t] (null: at t). */
    private void rope(float[] x, int T, int heads, int[] positions) {
        int d = cfg.headDim(), half = d / 2;
        int end = T;
        if (positions != null) for (int p : positions) end = Math.max(end, p + 1);
        ensureRope(end);
        float[] cos = rotary.cos(), sin = rotary.sin();
        par.forEach(T, t -> {
            int c = (positions == null ? t : positions[t]) * half;
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
        if (rotary == null || rotary.positions() < T) rotary = RotaryTables.of(cfg, T);
    }

    private void siluMul(float[] g, float[] u) {
        int n = g.length;
        int chunk = 1 << 14;
        par.forEach((n + chunk - 1) / chunk, c -> {
            int from = c * chunk, to = Math.min(n, from + chunk);
            VectorMath.siluMul(g, u, from, to, Scratch.floats(to - from));
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
