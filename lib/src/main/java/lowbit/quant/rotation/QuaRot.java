package lowbit.quant.rotation;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.model.Linear;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.tensor.Hadamard;
import lowbit.tensor.Parallel;

/**
 * QuaRot's rotation of a Llama-family model (reference: spcl/QuaRot, fake_quant/rotation_utils.py and
 * hadamard_utils.py), in place. The rotated float model computes the same function; its linear inputs and its
 * keys have their outlier channels spread over all channels, which is what lets 4-bit activations and KV cache work.
 *
 * <ol>
 *   <li>Every RMSNorm's scale is folded into the linears that read it (q/k/v, gate/up, the final norm into
 *       lm_head), and the norms become plain (weight 1): only a plain RMSNorm commutes with a rotation.</li>
 *   <li>Tied embeddings are untied: lm_head gets its own rotated copy.</li>
 *   <li>The residual stream x becomes x Q, Q = diag(s) H a random Hadamard matrix of order hidden_size (random
 *       signs s from a seeded generator, as QuaRot's random_hadamard_matrix). In our row-major [out][in] layout a
 *       linear that reads the stream gets W Q (each row times Q), the embeddings E Q (each row), and a linear
 *       that writes it (o_proj, down_proj) Q^T W (each column times Q), its bias b Q.</li>
 *   <li>Per head, v_proj's outputs get the Hadamard of order head_dim (W_v becomes H^T W_v, its bias b H) and
 *       o_proj's inputs the same (W_o H): attention mixes whole head vectors, so the rotation passes through it
 *       exactly, offline. QuaRot also rotates o_proj's input across heads online; that needs a Hadamard of the
 *       number of heads (9 on the default model has none), and is left out.</li>
 *   <li>down_proj's input: the Hadamard of order intermediate_size is folded into its weight (W H) and applied
 *       online to its input in the forward pass ({@link Transformer#setOnlineHadamards}).</li>
 *   <li>When the KV cache is quantized: an online Hadamard of order head_dim on every query and key head after
 *       RoPE (and Qwen3's q/k norm), which leaves q.k unchanged.</li>
 * </ol>
 * Each weight is computed in double from its float32 original and rounded to float once. QuaRot also centres the
 * embedding rows (E - mean), which is exact only in front of a LayerNorm; on RMSNorm models it changes the function,
 * so it is not done here. OPT (LayerNorm with mean subtraction, post-norm variants) is refused.
 */
public final class QuaRot {
    public static final String METHOD = "quarot";

    private QuaRot() {}

    /**
     * What a rotation did, as provenance records it and as a quantized model directory stores it ("rotation"), so
     * that loading it switches the same online transforms back on.
     */
    public record Applied(long seed, int hiddenSize, int headDim, int intermediateSize, boolean onlineQueriesKeys,
                          double seconds) {
        public Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("method", METHOD);
            m.put("seed", seed);
            m.put("residual_hadamard", hiddenSize);
            m.put("head_hadamard", headDim);
            m.put("down_input_hadamard", intermediateSize);
            List<String> offline = List.of("norms folded into q/k/v, gate/up, lm_head", "embeddings untied",
                    "residual stream x Q (Q = diag(signs) H_" + hiddenSize + ")", "v_proj outputs / o_proj inputs per head H_" + headDim,
                    "down_proj weight H_" + intermediateSize);
            m.put("offline", offline);
            List<String> online = new ArrayList<>(List.of("down_proj input H_" + intermediateSize));
            if (onlineQueriesKeys) online.add("queries and keys per head after RoPE H_" + headDim);
            m.put("online", online);
            m.put("online_queries_keys", onlineQueriesKeys);
            m.put("seconds", seconds);
            return m;
        }

        /**
         * Switches the online transforms back on for a model whose weights were rotated and stored; a missing or null
         * description means an unrotated model and changes nothing.
         */
        public static void restore(Transformer model, JsonNode rotation) {
            if (rotation == null || rotation.isMissingNode() || rotation.isNull()) return;
            if (!METHOD.equals(rotation.path("method").asText()))
                throw new IllegalArgumentException("rotation method '" + rotation.path("method").asText() + "' is not " + METHOD);
            ModelConfig c = model.config();
            if (rotation.path("down_input_hadamard").asInt() != c.intermediateSize() || rotation.path("head_hadamard").asInt() != c.headDim())
                throw new IllegalArgumentException("rotation was made for intermediate_size " + rotation.path("down_input_hadamard")
                        + " and head_dim " + rotation.path("head_hadamard") + ", the model has " + c.intermediateSize() + " and " + c.headDim());
            model.setOnlineHadamards(true, rotation.path("online_queries_keys").asBoolean());
        }
    }

    /**
     * Refuses, before any work, a model the rotation cannot keep exact: OPT (LayerNorm), and a size with no Hadamard
     * construction, naming the dimension and the layers that need it.
     */
    public static void check(ModelConfig c) {
        if (c.family() != ModelConfig.Family.LLAMA)
            throw new IllegalArgumentException("quarot rotates RMSNorm models only (the Llama family: Llama, Mistral, SmolLM, Qwen2, Qwen3); "
                    + c.modelType() + " uses LayerNorm, whose mean subtraction and bias QuaRot's folding does not keep exact here");
        Hadamard.of(c.hiddenSize(), "quarot: hidden_size " + c.hiddenSize() + " (the residual stream: embeddings, q/k/v/o_proj, "
                + "gate/up/down_proj, lm_head)");
        Hadamard.of(c.headDim(), "quarot: head_dim " + c.headDim() + " (v_proj outputs and o_proj inputs per head, queries and keys)");
        Hadamard.of(c.intermediateSize(), "quarot: intermediate_size " + c.intermediateSize() + " (down_proj input)");
    }

    /** Random +-1 signs of QuaRot's random Hadamard matrix, one per channel, from {@code seed}. */
    public static double[] signs(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double[] s = new double[n];
        for (int i = 0; i < n; i++) s[i] = r.nextBoolean() ? 1 : -1;
        return s;
    }

    /** Rotates {@code model} in place with the signs of {@code seed}; {@code queriesKeys}: the online q/k Hadamard too. */
    public static Applied rotate(Transformer model, long seed, boolean queriesKeys, Progress progress) {
        long t0 = System.nanoTime();
        rotate(model, signs(model.config().hiddenSize(), seed), queriesKeys, progress);
        ModelConfig c = model.config();
        return new Applied(seed, c.hiddenSize(), c.headDim(), c.intermediateSize(), queriesKeys, (System.nanoTime() - t0) / 1e9);
    }

    /** Rotates with Q = diag(signs) H (given signs, as the golden test passes QuaRot's own). */
    public static void rotate(Transformer model, double[] signs, boolean queriesKeys, Progress progress) {
        ModelConfig c = model.config();
        check(c);
        if (signs.length != c.hiddenSize())
            throw new IllegalArgumentException(signs.length + " signs for hidden_size " + c.hiddenSize());
        for (double s : signs) if (s != 1 && s != -1) throw new IllegalArgumentException("signs must be +1 or -1, found " + s);
        // before any weight changes: the online transforms' orders were checked above, so this cannot fail halfway
        model.setOnlineHadamards(true, queriesKeys);
        Hadamard q = Hadamard.of(c.hiddenSize(), "hidden_size"), head = Hadamard.of(c.headDim(), "head_dim"),
                down = Hadamard.of(c.intermediateSize(), "intermediate_size");
        try (Parallel par = new Parallel(model.threads()); Progress.Task task = progress.start("quarot", c.numLayers() + 2L, "layer")) {
            model.untieEmbeddings();
            float[] e = model.tokenEmbeddings();
            rowsTimes(e, e.length / c.hiddenSize(), c.hiddenSize(), null, q, signs, par);
            model.setTokenEmbeddings(e);
            task.step(1);
            Linear head0 = model.linear("lm_head");
            float[] w = head0.weight();
            rowsTimes(w, head0.outFeatures(), head0.inFeatures(), plain(model, -1, "final"), q, signs, par);
            head0.setWeight(w);
            task.step(1);
            par.forEach(c.numLayers(), l -> {
                rotateBlock(model, l, q, signs, head, down);
                task.step(1);
            });
        }
    }

    private static void rotateBlock(Transformer model, int l, Hadamard q, double[] signs, Hadamard head, Hadamard down) {
        float[] attn = plain(model, l, "attn"), mlp = plain(model, l, "mlp");
        for (Linear lin : model.blockLinears(l)) {
            int out = lin.outFeatures(), in = lin.inFeatures();
            double[] w = toDouble(lin.weight());
            switch (lin.module()) {
                case "q_proj", "k_proj" -> reads(w, out, in, attn, q, signs);
                case "v_proj" -> {
                    reads(w, out, in, attn, q, signs);
                    columnsTimes(w, out, in, head, null);
                    if (lin.bias() != null) setBias(lin, head, null);
                }
                case "o_proj" -> {
                    head.transformRows(w, out * in / head.size());
                    columnsTimes(w, out, in, q, signs);
                    if (lin.bias() != null) setBias(lin, q, signs);
                }
                case "gate_proj", "up_proj" -> reads(w, out, in, mlp, q, signs);
                case "down_proj" -> {
                    down.transformRows(w, out);
                    columnsTimes(w, out, in, q, signs);
                    if (lin.bias() != null) setBias(lin, q, signs);
                }
                default -> throw new IllegalStateException("quarot: no rule for " + lin.name());
            }
            lin.setWeight(toFloat(w));
        }
    }

    /** The norm's weight, which the caller folds into its readers; the norm itself becomes plain (all ones). */
    private static float[] plain(Transformer model, int layer, String which) {
        float[] w = model.normWeight(layer, which);
        float[] ones = new float[w.length];
        java.util.Arrays.fill(ones, 1f);
        model.setNormWeight(layer, which, ones);
        return w;
    }

    /** A reader of the stream: W diag(norm) Q, row by row. */
    private static void reads(double[] w, int out, int in, float[] norm, Hadamard q, double[] signs) {
        for (int r = 0; r < out; r++)
            for (int j = 0; j < in; j++) w[r * in + j] *= norm[j] * signs[j];
        q.transformRows(w, out);
    }

    /** Rows of a float matrix times diag(norm) (when given) and Q = diag(signs) M, in double, rounded once. */
    private static void rowsTimes(float[] w, int rows, int cols, float[] norm, Hadamard m, double[] signs, Parallel par) {
        int chunk = 256;
        par.forEach((rows + chunk - 1) / chunk, c -> {
            int from = c * chunk, to = Math.min(rows, from + chunk);
            double[] d = new double[(to - from) * cols];
            for (int i = 0; i < d.length; i++) {
                int j = i % cols;
                d[i] = (double) w[from * cols + i] * (norm == null ? 1 : norm[j]) * signs[j];
            }
            m.transformRows(d, to - from);
            for (int i = 0; i < d.length; i++) w[from * cols + i] = (float) d[i];
        });
    }

    /**
     * W becomes M'^T W with M' = diag(signs) M (signs null: M), each M' acting on consecutive chunks of M's order along
     * the output dimension: every column c of W becomes (c^T M')^T.
     */
    private static void columnsTimes(double[] w, int out, int in, Hadamard m, double[] signs) {
        double[] t = new double[w.length];
        for (int r = 0; r < out; r++)
            for (int j = 0; j < in; j++) t[j * out + r] = w[r * in + j] * (signs == null ? 1 : signs[r]);
        m.transformRows(t, in * out / m.size());
        for (int r = 0; r < out; r++)
            for (int j = 0; j < in; j++) w[r * in + j] = t[j * out + r];
    }

    /** bias b becomes b M' (chunks of M's order), in place. */
    private static void setBias(Linear lin, Hadamard m, double[] signs) {
        float[] b = lin.bias();
        double[] d = new double[b.length];
        for (int i = 0; i < b.length; i++) d[i] = b[i] * (signs == null ? 1 : signs[i]);
        m.transformRows(d, b.length / m.size());
        for (int i = 0; i < b.length; i++) b[i] = (float) d[i];
    }

    private static double[] toDouble(float[] w) {
        double[] d = new double[w.length];
        for (int i = 0; i < w.length; i++) d[i] = w[i];
        return d;
    }

    private static float[] toFloat(double[] d) {
        float[] w = new float[d.length];
        for (int i = 0; i < d.length; i++) w[i] = (float) d[i];
        return w;
    }
}
