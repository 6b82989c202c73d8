package lowbit.model.cuda;

import lowbit.cuda.Cuda;
import lowbit.cuda.DeviceBuffer;
import lowbit.cuda.Device;
import lowbit.cuda.DeviceLinear;
import lowbit.cuda.DenseLinear;
import lowbit.quant.PackedLinear;
import lowbit.quant.activation.DeviceFakeQuant;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.ObjIntConsumer;
import jcuda.driver.CUdeviceptr;
import lowbit.model.Linear;
import lowbit.model.ModelConfig;
import lowbit.model.RotaryTables;
import lowbit.model.Transformer;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.RuntimeQuantization;
import lowbit.quant.activation.KvCacheQuantizer;
import lowbit.tensor.WeightFormat;

/**
 * A Llama-family model (Llama, SmolLM, Mistral, Qwen2 with q/k/v biases, Qwen3 with q/k norms; tied or untied lm_head;
 * grouped-query attention) resident on the GPU, running the forward pass of {@link Transformer} for one window from
 * position 0: fp32 activations, weights in fp32 or bf16 ({@link DenseLinear}) or, for the linears a weight method
 * quantized, their packed codes ({@link PackedLinear}), and the runtime's activation and KV fake quantization where the
 * CPU's hooks apply it (every block linear's input; keys and values after RoPE). Logits are made {@link #LOGIT_ROWS} rows
 * at a time, as the CPU does, so the vocabulary costs a bounded buffer.
 *
 * <p>It is a copy: weights changed in the Transformer afterwards are not seen, and hooks other than the runtime's
 * (statistics, calibration) do not run on the GPU. OPT and rotated models with online Hadamard transforms are refused
 * ({@link #checkSupported}).
 */
public final class DeviceModel implements AutoCloseable {
    /** Rows of logits made at once, as Transformer's LOGIT_ROWS: [256][vocab] floats. */
    static final int LOGIT_ROWS = 256;

    /**
     * The widths the fused dequantize-GEMM reads. Other weights (5-7 bits, BiLLM's binary residuals, which are not on one
     * grid) run dense from the model's dequantized weights: the same numbers, in the dense format.
     */
    private static final Set<Integer> PACKED_BITS = Set.of(2, 3, 4, 8);

    private record Block(DeviceBuffer attnNorm, DeviceBuffer mlpNorm, DeviceBuffer qNorm, DeviceBuffer kNorm, Linear[] linears,
                         DeviceLinear q, DeviceLinear k, DeviceLinear v, DeviceLinear o, DeviceLinear gate, DeviceLinear up,
                         DeviceLinear down) {}

    private final Cuda cuda;
    private final ModelConfig cfg;
    private final WeightFormat format;
    private final RuntimeQuantization runtime;
    private final String source;
    private final List<AutoCloseable> owned = new ArrayList<>();
    private final DeviceBuffer embeddings, finalNorm;
    private final Block[] blocks;
    private final DeviceLinear lmHead;
    private final long weightBytes;
    private final int packedLinears;
    private Workspace work;

    /** Activation buffers for windows of up to {@code rows} tokens, and the RoPE tables of those positions. */
    private record Workspace(int rows, DeviceBuffer x, DeviceBuffer n, DeviceBuffer q, DeviceBuffer k, DeviceBuffer v,
                             DeviceBuffer attended, DeviceBuffer out, DeviceBuffer gate, DeviceBuffer up, DeviceBuffer cos,
                             DeviceBuffer sin, DeviceBuffer tokens, DeviceBuffer targets, DeviceBuffer nll, DeviceBuffer logits)
            implements AutoCloseable {
        @Override
        public void close() {
            for (DeviceBuffer b : new DeviceBuffer[] {x, n, q, k, v, attended, out, gate, up, cos, sin, tokens, targets, nll, logits})
                b.close();
        }
    }

    private DeviceModel(Cuda cuda, Transformer model, QuantizedModel codes, RuntimeQuantization runtime, WeightFormat format) {
        this.cuda = cuda;
        this.cfg = model.config();
        this.format = format;
        this.runtime = runtime;
        this.source = model.source();
        try {
            float[] emb = model.tokenEmbeddings();
            embeddings = keep(format == WeightFormat.FP32 ? cuda.upload(emb, "token embeddings")
                    : cuda.allocate(2L * emb.length, "token embeddings (bf16)").upload(WeightFormat.toBf16(emb)));
            finalNorm = keep(cuda.upload(model.normWeight(0, "final"), "final norm"));
            blocks = new Block[cfg.numLayers()];
            int packed = 0;
            for (int l = 0; l < blocks.length; l++) {
                List<Linear> ls = model.blockLinears(l);
                DeviceLinear[] d = new DeviceLinear[ls.size()];
                for (int i = 0; i < d.length; i++) {
                    d[i] = linear(ls.get(i), codes);
                    if (d[i] instanceof PackedLinear) packed++;
                }
                float[] qn = model.normWeight(l, "q_norm"), kn = model.normWeight(l, "k_norm");
                blocks[l] = new Block(keep(cuda.upload(model.normWeight(l, "attn"), "block " + l + " attention norm")),
                        keep(cuda.upload(model.normWeight(l, "mlp"), "block " + l + " MLP norm")),
                        qn == null ? null : keep(cuda.upload(qn, "block " + l + " q_norm")),
                        kn == null ? null : keep(cuda.upload(kn, "block " + l + " k_norm")),
                        ls.toArray(new Linear[0]), d[0], d[1], d[2], d[3], d[4], d[5], d[6]);
            }
            packedLinears = packed;
            Linear head = null;
            for (Linear lin : model.linears().values()) if (lin.module().equals("lm_head")) head = lin;
            if (head == null) throw new IllegalArgumentException(source + ": the model has no lm_head to put on the GPU");
            lmHead = linear(head, null);  // never packed: the weight methods leave lm_head unquantized
            long bytes = 0;
            for (AutoCloseable c : owned) bytes += c instanceof DeviceBuffer b ? b.bytes() : ((DeviceLinear) c).bytes();
            weightBytes = bytes;
        } catch (RuntimeException e) {
            closeOwned();
            throw e;
        }
    }

    /**
     * Copies {@code model} to the GPU: the linears {@code codes} quantized as their packed codes, every other weight in
     * {@code format}; {@code runtime} (or {@link RuntimeQuantization#NONE}) is applied in the forward pass as the CPU's
     * hooks apply it. Refuses, in one line and before any upload, a model this path does not run and one whose weights
     * do not fit in the GPU's free memory.
     */
    public static DeviceModel upload(Cuda cuda, Transformer model, QuantizedModel codes, RuntimeQuantization runtime, WeightFormat format) {
        checkSupported(model);
        RuntimeQuantization rt = runtime == null ? RuntimeQuantization.NONE : runtime;
        checkRuntime(model, rt);
        cuda.require(bytesNeeded(model.config(), codes, format, 0), model.source() + " on the GPU (" + format.label() + " weights)");
        return new DeviceModel(cuda, model, codes, rt, format);
    }

    /**
     * Why the GPU forward pass cannot run {@code model}, as one line, or nothing: OPT (LayerNorm, learned positions and
     * ReLU/GELU have no kernels here), a rotated model's online Hadamard transforms (not kernels yet), and a head
     * dimension the attention kernel does not take (even, at most 256).
     */
    public static void checkSupported(Transformer model) {
        ModelConfig cfg = model.config();
        if (cfg.family() == ModelConfig.Family.OPT)
            throw new IllegalArgumentException(model.source() + " is OPT (" + cfg.modelType() + "): the GPU forward pass runs the Llama family"
                    + " (Llama, Mistral, SmolLM, Qwen2, Qwen3); use --device cpu");
        if (model.onlineDownHadamard() || model.onlineQueryKeyHadamard())
            throw new IllegalArgumentException(model.source() + " is rotated (QuaRot) and needs online Hadamard transforms, which the GPU"
                    + " forward pass does not run; use --device cpu");
        if (cfg.headDim() % 2 != 0 || cfg.headDim() > ForwardKernels.ATT_DMAX)
            throw new IllegalArgumentException(model.source() + ": head_dim " + cfg.headDim() + " is not an even number up to "
                    + ForwardKernels.ATT_DMAX + ", which the GPU attention kernel needs; use --device cpu");
    }

    /** Static activation scales must cover every block linear before anything is uploaded (the CPU fails mid-pass). */
    private static void checkRuntime(Transformer model, RuntimeQuantization rt) {
        if (rt.activationBits() == 0 || rt.staticScales() == null) return;
        for (int l = 0; l < model.config().numLayers(); l++)
            for (Linear lin : model.blockLinears(l))
                if (!rt.staticScales().containsKey(lin.name()))
                    throw new IllegalArgumentException("no static activation scale for " + lin.name() + " (calibrated scales cover "
                            + rt.staticScales().size() + " linears)");
    }

    /**
     * Device memory for {@code cfg} with {@code codes} (null: dense) in {@code format} and windows of {@code seqlen}
     * tokens: the weights (embeddings, lm_head, every block linear, norms, biases), the activations of one window and
     * one chunk of logits.
     */
    public static long bytesNeeded(ModelConfig cfg, QuantizedModel codes, WeightFormat format, int seqlen) {
        long h = cfg.hiddenSize(), v = cfg.vocabSize(), inter = cfg.intermediateSize(), qd = cfg.qDim(), kd = cfg.kvDim();
        long bytes = 2 * v * h * format.bytes;  // embeddings and lm_head (a tied model holds both, as the CPU does)
        bytes += 4L * h * (2L * cfg.numLayers() + 1);
        if (cfg.qkNorm()) bytes += 8L * cfg.headDim() * cfg.numLayers();
        String[] names = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                "mlp.down_proj"};
        long[][] shapes = {{qd, h}, {kd, h}, {kd, h}, {h, qd}, {inter, h}, {inter, h}, {h, inter}};
        for (int l = 0; l < cfg.numLayers(); l++)
            for (int i = 0; i < names.length; i++) {
                QuantizedTensor t = codes == null ? null : codes.weights().get("model.layers." + l + "." + names[i]);
                if (t instanceof QuantizedWeight qw && PACKED_BITS.contains(qw.config().bits())) bytes += PackedLinear.bytesNeeded(qw, false);
                else bytes += shapes[i][0] * shapes[i][1] * format.bytes;
                if (cfg.attentionBias() && i < 3) bytes += 4 * shapes[i][0];
            }
        return bytes + workspaceBytes(cfg, seqlen);
    }

    private static long workspaceBytes(ModelConfig cfg, int rows) {
        long t = rows, h = cfg.hiddenSize();
        long floats = t * (3 * h + 2L * cfg.qDim() + 2L * cfg.kvDim() + 2L * cfg.intermediateSize() + cfg.headDim());
        return 4 * floats + 12 * t + 4L * LOGIT_ROWS * cfg.vocabSize();
    }

    private DeviceLinear linear(Linear lin, QuantizedModel codes) {
        QuantizedTensor t = codes == null ? null : codes.weights().get(lin.name());
        DeviceLinear d = t instanceof QuantizedWeight qw && PACKED_BITS.contains(qw.config().bits()) ? packed(lin, qw)
                : DenseLinear.upload(cuda, lin.name(), lin.weight(), lin.outFeatures(), lin.inFeatures(), lin.bias(), format);
        owned.add(d);
        return d;
    }

    /** gpuquant's fused dequantize-GEMM layer. */
    private PackedLinear packed(Linear lin, QuantizedWeight qw) {
        return PackedLinear.upload(cuda, lin.name(), qw, lin.bias());
    }

    private DeviceBuffer keep(DeviceBuffer b) {
        owned.add(b);
        return b;
    }

    // ---------------------------------------------------------------- the forward pass

    /**
     * Next-token negative log-likelihoods of a window, as {@link Transformer#nll}: element t is -log p(window[t+1] |
     * window[0..t]), each log-sum-exp taken in double.
     */
    public double[] nll(int[] window) {
        int T = window.length;
        if (T < 2) throw new IllegalArgumentException("a window needs at least 2 tokens, got " + T);
        Workspace w = forward(window);
        int[] targets = new int[T - 1];
        System.arraycopy(window, 1, targets, 0, T - 1);
        w.targets.upload(targets);
        int V = cfg.vocabSize(), h = cfg.hiddenSize();
        for (int r0 = 0; r0 < T - 1; r0 += LOGIT_ROWS) {
            int n = Math.min(LOGIT_ROWS, T - 1 - r0);
            lmHead.apply(w.n.at(4L * r0 * h), n, w.logits.pointer());
            ForwardKernels.nll(cuda, w.logits.pointer(), w.targets.at(4L * r0), w.nll.at(8L * r0), n, V);
        }
        byte[] raw = w.nll.download(new byte[8 * (T - 1)]);
        double[] out = new double[T - 1];
        ByteBuffer.wrap(raw).order(ByteOrder.nativeOrder()).asDoubleBuffer().get(out);
        return out;
    }

    /**
     * The float32 log-softmax rows of a window, as {@link Transformer#logProbs(int[])}: row t (t in [0, T)) is log p(. |
     * window[0..t]). Rows are given in order on the calling thread, in one reused array the consumer must not keep.
     */
    public void logProbs(int[] window, ObjIntConsumer<float[]> row) {
        int T = window.length;
        if (T < 1) throw new IllegalArgumentException("a window needs at least 1 token");
        Workspace w = forward(window);
        int V = cfg.vocabSize(), h = cfg.hiddenSize();
        float[] got = null, lp = new float[V];
        for (int r0 = 0; r0 < T; r0 += LOGIT_ROWS) {
            int n = Math.min(LOGIT_ROWS, T - r0);
            lmHead.apply(w.n.at(4L * r0 * h), n, w.logits.pointer());
            ForwardKernels.logSoftmax(cuda, w.logits.pointer(), n, V);
            if (got == null || got.length != n * V) got = new float[n * V];
            w.logits.download(0, got);
            for (int i = 0; i < n; i++) {
                System.arraycopy(got, i * V, lp, 0, V);
                row.accept(lp, r0 + i);
            }
        }
    }

    /** Every row of {@link #logProbs(int[], ObjIntConsumer)} as a fresh [T][vocab] array, as {@link Transformer#logProbs(int[])}. */
    public float[][] logProbs(int[] window) {
        float[][] out = new float[window.length][];
        logProbs(window, (lp, t) -> out[t] = lp.clone());
        return out;
    }

    /** Runs the blocks and the final norm over the window; the result is in the workspace's n [T][hidden]. */
    private Workspace forward(int[] tokens) {
        int T = tokens.length, V = cfg.vocabSize();
        for (int t = 0; t < T; t++)
            if (tokens[t] < 0 || tokens[t] >= V)
                throw new IllegalArgumentException("token id " + tokens[t] + " at position " + t + " is outside the vocabulary of " + V);
        Workspace w = workspace(T);
        int h = cfg.hiddenSize(), H = cfg.numHeads(), KV = cfg.numKvHeads(), d = cfg.headDim(), I = cfg.intermediateSize();
        float eps = (float) cfg.normEps();
        w.tokens.upload(tokens);
        ForwardKernels.embed(cuda, w.x.pointer(), embeddings.pointer(), format == WeightFormat.BF16, w.tokens.pointer(), T, h);
        for (int l = 0; l < blocks.length; l++) {
            Block b = blocks[l];
            ForwardKernels.rmsNorm(cuda, w.x.pointer(), w.n.pointer(), b.attnNorm.pointer(), T, h, eps);
            run(b, 0, b.q, w.n, T, w.q);
            run(b, 1, b.k, w.n, T, w.k);
            run(b, 2, b.v, w.n, T, w.v);
            if (b.qNorm != null) {
                ForwardKernels.rmsNorm(cuda, w.q.pointer(), w.q.pointer(), b.qNorm.pointer(), T * H, d, eps);
                ForwardKernels.rmsNorm(cuda, w.k.pointer(), w.k.pointer(), b.kNorm.pointer(), T * KV, d, eps);
            }
            ForwardKernels.rope(cuda, w.q.pointer(), w.cos.pointer(), w.sin.pointer(), T, H, d);
            ForwardKernels.rope(cuda, w.k.pointer(), w.cos.pointer(), w.sin.pointer(), T, KV, d);
            keyValue(l, w.k.pointer(), w.v.pointer(), T);
            ForwardKernels.attention(cuda, w.q.pointer(), w.k.pointer(), w.v.pointer(), w.attended.pointer(), T, H, KV, d);
            run(b, 3, b.o, w.attended, T, w.out);
            ForwardKernels.addInPlace(cuda, w.x.pointer(), w.out.pointer(), (long) T * h);
            ForwardKernels.rmsNorm(cuda, w.x.pointer(), w.n.pointer(), b.mlpNorm.pointer(), T, h, eps);
            run(b, 4, b.gate, w.n, T, w.gate);
            run(b, 5, b.up, w.n, T, w.up);
            ForwardKernels.siluMul(cuda, w.gate.pointer(), w.up.pointer(), (long) T * I);
            run(b, 6, b.down, w.gate, T, w.out);
            ForwardKernels.addInPlace(cuda, w.x.pointer(), w.out.pointer(), (long) T * h);
        }
        ForwardKernels.rmsNorm(cuda, w.x.pointer(), w.n.pointer(), finalNorm.pointer(), T, h, eps);
        return w;
    }

    /** Block linear i (execution order q, k, v, o, gate, up, down) on x, its input fake-quantized first as the CPU's hook does. */
    private void run(Block b, int i, DeviceLinear lin, DeviceBuffer x, int rows, DeviceBuffer y) {
        linearInput(b.linears[i], x.pointer(), rows);
        lin.apply(x.pointer(), rows, y.pointer());
    }

    /** ActivationQuantizer's linearInput on the GPU: every block linear's input, per token or with its static scale. */
    private void linearInput(Linear lin, CUdeviceptr x, int rows) {
        int bits = runtime.activationBits();
        if (bits == 0 || lin.layer() < 0) return;
        if (runtime.staticScales() == null) DeviceFakeQuant.perToken(cuda, x, rows, lin.inFeatures(), bits);
        else DeviceFakeQuant.perTensor(cuda, x, rows, lin.inFeatures(), bits, runtime.staticScales().get(lin.name()));
    }

    /** KvCacheQuantizer's keyValue on the GPU: keys and values after RoPE (and Qwen3's k norm), on the QLLM_EVAL grid. */
    private void keyValue(int layer, CUdeviceptr k, CUdeviceptr v, int rows) {
        if (!runtime.kv().quantizes()) return;
        int group = runtime.kvGroupSize() == 0 ? cfg.headDim() : runtime.kvGroupSize();
        int kb = runtime.kv().key(layer), vb = runtime.kv().value(layer);
        if (kb != KvCacheQuantizer.FLOAT) DeviceFakeQuant.kv(cuda, k, rows, cfg.numKvHeads(), cfg.headDim(), kb, group);
        if (vb != KvCacheQuantizer.FLOAT) DeviceFakeQuant.kv(cuda, v, rows, cfg.numKvHeads(), cfg.headDim(), vb, group);
    }

    private Workspace workspace(int T) {
        if (work != null && work.rows >= T) return work;
        if (work != null) {
            work.close();
            work = null;
        }
        cuda.require(workspaceBytes(cfg, T), String.format(Locale.ROOT, "a window of %d tokens of %s on the GPU", T, source));
        int h = cfg.hiddenSize(), qd = cfg.qDim(), kd = cfg.kvDim(), I = cfg.intermediateSize();
        List<DeviceBuffer> made = new ArrayList<>();
        try {
            RotaryTables rope = RotaryTables.of(cfg, T);
            work = new Workspace(T, track(made, cuda.floats((long) T * h, "hidden states")), track(made, cuda.floats((long) T * h, "normed")),
                    track(made, cuda.floats((long) T * qd, "queries")), track(made, cuda.floats((long) T * kd, "keys")),
                    track(made, cuda.floats((long) T * kd, "values")), track(made, cuda.floats((long) T * qd, "attention output")),
                    track(made, cuda.floats((long) T * h, "sub-layer output")), track(made, cuda.floats((long) T * I, "gate")),
                    track(made, cuda.floats((long) T * I, "up")), track(made, cuda.upload(rope.cos(), "RoPE cos")),
                    track(made, cuda.upload(rope.sin(), "RoPE sin")), track(made, cuda.allocate(4L * T, "tokens")),
                    track(made, cuda.allocate(4L * T, "targets")), track(made, cuda.allocate(8L * T, "NLL")),
                    track(made, cuda.floats((long) LOGIT_ROWS * cfg.vocabSize(), "logits")));
            return work;
        } catch (RuntimeException e) {
            for (DeviceBuffer b : made) b.close();
            throw e;
        }
    }

    private static DeviceBuffer track(List<DeviceBuffer> made, DeviceBuffer b) {
        made.add(b);
        return b;
    }

    /** Device memory held by the weights (the window's workspace not included). */
    public long bytes() {
        return weightBytes;
    }

    public ModelConfig config() {
        return cfg;
    }

    /** One line for logs and provenance: the model, the weights' form and size, the GPU. */
    public String describe() {
        return String.format(Locale.ROOT, "%s on %s: %s weights%s, %.2f GiB", source, cuda.describe(), format.label(),
                packedLinears == 0 ? "" : ", " + packedLinears + " linears as packed codes", weightBytes / (double) (1L << 30));
    }

    @Override
    public void close() {
        if (work != null) {
            work.close();
            work = null;
        }
        closeOwned();
    }

    private void closeOwned() {
        for (AutoCloseable c : owned) {
            try {
                c.close();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        }
        owned.clear();
    }
}
