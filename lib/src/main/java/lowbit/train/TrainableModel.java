package lowbit.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
import lowbit.model.Linear;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.tensor.Matmul;
import lowbit.tensor.PackedMatrix;
import lowbit.tensor.Parallel;

/**
 * A trainable float32 copy of a Llama-family runtime model (Llama, SmolLM, Mistral, Qwen2 with q/k/v biases, Qwen3 with
 * q/k norms; tied or untied lm_head) with a backward pass for every parameter.
 *
 * <p>Memory: a window keeps every block's activations when they fit {@link #KEEP_BYTES} (seqlen 512 on the 135M
 * model: about 0.5 GB), and otherwise only each block's input, recomputing the block in its backward (activation
 * checkpointing: one more forward pass, so a 2048-token window fits in a few hundred MB). Attention never holds
 * [T][T]: the backward recomputes each row's probabilities from the row's log-sum-exp. Logits and their gradient go
 * through lm_head {@link #LOGIT_ROWS} rows at a time.
 *
 * <p>Every product runs on {@link Parallel} with each output element computed whole by one task, and every sum over
 * rows (norm and bias gradients, keys and values shared by a group of heads) in a fixed order, so gradients are
 * bitwise the same on any thread count.
 */
public final class TrainableModel implements AutoCloseable {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int LOGIT_ROWS = 128;
    /** Activations kept per window before switching to recomputation per block. */
    private static final long KEEP_BYTES = 1L << 30;

    private final ModelConfig cfg;
    private Parallel par;
    private final Parameter embed;       // [vocab][hidden]
    private final Layer[] layers;
    private final Parameter finalNorm;
    private final Lin lmHead;
    private final List<Parameter> parameters;
    private final List<TrainLinear> trainLinears;
    private final List<Lin> lins = new ArrayList<>();
    private final Set<Parameter> frozen = Collections.newSetFromMap(new IdentityHashMap<>());
    private TrainHook hook;

    /** A linear with what one step's passes use: the effective weight packed for y = x W^T and for dX = dY W. */
    private static final class Lin {
        final TrainLinear tl;
        PackedMatrix forward, backward;
        float[] dEffective;      // null when no weight gradient is needed this step
        boolean quantizesInput;

        Lin(TrainLinear tl) {
            this.tl = tl;
        }
    }

    private record Layer(Parameter attnNorm, Lin q, Lin k, Lin v, Lin o, Parameter qNorm, Parameter kNorm,
                         Parameter mlpNorm, Lin gate, Lin up, Lin down) {}

    /** One block's activations for one window; xq* are the inputs the linears multiplied (fake-quantized or raw). */
    private static final class Acts {
        float[] x0, n1, qRaw, kRaw, q, k, v, lse, att, x1, n2, g, u, a, x2;
        float[] xqQ, xqK, xqV, xqO, xqGate, xqUp, xqDown;
    }

    private TrainableModel(Transformer model, int threads) {
        this.cfg = model.config();
        if (cfg.family() != ModelConfig.Family.LLAMA)
            throw new IllegalArgumentException("model_type " + cfg.modelType() + ": there is no backward pass for it yet "
                    + "(training covers the Llama family: llama, mistral, qwen2, qwen3)");
        if (model.onlineDownHadamard() || model.onlineQueryKeyHadamard())
            throw new IllegalArgumentException("model_type " + cfg.modelType() + " with online Hadamard transforms (QuaRot): "
                    + "there is no backward pass for it yet");
        this.par = new Parallel(threads);
        List<Parameter> ps = new ArrayList<>();
        embed = Parameter.of("model.embed_tokens.weight", model.tokenEmbeddings(), true);
        ps.add(embed);
        layers = new Layer[cfg.numLayers()];
        for (int l = 0; l < layers.length; l++) {
            String p = "model.layers." + l + ".";
            Parameter an = norm(ps, p + "input_layernorm.weight", model.normWeight(l, "attn"));
            Lin q = lin(ps, model, p + "self_attn.q_proj"), k = lin(ps, model, p + "self_attn.k_proj"),
                    v = lin(ps, model, p + "self_attn.v_proj");
            Parameter qn = null, kn = null;
            if (cfg.qkNorm()) {
                qn = norm(ps, p + "self_attn.q_norm.weight", model.normWeight(l, "q_norm"));
                kn = norm(ps, p + "self_attn.k_norm.weight", model.normWeight(l, "k_norm"));
            }
            Lin o = lin(ps, model, p + "self_attn.o_proj");
            Parameter mn = norm(ps, p + "post_attention_layernorm.weight", model.normWeight(l, "mlp"));
            Lin gate = lin(ps, model, p + "mlp.gate_proj"), up = lin(ps, model, p + "mlp.up_proj"),
                    down = lin(ps, model, p + "mlp.down_proj");
            layers[l] = new Layer(an, q, k, v, o, qn, kn, mn, gate, up, down);
        }
        finalNorm = norm(ps, "model.norm.weight", model.normWeight(0, "final"));
        Linear head = model.linear("lm_head");
        Parameter headWeight = cfg.tieWordEmbeddings() ? embed : Parameter.of("lm_head.weight", head.weight(), true);
        if (!cfg.tieWordEmbeddings()) ps.add(headWeight);
        lmHead = new Lin(new TrainLinear("lm_head", -1, "lm_head", head.outFeatures(), head.inFeatures(), headWeight, null));
        lins.add(lmHead);
        parameters = List.copyOf(ps);
        trainLinears = lins.stream().map(x -> x.tl).toList();
    }

    private static Parameter norm(List<Parameter> ps, String name, float[] w) {
        Parameter p = Parameter.of(name, w, false);
        ps.add(p);
        return p;
    }

    private Lin lin(List<Parameter> ps, Transformer model, String name) {
        Linear l = model.linear(name);
        Parameter w = Parameter.of(name + ".weight", l.weight(), true);
        ps.add(w);
        Parameter b = null;
        if (l.bias() != null) {
            b = Parameter.of(name + ".bias", l.bias().clone(), false);
            ps.add(b);
        }
        Lin lin = new Lin(new TrainLinear(name, l.layer(), l.module(), l.outFeatures(), l.inFeatures(), w, b));
        lins.add(lin);
        return lin;
    }

    /**
     * A trainable copy of {@code model} on all cores. OPT, and models with online Hadamards (QuaRot), are refused with
     * one line naming the model_type.
     */
    public static TrainableModel of(Transformer model) {
        return new TrainableModel(model, Parallel.defaultThreads());
    }

    public static TrainableModel of(Transformer model, int threads) {
        return new TrainableModel(model, threads);
    }

    public ModelConfig config() {
        return cfg;
    }

    /** Every parameter once under its checkpoint name (tied embeddings once, as model.embed_tokens.weight). */
    public List<Parameter> parameters() {
        return parameters;
    }

    /** Block linears in execution order (q, k, v, o, gate, up, down per block), then lm_head. */
    public List<TrainLinear> linears() {
        return trainLinears;
    }

    /** Which parameters train (default: all); frozen ones get no gradient work, their gradients stay zero. */
    public void setTrainable(Predicate<Parameter> which) {
        frozen.clear();
        for (Parameter p : parameters) if (!which.test(p)) frozen.add(p);
    }

    /** The trainable model parameters, then the hook's parameters. */
    public List<Parameter> trainable() {
        List<Parameter> out = new ArrayList<>();
        for (Parameter p : parameters) if (!frozen.contains(p)) out.add(p);
        if (hook != null) out.addAll(hook.parameters());
        return out;
    }

    /** The quantization the passes apply (null: float); its parameters join {@link #trainable()}. */
    public void setHook(TrainHook hook) {
        this.hook = hook;
    }

    public void setThreads(int threads) {
        if (threads != par.threads()) {
            par.close();
            par = new Parallel(threads);
        }
    }

    private boolean trains(Parameter p) {
        return p != null && !frozen.contains(p);
    }

    // ---------------------------------------------------------------- steps

    /**
     * One optimizer step's gradient: zeroes the trainable gradients, calls hook.effectiveWeight for every linear, runs
     * forward and backward on every window (the loss averaged over all scored positions of all windows), calls
     * hook.weightGradient for every linear whose weight gradient is needed (its weight trains, or a trainable hook
     * parameter is named under it) and returns the mean loss.
     */
    public double gradient(List<int[]> windows, Loss loss) {
        if (windows.isEmpty()) throw new IllegalArgumentException("a step needs at least one window");
        long scored = 0;
        for (int[] w : windows) {
            check(w);
            scored += loss.scored(w.length);
        }
        for (Parameter p : trainable()) p.zeroGrad();
        prepare(true);
        double total = 0;
        for (int[] w : windows) total += window(w, loss, 1.0 / scored);
        for (Lin lin : lins) {
            if (lin.dEffective == null) continue;
            float[] w = lin.tl.weight().value();
            if (hook != null) hook.weightGradient(lin.tl, w, lin.dEffective);
            float[] g = lin.tl.weight().grad();
            if (lin.dEffective != g && trains(lin.tl.weight()))
                for (int i = 0; i < g.length; i++) g[i] += lin.dEffective[i];
        }
        release();
        return total / scored;
    }

    /** Forward only, with the hook applied: logits [T][vocab] for one window. */
    public float[] logits(int[] window) {
        check(window);
        prepare(false);
        int T = window.length, V = cfg.vocabSize(), h = cfg.hiddenSize();
        float[] x = embed(window);
        for (int l = 0; l < layers.length; l++) x = block(layers[l], x, T, false).x2;
        float[] n = rmsNorm(x, T, h, finalNorm.value());
        float[] out = new float[T * V];
        linear(lmHead, n, T, out);
        release();
        return out;
    }

    /** Writes the current float weights (linears, biases, norms, embeddings) back into the runtime model. */
    public void copyInto(Transformer model) {
        if (!model.config().modelType().equals(cfg.modelType()) || model.config().numLayers() != cfg.numLayers()
                || model.config().hiddenSize() != cfg.hiddenSize())
            throw new IllegalArgumentException("cannot copy a trained " + cfg.modelType() + " into a different model ("
                    + model.config().modelType() + ", " + model.config().numLayers() + " layers)");
        model.setTokenEmbeddings(embed.value());
        for (Lin lin : lins) {
            Linear target = model.linear(lin.tl.name());
            target.setWeight(lin.tl.weight().value());
            if (lin.tl.bias() != null) System.arraycopy(lin.tl.bias().value(), 0, target.bias(), 0, target.bias().length);
        }
        for (int l = 0; l < layers.length; l++) {
            model.setNormWeight(l, "attn", layers[l].attnNorm.value());
            model.setNormWeight(l, "mlp", layers[l].mlpNorm.value());
            if (layers[l].qNorm != null) {
                model.setNormWeight(l, "q_norm", layers[l].qNorm.value());
                model.setNormWeight(l, "k_norm", layers[l].kNorm.value());
            }
        }
        model.setNormWeight(0, "final", finalNorm.value());
    }

    @Override
    public void close() {
        par.close();
    }

    private void check(int[] w) {
        if (w.length < 2) throw new IllegalArgumentException("a training window needs at least 2 tokens, got " + w.length);
        for (int t = 0; t < w.length; t++)
            if (w[t] < 0 || w[t] >= cfg.vocabSize())
                throw new IllegalArgumentException("token id " + w[t] + " at position " + t + " is outside the vocabulary of "
                        + cfg.vocabSize());
    }

    /** Effective weights for this step, packed both ways; weight-gradient buffers where needed. */
    private void prepare(boolean backward) {
        List<Parameter> hookParams = hook == null ? List.of() : hook.parameters();
        for (Lin lin : lins) {
            TrainLinear tl = lin.tl;
            float[] w = tl.weight().value();
            float[] eff = hook == null ? w : hook.effectiveWeight(tl, w);
            if (eff.length != w.length)
                throw new IllegalStateException(tl.name() + ": the hook's effective weight has " + eff.length + " elements, expected "
                        + w.length);
            lin.forward = PackedMatrix.pack(eff, tl.out(), tl.in());
            lin.quantizesInput = hook != null && hook.quantizesInput(tl);
            lin.backward = null;
            lin.dEffective = null;
            if (!backward) continue;
            lin.backward = PackedMatrix.pack(transpose(eff, tl.out(), tl.in()), tl.in(), tl.out());
            boolean own = trains(tl.weight());
            boolean hooked = false;
            for (Parameter p : hookParams) hooked |= p.name().startsWith(tl.name() + ".");
            if (own && hook == null && lin != lmHead) lin.dEffective = tl.weight().grad();
            else if (own || hooked) lin.dEffective = new float[w.length];
        }
    }

    private void release() {
        for (Lin lin : lins) {
            lin.forward = null;
            lin.backward = null;
            lin.dEffective = null;
        }
    }

    private float[] transpose(float[] w, int rows, int cols) {
        float[] t = new float[w.length];
        par.forEach(cols, j -> {
            for (int i = 0; i < rows; i++) t[j * rows + i] = w[i * cols + j];
        });
        return t;
    }

    /** Forward and backward of one window; returns its summed loss, gradients scaled by {@code scale} (1 / scored). */
    private double window(int[] tokens, Loss loss, double scale) {
        int T = tokens.length, h = cfg.hiddenSize(), L = layers.length;
        boolean keep = (long) T * L * actsPerToken() * 4 <= KEEP_BYTES;
        Acts[] acts = new Acts[L];
        float[][] inputs = new float[L][];
        float[] x = embed(tokens);
        for (int l = 0; l < L; l++) {
            inputs[l] = x;
            Acts a = block(layers[l], x, T, keep);
            if (keep) acts[l] = a;
            x = a.x2;
        }
        float[] dx = new float[T * h];
        double sum = head(tokens, x, loss, scale, dx);
        for (int l = L - 1; l >= 0; l--) {
            Acts a = keep ? acts[l] : block(layers[l], inputs[l], T, true);
            acts[l] = null;
            dx = blockBackward(layers[l], a, dx, T);
        }
        if (trains(embed)) {
            float[] g = embed.grad();
            for (int t = 0; t < T; t++) {
                int o = tokens[t] * h;
                for (int j = 0; j < h; j++) g[o + j] += dx[t * h + j];
            }
        }
        return sum;
    }

    private long actsPerToken() {
        int h = cfg.hiddenSize(), q = cfg.qDim(), kv = cfg.kvDim(), I = cfg.intermediateSize();
        return 4L * h + 2L * q + 2L * kv + 3L * I + cfg.numHeads() + (cfg.qkNorm() ? q + kv : 0);
    }

    private float[] embed(int[] tokens) {
        int h = cfg.hiddenSize();
        float[] x = new float[tokens.length * h];
        for (int t = 0; t < tokens.length; t++) System.arraycopy(embed.value(), tokens[t] * h, x, t * h, h);
        return x;
    }

    /** One block forward from x (not modified); keeps what its backward needs when {@code keep}. */
    private Acts block(Layer b, float[] x, int T, boolean keep) {
        int h = cfg.hiddenSize(), H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), I = cfg.intermediateSize();
        Acts a = new Acts();
        a.x0 = x;
        a.n1 = rmsNorm(x, T, h, b.attnNorm.value());
        float[] q = new float[T * H * d], k = new float[T * KV * d], v = new float[T * KV * d];
        a.xqQ = linear(b.q, a.n1, T, q);
        a.xqK = linear(b.k, a.n1, T, k);
        a.xqV = linear(b.v, a.n1, T, v);
        if (b.qNorm != null) {
            a.qRaw = q;
            a.kRaw = k;
            q = rmsNorm(q, T * H, d, b.qNorm.value());
            k = rmsNorm(k, T * KV, d, b.kNorm.value());
        }
        rope(q, T, H, false);
        rope(k, T, KV, false);
        a.q = q;
        a.k = k;
        a.v = v;
        a.lse = new float[H * T];
        a.att = attention(q, k, v, T, a.lse);
        float[] o = new float[T * h];
        a.xqO = linear(b.o, a.att, T, o);
        a.x1 = add(x, o);
        a.n2 = rmsNorm(a.x1, T, h, b.mlpNorm.value());
        a.g = new float[T * I];
        a.u = new float[T * I];
        a.xqGate = linear(b.gate, a.n2, T, a.g);
        a.xqUp = linear(b.up, a.n2, T, a.u);
        a.a = new float[T * I];
        float[] g = a.g, u = a.u, act = a.a;
        par.forEach(T, t -> {
            for (int j = t * I, e = j + I; j < e; j++) act[j] = silu(g[j]) * u[j];
        });
        float[] m = new float[T * h];
        a.xqDown = linear(b.down, act, T, m);
        a.x2 = add(a.x1, m);
        if (!keep) {
            Acts only = new Acts();
            only.x2 = a.x2;
            return only;
        }
        return a;
    }

    /** The gradient at block input x0 from the gradient dx2 at its output; adds the block's parameter gradients. */
    private float[] blockBackward(Layer b, Acts a, float[] dx2, int T) {
        int h = cfg.hiddenSize(), H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), I = cfg.intermediateSize();
        // MLP
        float[] dAct = new float[T * I];
        linearBackward(b.down, a.xqDown, a.a, dx2, T, dAct);
        float[] dg = new float[T * I], du = new float[T * I];
        float[] g = a.g, u = a.u;
        par.forEach(T, t -> {
            for (int j = t * I, e = j + I; j < e; j++) {
                float s = sigmoid(g[j]), si = g[j] * s;
                du[j] = dAct[j] * si;
                dg[j] = dAct[j] * u[j] * (s + si * (1 - s));
            }
        });
        float[] dn2 = new float[T * h];
        linearBackward(b.gate, a.xqGate, a.n2, dg, T, dn2);
        linearBackward(b.up, a.xqUp, a.n2, du, T, dn2);
        float[] dx1 = dx2.clone();
        rmsNormBackward(a.x1, T, h, b.mlpNorm, dn2, dx1);
        // attention
        float[] dAtt = new float[T * H * d];
        linearBackward(b.o, a.xqO, a.att, dx1, T, dAtt);
        float[] dq = new float[T * H * d], dk = new float[T * KV * d], dv = new float[T * KV * d];
        attentionBackward(a.q, a.k, a.v, a.att, a.lse, dAtt, T, dq, dk, dv);
        rope(dq, T, H, true);
        rope(dk, T, KV, true);
        if (b.qNorm != null) {
            float[] dqRaw = new float[dq.length], dkRaw = new float[dk.length];
            rmsNormBackward(a.qRaw, T * H, d, b.qNorm, dq, dqRaw);
            rmsNormBackward(a.kRaw, T * KV, d, b.kNorm, dk, dkRaw);
            dq = dqRaw;
            dk = dkRaw;
        }
        float[] dn1 = new float[T * h];
        linearBackward(b.q, a.xqQ, a.n1, dq, T, dn1);
        linearBackward(b.k, a.xqK, a.n1, dk, T, dn1);
        linearBackward(b.v, a.xqV, a.n1, dv, T, dn1);
        float[] dx0 = dx1;
        rmsNormBackward(a.x0, T, h, b.attnNorm, dn1, dx0);
        return dx0;
    }

    /**
     * Final norm, lm_head and the loss on the last block's output x, LOGIT_ROWS rows at a time; adds dL/dx * ... into dx
     * and lm_head's and the final norm's gradients. Returns the summed loss of the window's scored positions.
     */
    private double head(int[] tokens, float[] x, Loss loss, double scale, float[] dx) {
        int T = tokens.length, h = cfg.hiddenSize(), V = cfg.vocabSize();
        int rows = loss.scored(T);
        float[] n = rmsNorm(x, T, h, finalNorm.value());
        float[] teacherHidden = null;
        Linear teacherHead = null;
        Transformer teacher = loss instanceof Loss.Distill dl ? dl.teacher() : null;
        if (teacher != null) {
            if (teacher.config().vocabSize() != V)
                throw new IllegalArgumentException("the teacher's vocabulary has " + teacher.config().vocabSize()
                        + " tokens, the student's " + V);
            teacherHidden = teacher.finalHidden(teacher.hidden(tokens), T).clone();
            teacherHead = teacher.linear("lm_head");
        }
        float[] dn = new float[T * h];
        double[] rowLoss = new double[rows];
        float[] logits = new float[Math.min(LOGIT_ROWS, rows) * V];
        for (int r0 = 0; r0 < rows; r0 += LOGIT_ROWS) {
            int m = Math.min(LOGIT_ROWS, rows - r0), base = r0;
            float[] in = java.util.Arrays.copyOfRange(n, r0 * h, (r0 + m) * h);
            float[] xq = linear(lmHead, in, m, logits);
            float[] tl = teacher == null ? null
                    : teacher.runLinear(teacherHead, java.util.Arrays.copyOfRange(teacherHidden, r0 * h, (r0 + m) * h), m);
            par.forEach(m, i -> rowLoss[base + i] = tl == null
                    ? crossEntropy(logits, i * V, V, tokens[base + i + 1], scale)
                    : kl(tl, logits, i * V, V, scale));
            float[] dIn = new float[m * h];
            linearBackward(lmHead, xq, in, logits, m, dIn);
            System.arraycopy(dIn, 0, dn, r0 * h, m * h);
        }
        rmsNormBackward(x, T, h, finalNorm, dn, dx);
        double sum = 0;
        for (double v : rowLoss) sum += v;
        return sum;
    }

    /** -log softmax(z)[target]; z becomes scale * (softmax(z) - onehot(target)). */
    private static double crossEntropy(float[] z, int off, int V, int target, double scale) {
        double lse = logSumExp(z, off, V);
        double loss = lse - z[off + target];
        for (int j = 0; j < V; j++) z[off + j] = (float) (scale * Math.exp(z[off + j] - lse));
        z[off + target] -= (float) scale;
        return loss;
    }

    /** KL(softmax(teacher) || softmax(z)); z becomes scale * (softmax(z) - softmax(teacher)). */
    private static double kl(float[] teacher, float[] z, int off, int V, double scale) {
        double lseT = logSumExp(teacher, off, V), lseS = logSumExp(z, off, V);
        double loss = 0;
        for (int j = 0; j < V; j++) {
            double lpT = teacher[off + j] - lseT, lpS = z[off + j] - lseS, pT = Math.exp(lpT);
            if (pT > 0) loss += pT * (lpT - lpS);
            z[off + j] = (float) (scale * (Math.exp(lpS) - pT));
        }
        return loss;
    }

    private static double logSumExp(float[] z, int off, int n) {
        float max = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, z[off + j]);
        double s = 0;
        for (int j = 0; j < n; j++) s += Math.exp(z[off + j] - max);
        return max + Math.log(s);
    }

    // ---------------------------------------------------------------- pieces

    /**
     * y = x W^T + b with the step's effective weight; the hook fake-quantizes a copy of x first when it quantizes this
     * linear's input. Returns the matrix the product read (x itself or the quantized copy), which dW needs.
     */
    private float[] linear(Lin lin, float[] x, int rows, float[] y) {
        float[] in = x;
        if (lin.quantizesInput) {
            in = java.util.Arrays.copyOf(x, rows * lin.tl.in());
            hook.input(lin.tl, in, rows);
        }
        lin.forward.multiply(in, rows, y, lin.tl.bias() == null ? null : lin.tl.bias().value(), par);
        return in;
    }

    /** dW += dy^T xq and db += sum dy where needed; dxAccum += dy W (through the hook's input gradient). */
    private void linearBackward(Lin lin, float[] xq, float[] xRaw, float[] dy, int rows, float[] dxAccum) {
        TrainLinear tl = lin.tl;
        int out = tl.out(), in = tl.in();
        if (lin.dEffective != null) Matmul.addTransposedProduct(dy, xq, rows, out, in, lin.dEffective, par);
        if (trains(tl.bias())) {
            float[] db = tl.bias().grad();
            par.forEach((out + 63) / 64, c -> {
                for (int j = c * 64, e = Math.min(out, j + 64); j < e; j++) {
                    float s = 0;
                    for (int t = 0; t < rows; t++) s += dy[t * out + j];
                    db[j] += s;
                }
            });
        }
        float[] dx = new float[rows * in];
        lin.backward.multiply(dy, rows, dx, null, par);
        if (lin.quantizesInput) hook.inputGradient(tl, xRaw, dx, rows);
        for (int i = 0; i < rows * in; i++) dxAccum[i] += dx[i];
    }

    /** out[r] = w * x[r] / rms(x[r]) over rows of d values, as transformers' LlamaRMSNorm and the runtime model. */
    private float[] rmsNorm(float[] x, int rows, int d, float[] w) {
        float[] out = new float[rows * d];
        float eps = (float) cfg.normEps();
        par.forEach(rows, r -> {
            int o = r * d;
            float ss = 0;
            for (int j = 0; j < d; j++) ss += x[o + j] * x[o + j];
            float inv = (float) (1.0 / Math.sqrt(ss / d + eps));
            for (int j = 0; j < d; j++) out[o + j] = w[j] * (x[o + j] * inv);
        });
        return out;
    }

    /**
     * RMSNorm's backward: dx += r (w dy) - x r^3 / d * sum_j w_j dy_j x_j per row, and w's gradient sum_r dy x r summed
     * over rows in order (per column block, so the sum does not depend on the thread count).
     */
    private void rmsNormBackward(float[] x, int rows, int d, Parameter w, float[] dy, float[] dx) {
        float eps = (float) cfg.normEps();
        float[] inv = new float[rows];
        float[] wv = w.value();
        par.forEach(rows, r -> {
            int o = r * d;
            float ss = 0;
            for (int j = 0; j < d; j++) ss += x[o + j] * x[o + j];
            float ir = (float) (1.0 / Math.sqrt(ss / d + eps));
            inv[r] = ir;
            double dot = 0;
            for (int j = 0; j < d; j++) dot += (double) wv[j] * dy[o + j] * x[o + j];
            float c = (float) (dot * ir * ir * ir / d);
            for (int j = 0; j < d; j++) dx[o + j] += ir * wv[j] * dy[o + j] - c * x[o + j];
        });
        if (trains(w)) {
            float[] g = w.grad();
            par.forEach((d + 63) / 64, c -> {
                for (int j = c * 64, e = Math.min(d, j + 64); j < e; j++) {
                    float s = 0;
                    for (int r = 0; r < rows; r++) s += dy[r * d + j] * x[r * d + j] * inv[r];
                    g[j] += s;
                }
            });
        }
    }

    private float[] ropeCos = new float[0], ropeSin = new float[0];

    /** HF's rotate_half RoPE at positions 0..T-1 (angles as the runtime model computes them); {@code inverse} for the backward. */
    private void rope(float[] x, int T, int heads, boolean inverse) {
        int d = cfg.headDim(), half = d / 2;
        if (ropeCos.length < T * half) {
            float[] cos = new float[T * half], sin = new float[T * half];
            for (int i = 0; i < half; i++) {
                float invFreq = (float) (1.0 / Math.pow(cfg.ropeTheta(), (2.0 * i) / d));
                for (int t = 0; t < T; t++) {
                    float angle = (float) t * invFreq;
                    cos[t * half + i] = (float) Math.cos(angle);
                    sin[t * half + i] = (float) Math.sin(angle);
                }
            }
            ropeCos = cos;
            ropeSin = sin;
        }
        float[] cos = ropeCos, sin = ropeSin;
        float sign = inverse ? -1f : 1f;
        par.forEach(T, t -> {
            int c = t * half;
            for (int hd = 0; hd < heads; hd++) {
                int o = (t * heads + hd) * d;
                for (int i = 0; i < half; i++) {
                    float a = x[o + i], b = x[o + i + half], s = sign * sin[c + i];
                    x[o + i] = a * cos[c + i] - b * s;
                    x[o + i + half] = b * cos[c + i] + a * s;
                }
            }
        });
    }

    /** Causal GQA attention out [T][H][d]; lse [H][T] keeps each row's log-sum-exp of scaled scores for the backward. */
    private float[] attention(float[] q, float[] k, float[] v, int T, float[] lse) {
        int H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), group = H / KV;
        int qs = H * d, ks = KV * d;
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] out = new float[T * qs];
        int block = 32, blocks = (T + block - 1) / block;
        par.forEach(H * blocks, task -> {
            int head = task / blocks, i0 = (task % blocks) * block, i1 = Math.min(T, i0 + block);
            int kvo = (head / group) * d;
            float[] s = new float[T];
            for (int i = i0; i < i1; i++) {
                int qo = i * qs + head * d;
                float max = Float.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    s[j] = dot(q, qo, k, j * ks + kvo, d) * scale;
                    max = Math.max(max, s[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    s[j] = (float) Math.exp(s[j] - max);
                    sum += s[j];
                }
                float invSum = (float) (1.0 / sum);
                for (int j = 0; j <= i; j++) axpy(s[j] * invSum, v, j * ks + kvo, out, qo, d);
                lse[head * T + i] = (float) (max + Math.log(sum));
            }
        });
        return out;
    }

    /**
     * Attention's backward, probabilities recomputed from lse: per head, dv_j += p_ij dO_i, ds_ij = p_ij (dO_i.v_j -
     * dO_i.O_i), dq_i = scale sum_j ds_ij k_j, dk_j += scale ds_ij q_i. Heads write their own key and value gradients,
     * summed per kv group in head order afterwards.
     */
    private void attentionBackward(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO, int T,
                                   float[] dq, float[] dk, float[] dv) {
        int H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), group = H / KV;
        int qs = H * d, ks = KV * d;
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] dkh = new float[H * T * d], dvh = new float[H * T * d];
        par.forEach(H, head -> {
            int kvo = (head / group) * d, ho = head * T * d;
            for (int i = 0; i < T; i++) {
                int qo = i * qs + head * d;
                float l = lse[head * T + i];
                float D = dot(dO, qo, o, qo, d);
                for (int j = 0; j <= i; j++) {
                    int ko = j * ks + kvo;
                    float p = (float) Math.exp(dot(q, qo, k, ko, d) * scale - l);
                    float ds = p * (dot(dO, qo, v, ko, d) - D) * scale;
                    axpy(p, dO, qo, dvh, ho + j * d, d);
                    axpy(ds, k, ko, dq, qo, d);
                    axpy(ds, q, qo, dkh, ho + j * d, d);
                }
            }
        });
        par.forEach(KV, g -> {
            for (int head = g * group; head < (g + 1) * group; head++) {
                int ho = head * T * d;
                for (int t = 0; t < T; t++)
                    for (int c = 0; c < d; c++) {
                        dk[t * ks + g * d + c] += dkh[ho + t * d + c];
                        dv[t * ks + g * d + c] += dvh[ho + t * d + c];
                    }
            }
        });
    }

    private static float dot(float[] a, int ao, float[] b, int bo, int n) {
        int i = 0;
        float s = 0;
        if (n >= S.length()) {
            FloatVector acc = FloatVector.zero(S);
            for (; i + S.length() <= n; i += S.length())
                acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
            for (int j = 0; j < S.length(); j++) s += acc.lane(j);   // index order: reduceLanes' differs between the JIT's intrinsic and its fallback
        }
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** y[yo..] += alpha x[xo..] over n values. */
    private static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int n) {
        int i = 0;
        FloatVector a = FloatVector.broadcast(S, alpha);
        for (; i + S.length() <= n; i += S.length())
            FloatVector.fromArray(S, x, xo + i).fma(a, FloatVector.fromArray(S, y, yo + i)).intoArray(y, yo + i);
        for (; i < n; i++) y[yo + i] += alpha * x[xo + i];
    }

    private static float sigmoid(float x) {
        return (float) (1.0 / (1.0 + Math.exp(-x)));
    }

    private static float silu(float x) {
        return x * sigmoid(x);
    }

    private float[] add(float[] x, float[] y) {
        float[] z = new float[x.length];
        for (int i = 0; i < x.length; i++) z[i] = x[i] + y[i];
        return z;
    }
}
