package lowbit.train;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import lowbit.model.Linear;
import lowbit.model.ModelConfig;
import lowbit.model.RotaryTables;
import lowbit.model.Transformer;
import lowbit.tensor.Matmul;
import lowbit.tensor.PackedMatrix;
import lowbit.tensor.Parallel;
import lowbit.tensor.RmsNorm;
import lowbit.tensor.VectorMath;

/**
 * A trainable float32 copy of a Llama-family runtime model (Llama, SmolLM, Mistral, Qwen2 with q/k/v biases, Qwen3 with
 * q/k norms; tied or untied lm_head) with a backward pass for every parameter.
 *
 * <p>Memory: a window keeps every block's activations when they fit {@link #KEEP_BYTES} (1 GiB) and a quarter of the heap (seqlen 512 on the 135M
 * model: about 0.5 GB), and otherwise only each block's input, recomputing the block in its backward (activation
 * checkpointing: one more forward pass, so a 2048-token window fits in a few hundred MB). Attention never holds
 * [T][T]: the backward recomputes each row's probabilities from the row's log-sum-exp. Logits and their gradient go
 * through lm_head {@link #LOGIT_ROWS} rows at a time. Buffers, the packed effective weights and weight-gradient buffers
 * stay allocated between windows and steps and are reused (see {@link Arena}).
 *
 * <p>Every product runs on {@link Parallel} with each output element computed whole by one task, and every sum over
 * rows (norm and bias gradients, keys and values shared by a group of heads) in a fixed order, so gradients are
 * bitwise the same on any thread count.
 */
public final class TrainableModel implements AutoCloseable {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int LOGIT_ROWS = 128;
    /**
     * Outputs of a linear per block of its input-gradient product dX = dY W: lm_head's W^T is 576 x 49152, and one
     * panel of it (12 MB) streamed from memory for every six rows of dY cost twice the product's arithmetic; a block
     * of 2048 keeps the panel in L2. Block linears have at most a few thousand outputs and run in one block.
     */
    private static final int K_BLOCK = 2048;
    /** Activations kept per window before switching to recomputation per block. */
    private static final long KEEP_BYTES = 1L << 30;
    private long keepBytes = KEEP_BYTES;
    private int kBlock = K_BLOCK;

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
        PackedMatrix forward;    // kept between steps, repacked in place
        /** W^T packed in blocks of at most {@link #K_BLOCK} outputs (input-gradient terms), kept between steps. */
        PackedMatrix[] backward = new PackedMatrix[0];
        float[] dEffective;      // null when no weight gradient is needed this step
        float[] dBuffer;         // dEffective's storage when it is not the weight's own gradient, kept between steps
        boolean quantizesInput;

        Lin(TrainLinear tl) {
            this.tl = tl;
        }
    }

    private record Layer(Parameter attnNorm, Lin q, Lin k, Lin v, Lin o, Parameter qNorm, Parameter kNorm,
                         Parameter mlpNorm, Lin gate, Lin up, Lin down) {}

    /**
     * Float buffers handed out in the same order for every window of the same length, so after the first window they are
     * reused instead of allocated: a step's activations and temporaries are a few GB of short-lived arrays otherwise,
     * and the collector copying them cost more than the copy of a weight. {@link #mark}/{@link #release} free what a
     * block used, so the recomputing path still holds one block at a time. Used from the calling thread only.
     */
    private static final class Arena {
        private final ArrayList<float[]> slots = new ArrayList<>();
        private int next;

        /** n floats, contents undefined (for buffers written whole). */
        float[] take(int n) {
            float[] b;
            if (next < slots.size() && slots.get(next).length == n) b = slots.get(next);
            else {
                b = new float[n];
                if (next < slots.size()) slots.set(next, b);
                else slots.add(b);
            }
            next++;
            return b;
        }

        float[] zeros(int n) {
            float[] b = take(n);
            java.util.Arrays.fill(b, 0f);
            return b;
        }

        float[] copy(float[] src, int from, int to) {
            float[] b = take(to - from);
            System.arraycopy(src, from, b, 0, to - from);
            return b;
        }

        int mark() {
            return next;
        }

        /** Everything handed out since {@code mark} may be handed out again. */
        void release(int mark) {
            next = mark;
        }
    }

    private final Arena arena = new Arena();

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

    /** The activation budget per window above which blocks are recomputed in the backward (tests force recomputation with 0). */
    void keepActivationsUpTo(long bytes) {
        keepBytes = bytes;
    }

    /** The outputs per block of input-gradient products (tests make the tiny models' lm_head run in several). */
    void blockInputGradientsBy(int outputs) {
        kBlock = outputs;
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
        arena.release(0);
        int T = window.length, V = cfg.vocabSize(), h = cfg.hiddenSize();
        float[] x = embed(window);
        for (int l = 0; l < layers.length; l++) x = blockOutput(layers[l], x, T);
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
            lin.forward = PackedMatrix.pack(eff, tl.out(), tl.in(), lin.forward, par);
            lin.quantizesInput = hook != null && hook.quantizesInput(tl);
            lin.dEffective = null;
            if (!backward) continue;
            int blocks = (tl.out() + kBlock - 1) / kBlock;
            if (lin.backward.length != blocks) lin.backward = new PackedMatrix[blocks];
            for (int kb = 0; kb < blocks; kb++) {
                int o0 = kb * kBlock, o1 = Math.min(tl.out(), o0 + kBlock);
                lin.backward[kb] = PackedMatrix.packTransposed(eff, o0 * tl.in(), o1 - o0, tl.in(), lin.backward[kb], par);
            }
            boolean own = trains(tl.weight());
            boolean hooked = false;
            for (Parameter p : hookParams) hooked |= p.name().startsWith(tl.name() + ".");
            if (own && hook == null && lin != lmHead) lin.dEffective = tl.weight().grad();
            else if (own || hooked) {
                if (lin.dBuffer == null) lin.dBuffer = new float[w.length];
                else java.util.Arrays.fill(lin.dBuffer, 0f);
                lin.dEffective = lin.dBuffer;
            }
        }
    }

    private void release() {
        for (Lin lin : lins) lin.dEffective = null;
    }

    /** Forward and backward of one window; returns its summed loss, gradients scaled by {@code scale} (1 / scored). */
    private double window(int[] tokens, Loss loss, double scale) {
        int T = tokens.length, h = cfg.hiddenSize(), L = layers.length;
        boolean keep = (long) T * L * actsPerToken() * 4 <= Math.min(keepBytes, Runtime.getRuntime().maxMemory() / 4);
        arena.release(0);
        Acts[] acts = new Acts[L];
        float[][] inputs = new float[L][];
        float[] x = embed(tokens);
        for (int l = 0; l < L; l++) {
            inputs[l] = x;
            if (keep) {
                acts[l] = block(layers[l], x, T);
                x = acts[l].x2;
            } else x = blockOutput(layers[l], x, T);
        }
        float[] dx = arena.zeros(T * h);
        double sum = head(tokens, x, loss, scale, dx);
        for (int l = L - 1; l >= 0; l--) {
            int mark = arena.mark();
            Acts a = keep ? acts[l] : block(layers[l], inputs[l], T);
            acts[l] = null;
            System.arraycopy(blockBackward(layers[l], a, dx, T), 0, dx, 0, T * h);
            arena.release(mark);
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
        float[] x = arena.take(tokens.length * h);
        for (int t = 0; t < tokens.length; t++) System.arraycopy(embed.value(), tokens[t] * h, x, t * h, h);
        return x;
    }

    /** One block's output from x, its activations freed: a buffer taken before the block holds the output. */
    private float[] blockOutput(Layer b, float[] x, int T) {
        float[] out = arena.take(T * cfg.hiddenSize());
        int mark = arena.mark();
        System.arraycopy(block(b, x, T).x2, 0, out, 0, out.length);
        arena.release(mark);
        return out;
    }

    /** One block forward from x (not modified), with everything its backward needs. */
    private Acts block(Layer b, float[] x, int T) {
        int h = cfg.hiddenSize(), H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), I = cfg.intermediateSize();
        Acts a = new Acts();
        a.x0 = x;
        a.n1 = rmsNorm(x, T, h, b.attnNorm.value());
        float[] q = arena.take(T * H * d), k = arena.take(T * KV * d), v = arena.take(T * KV * d);
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
        a.lse = arena.take(H * T);
        a.att = attention(q, k, v, T, a.lse);
        float[] o = arena.take(T * h);
        a.xqO = linear(b.o, a.att, T, o);
        a.x1 = add(x, o);
        a.n2 = rmsNorm(a.x1, T, h, b.mlpNorm.value());
        a.g = arena.take(T * I);
        a.u = arena.take(T * I);
        a.xqGate = linear(b.gate, a.n2, T, a.g);
        a.xqUp = linear(b.up, a.n2, T, a.u);
        a.a = arena.take(T * I);
        float[] g = a.g, u = a.u, act = a.a;
        par.forEach(T, t -> {
            for (int j = t * I, e = j + I; j < e; j++) act[j] = silu(g[j]) * u[j];
        });
        float[] m = arena.take(T * h);
        a.xqDown = linear(b.down, act, T, m);
        a.x2 = add(a.x1, m);
        return a;
    }

    /** The gradient at block input x0 from the gradient dx2 at its output; adds the block's parameter gradients. */
    private float[] blockBackward(Layer b, Acts a, float[] dx2, int T) {
        int h = cfg.hiddenSize(), H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), I = cfg.intermediateSize();
        // MLP
        float[] dAct = arena.zeros(T * I);
        linearBackward(b.down, a.xqDown, a.a, dx2, T, dAct);
        float[] dg = arena.take(T * I), du = arena.take(T * I);
        float[] g = a.g, u = a.u;
        par.forEach(T, t -> {
            for (int j = t * I, e = j + I; j < e; j++) {
                float s = sigmoid(g[j]), si = g[j] * s;
                du[j] = dAct[j] * si;
                dg[j] = dAct[j] * u[j] * (s + si * (1 - s));
            }
        });
        float[] dn2 = arena.zeros(T * h);
        linearBackward(b.gate, a.xqGate, a.n2, dg, T, dn2);
        linearBackward(b.up, a.xqUp, a.n2, du, T, dn2);
        float[] dx1 = arena.copy(dx2, 0, T * h);
        rmsNormBackward(a.x1, T, h, b.mlpNorm, dn2, dx1);
        // attention
        float[] dAtt = arena.zeros(T * H * d);
        linearBackward(b.o, a.xqO, a.att, dx1, T, dAtt);
        float[] dq = arena.take(T * H * d), dk = arena.zeros(T * KV * d), dv = arena.zeros(T * KV * d);
        attentionBackward(a.q, a.k, a.v, a.att, a.lse, dAtt, T, dq, dk, dv);
        rope(dq, T, H, true);
        rope(dk, T, KV, true);
        if (b.qNorm != null) {
            float[] dqRaw = arena.zeros(dq.length), dkRaw = arena.zeros(dk.length);
            rmsNormBackward(a.qRaw, T * H, d, b.qNorm, dq, dqRaw);
            rmsNormBackward(a.kRaw, T * KV, d, b.kNorm, dk, dkRaw);
            dq = dqRaw;
            dk = dkRaw;
        }
        float[] dn1 = arena.zeros(T * h);
        linearBackward(b.q, a.xqQ, a.n1, dq, T, dn1);
        linearBackward(b.k, a.xqK, a.n1, dk, T, dn1);
        linearBackward(b.v, a.xqV, a.n1, dv, T, dn1);
        float[] dx0 = dx1;
        rmsNormBackward(a.x0, T, h, b.attnNorm, dn1, dx0);
        return dx0;
    }

    /**
     * Final norm, lm_head and the loss on the last block's output x, LOGIT_ROWS rows at a time; adds the loss's gradient
     * at x into dx, and lm_head's and the final norm's gradients. Returns the summed loss of the window's scored positions.
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
        float[] dn = arena.zeros(T * h);
        double[] rowLoss = new double[rows];
        float[] logits = arena.take(Math.min(LOGIT_ROWS, rows) * V);
        for (int r0 = 0; r0 < rows; r0 += LOGIT_ROWS) {
            int m = Math.min(LOGIT_ROWS, rows - r0), base = r0;
            int mark = arena.mark();
            float[] in = arena.copy(n, r0 * h, (r0 + m) * h);
            float[] xq = linear(lmHead, in, m, logits);
            float[] tl = teacher == null ? null
                    : teacher.runLinear(teacherHead, java.util.Arrays.copyOfRange(teacherHidden, r0 * h, (r0 + m) * h), m);
            par.forEach(m, i -> rowLoss[base + i] = tl == null
                    ? crossEntropy(logits, i * V, V, tokens[base + i + 1], scale)
                    : kl(tl, logits, i * V, V, scale));
            float[] dIn = arena.zeros(m * h);
            linearBackward(lmHead, xq, in, logits, m, dIn);
            System.arraycopy(dIn, 0, dn, r0 * h, m * h);
            arena.release(mark);
        }
        rmsNormBackward(x, T, h, finalNorm, dn, dx);
        double sum = 0;
        for (double v : rowLoss) sum += v;
        return sum;
    }

    /** -log softmax(z)[target]; z becomes scale * (softmax(z) - onehot(target)). */
    private static double crossEntropy(float[] z, int off, int V, int target, double scale) {
        float max = max(z, off, V), picked = z[off + target];
        float sum = VectorMath.exp(z, off, z, off, V, 1f, max);
        float f = (float) (scale / sum);
        for (int j = 0; j < V; j++) z[off + j] *= f;
        z[off + target] -= (float) scale;
        return max + Math.log(sum) - picked;
    }

    /** KL(softmax(teacher) || softmax(z)); z becomes scale * (softmax(z) - softmax(teacher)). */
    private static double kl(float[] teacher, float[] z, int off, int V, double scale) {
        float maxT = max(teacher, off, V), maxS = max(z, off, V);
        float lseT = (float) (maxT + Math.log(VectorMath.exp(teacher, off, null, 0, V, 1f, maxT)));
        float lseS = (float) (maxS + Math.log(VectorMath.exp(z, off, null, 0, V, 1f, maxS)));
        float[] pT = lowbit.tensor.Scratch.floats(V);
        VectorMath.exp(teacher, off, pT, 0, V, 1f, lseT);
        // sum_j pT (log pT - log pS) = sum_j pT (t_j - z_j) - lseT + lseS, as the probabilities sum to 1
        double cross = 0;
        for (int j = 0; j < V; j++) cross += (double) pT[j] * (teacher[off + j] - z[off + j]);
        VectorMath.exp(z, off, z, off, V, 1f, lseS);
        float f = (float) scale;
        for (int j = 0; j < V; j++) z[off + j] = f * (z[off + j] - pT[j]);
        return cross - lseT + lseS;
    }

    private static float max(float[] z, int off, int n) {
        float m = Float.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) m = Math.max(m, z[off + j]);
        return m;
    }

    // ---------------------------------------------------------------- pieces

    /**
     * y = x W^T + b with the step's effective weight; the hook fake-quantizes a copy of x first when it quantizes this
     * linear's input. Returns the matrix the product read (x itself or the quantized copy), which dW needs.
     */
    private float[] linear(Lin lin, float[] x, int rows, float[] y) {
        float[] in = x;
        if (lin.quantizesInput) {
            in = arena.copy(x, 0, rows * lin.tl.in());
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
        float[] dx = arena.take(rows * in);
        inputGradient(lin, dy, rows, dx);
        if (lin.quantizesInput) hook.inputGradient(tl, xRaw, dx, rows);
        for (int i = 0; i < rows * in; i++) dxAccum[i] += dx[i];
    }

    /**
     * dx = dy W, overwritten, block by block of W's outputs (see {@link #K_BLOCK}): the first block's product, then each
     * further block's added in order, so the sums do not depend on the thread count.
     */
    private void inputGradient(Lin lin, float[] dy, int rows, float[] dx) {
        int out = lin.tl.out(), in = lin.tl.in();
        if (lin.backward.length == 1) {
            lin.backward[0].multiply(dy, rows, dx, null, par);
            return;
        }
        int mark = arena.mark();
        float[] dyBlock = arena.take(rows * kBlock), part = arena.take(rows * in);
        for (int kb = 0; kb < lin.backward.length; kb++) {
            int o0 = kb * kBlock, width = Math.min(out, o0 + kBlock) - o0;
            par.forEach(rows, r -> System.arraycopy(dy, r * out + o0, dyBlock, r * width, width));
            lin.backward[kb].multiply(dyBlock, rows, kb == 0 ? dx : part, null, par);
            if (kb > 0) par.forEach(rows, r -> {
                for (int i = r * in, e = i + in; i < e; i++) dx[i] += part[i];
            });
        }
        arena.release(mark);
    }

    /** out[r] = w * x[r] / rms(x[r]) over rows of d values, as transformers' LlamaRMSNorm and the runtime model. */
    private float[] rmsNorm(float[] x, int rows, int d, float[] w) {
        float[] out = arena.take(rows * d);
        RmsNorm.rows(x, out, rows, d, w, (float) cfg.normEps(), par);
        return out;
    }

    /**
     * RMSNorm's backward: dx += r (w dy) - x r^3 / d * sum_j w_j dy_j x_j per row, and w's gradient sum_r dy x r summed
     * over rows in order (per column block, so the sum does not depend on the thread count).
     */
    private void rmsNormBackward(float[] x, int rows, int d, Parameter w, float[] dy, float[] dx) {
        float eps = (float) cfg.normEps();
        float[] inv = arena.take(rows);
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

    private RotaryTables rotary;

    /** HF's rotate_half RoPE at positions 0..T-1 (angles as the runtime model computes them); {@code inverse} for the backward. */
    private void rope(float[] x, int T, int heads, boolean inverse) {
        int d = cfg.headDim(), half = d / 2;
        if (rotary == null || rotary.positions() < T) rotary = RotaryTables.of(cfg, T);
        float[] cos = rotary.cos(), sin = rotary.sin();
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

    /** Keys or values per kv head transposed to [KV][d][T], so products over positions run along contiguous memory. */
    private float[] transposeHeads(float[] k, int T) {
        int KV = cfg.numKvHeads(), d = cfg.headDim(), ks = KV * d;
        float[] t = arena.take(KV * d * T);
        par.forEach(KV, g -> {
            for (int j = 0; j < T; j++)
                for (int c = 0; c < d; c++) t[(g * d + c) * T + j] = k[j * ks + g * d + c];
        });
        return t;
    }

    /** Causal GQA attention out [T][H][d]; lse [H][T] keeps each row's log-sum-exp of scaled scores for the backward. */
    private float[] attention(float[] q, float[] k, float[] v, int T, float[] lse) {
        int H = cfg.numHeads(), d = cfg.headDim(), group = H / cfg.numKvHeads();
        int qs = H * d;
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] kT = transposeHeads(k, T), vT = transposeHeads(v, T);
        float[] out = arena.take(T * qs);
        int block = 32, blocks = (T + block - 1) / block;
        par.forEach(H * blocks, task -> {
            int head = task / blocks, b0 = (task % blocks) * block, b1 = Math.min(T, b0 + block);
            int kv = (head / group) * d * T;
            float[] s = new float[4 * T], qb = new float[4 * d], ob = new float[4 * d], lanes = new float[S.length()];
            for (int i0 = b0; i0 < b1; i0 += 4) {
                int rows = Math.min(4, b1 - i0), n = i0 + rows;
                java.util.Arrays.fill(qb, 0f);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < d; c++) qb[r * d + c] = scale * q[(i0 + r) * qs + head * d + c];
                scores4(qb, kT, kv, T, d, s, n);
                float[] inv = new float[4];
                for (int r = 0; r < 4; r++) {
                    int m = r < rows ? i0 + r + 1 : 0;
                    if (m > 0) {
                        float max = max(s, r * T, m);
                        float sum = VectorMath.exp(s, r * T, s, r * T, m, 1f, max);
                        inv[r] = 1f / sum;
                        lse[head * T + i0 + r] = (float) (max + Math.log(sum));
                    }
                    java.util.Arrays.fill(s, r * T + m, r * T + n, 0f);
                }
                for (int c = 0; c < d; c++) dot4(s, T, vT, kv + c * T, n, ob, c, d, lanes);
                for (int r = 0; r < rows; r++)
                    for (int c = 0; c < d; c++) out[(i0 + r) * qs + head * d + c] = inv[r] * ob[r * d + c];
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
        float[] kT = transposeHeads(k, T), vT = transposeHeads(v, T);
        float[] dkT = arena.zeros(H * d * T), dvT = arena.zeros(H * d * T);
        // four query rows at a time, so each load of a key, value or gradient row serves four rows
        par.forEach(H, head -> {
            int kv = (head / group) * d * T, ho = head * d * T;
            float[] s = new float[4 * T], p = new float[4 * T], lanes = new float[S.length()];
            float[] qb = new float[4 * d], ob = new float[4 * d], dq4 = new float[4 * d];
            float[] D = new float[4];
            for (int i0 = 0; i0 < T; i0 += 4) {
                int rows = Math.min(4, T - i0), n = i0 + rows;
                java.util.Arrays.fill(qb, 0f);
                java.util.Arrays.fill(ob, 0f);
                for (int r = 0; r < rows; r++) {
                    int qo = (i0 + r) * qs + head * d;
                    for (int c = 0; c < d; c++) {
                        qb[r * d + c] = scale * q[qo + c];
                        ob[r * d + c] = dO[qo + c];
                    }
                    D[r] = dot(dO, qo, o, qo, d, lanes);
                }
                scores4(qb, kT, kv, T, d, s, n);
                for (int r = 0; r < 4; r++) {
                    int m = r < rows ? i0 + r + 1 : 0;
                    if (m > 0) VectorMath.exp(s, r * T, p, r * T, m, 1f, lse[head * T + i0 + r]);
                    java.util.Arrays.fill(p, r * T + m, r * T + n, 0f);
                }
                scores4(ob, vT, kv, T, d, s, n);
                for (int r = 0; r < 4; r++) {
                    float Dr = r < rows ? D[r] : 0f;
                    for (int j = r * T, e = j + n; j < e; j++) s[j] = p[j] * (s[j] - Dr) * scale;
                }
                // s now holds ds: dq = ds k, dk += ds^T q, dv += p^T dO
                for (int c = 0; c < d; c++) {
                    dot4(s, T, kT, kv + c * T, n, dq4, c, d, lanes);
                    axpy4(qb, c, d, 1f / scale, s, T, dkT, ho + c * T, n);
                    axpy4(ob, c, d, 1f, p, T, dvT, ho + c * T, n);
                }
                for (int r = 0; r < rows; r++) System.arraycopy(dq4, r * d, dq, (i0 + r) * qs + head * d, d);
            }
        });
        par.forEach(KV, g -> {
            for (int head = g * group; head < (g + 1) * group; head++) {
                int ho = head * d * T;
                for (int c = 0; c < d; c++)
                    for (int t = 0; t < T; t++) {
                        dk[t * ks + g * d + c] += dkT[ho + c * T + t];
                        dv[t * ks + g * d + c] += dvT[ho + c * T + t];
                    }
            }
        });
    }

    /** s[r T + j] = sum_c qb[r d + c] kT[kOff + c T + j] for four rows r and j < n: query rows against transposed keys. */
    private static void scores4(float[] qb, float[] kT, int kOff, int T, int d, float[] s, int n) {
        int L = S.length(), j = 0;
        for (; j + L <= n; j += L) {
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int c = 0; c < d; c++) {
                FloatVector k = FloatVector.fromArray(S, kT, kOff + c * T + j);
                a0 = k.fma(FloatVector.broadcast(S, qb[c]), a0);
                a1 = k.fma(FloatVector.broadcast(S, qb[d + c]), a1);
                a2 = k.fma(FloatVector.broadcast(S, qb[2 * d + c]), a2);
                a3 = k.fma(FloatVector.broadcast(S, qb[3 * d + c]), a3);
            }
            a0.intoArray(s, j);
            a1.intoArray(s, T + j);
            a2.intoArray(s, 2 * T + j);
            a3.intoArray(s, 3 * T + j);
        }
        for (; j < n; j++)
            for (int r = 0; r < 4; r++) {
                float acc = 0;
                for (int c = 0; c < d; c++) acc = Math.fma(kT[kOff + c * T + j], qb[r * d + c], acc);
                s[r * T + j] = acc;
            }
    }

    /** out[r d + c] = sum_{j < n} a[r T + j] b[bo + j] for four rows r, lanes summed in index order (see {@link #dot}). */
    private static void dot4(float[] a, int T, float[] b, int bo, int n, float[] out, int c, int d, float[] lanes) {
        int L = S.length(), j = 0;
        FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
        for (; j + L <= n; j += L) {
            FloatVector x = FloatVector.fromArray(S, b, bo + j);
            a0 = FloatVector.fromArray(S, a, j).fma(x, a0);
            a1 = FloatVector.fromArray(S, a, T + j).fma(x, a1);
            a2 = FloatVector.fromArray(S, a, 2 * T + j).fma(x, a2);
            a3 = FloatVector.fromArray(S, a, 3 * T + j).fma(x, a3);
        }
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        a0.intoArray(lanes, 0);
        for (int l = 0; l < L; l++) s0 += lanes[l];
        a1.intoArray(lanes, 0);
        for (int l = 0; l < L; l++) s1 += lanes[l];
        a2.intoArray(lanes, 0);
        for (int l = 0; l < L; l++) s2 += lanes[l];
        a3.intoArray(lanes, 0);
        for (int l = 0; l < L; l++) s3 += lanes[l];
        for (; j < n; j++) {
            s0 += a[j] * b[bo + j];
            s1 += a[T + j] * b[bo + j];
            s2 += a[2 * T + j] * b[bo + j];
            s3 += a[3 * T + j] * b[bo + j];
        }
        out[c] = s0;
        out[d + c] = s1;
        out[2 * d + c] = s2;
        out[3 * d + c] = s3;
    }

    /** y[yo + j] += f sum_r w[r d + c] x[r T + j] for j < n: a rank-4 update of one transposed key or value row. */
    private static void axpy4(float[] w, int c, int d, float f, float[] x, int T, float[] y, int yo, int n) {
        int L = S.length(), j = 0;
        float w0 = f * w[c], w1 = f * w[d + c], w2 = f * w[2 * d + c], w3 = f * w[3 * d + c];
        FloatVector b0 = FloatVector.broadcast(S, w0), b1 = FloatVector.broadcast(S, w1), b2 = FloatVector.broadcast(S, w2),
                b3 = FloatVector.broadcast(S, w3);
        for (; j + L <= n; j += L) {
            FloatVector acc = FloatVector.fromArray(S, y, yo + j);
            acc = FloatVector.fromArray(S, x, j).fma(b0, acc);
            acc = FloatVector.fromArray(S, x, T + j).fma(b1, acc);
            acc = FloatVector.fromArray(S, x, 2 * T + j).fma(b2, acc);
            acc = FloatVector.fromArray(S, x, 3 * T + j).fma(b3, acc);
            acc.intoArray(y, yo + j);
        }
        for (; j < n; j++) {
            float acc = y[yo + j];
            acc = Math.fma(x[j], w0, acc);
            acc = Math.fma(x[T + j], w1, acc);
            acc = Math.fma(x[2 * T + j], w2, acc);
            acc = Math.fma(x[3 * T + j], w3, acc);
            y[yo + j] = acc;
        }
    }

    /**
     * sum_i a[ao + i] b[bo + i]. The lanes are summed through {@code lanes} in index order: reduceLanes adds in another
     * order once the JIT compiles the caller, and results must not depend on when that happens.
     */
    private static float dot(float[] a, int ao, float[] b, int bo, int n, float[] lanes) {
        int i = 0, L = S.length();
        float s = 0;
        if (n >= L) {
            FloatVector acc = FloatVector.zero(S);
            for (; i + L <= n; i += L)
                acc = FloatVector.fromArray(S, a, ao + i).fma(FloatVector.fromArray(S, b, bo + i), acc);
            acc.intoArray(lanes, 0);
            for (int l = 0; l < L; l++) s += lanes[l];
        }
        for (; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    /** With VectorMath's exp, which rounds the same in every JIT tier (Math.exp need not). */
    private static float sigmoid(float x) {
        return 1f / (1f + VectorMath.exp(-x));
    }

    private static float silu(float x) {
        return x * sigmoid(x);
    }

    private float[] add(float[] x, float[] y) {
        float[] z = arena.take(x.length);
        for (int i = 0; i < x.length; i++) z[i] = x[i] + y[i];
        return z;
    }
}
