package lowbit.quant.awq;

import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;

/**
 * One block's float activations over all calibration windows, what AWQ's searches read: the inputs of
 * o_proj, of the MLP and of down_proj (the attention's input is recomputed from the block input, so that
 * it follows the folded norm), the float outputs of the attention and the MLP (and OPT's fc1), and the
 * block's output. Memory: about (4 hidden + 2 intermediate) floats per calibration token.
 */
final class BlockActivations {
    private final float[][] x, attnOut, oIn, mIn, mlpOut, dIn, upOut, next;
    private final boolean gated;
    private final float[] meanAttnIn, meanOIn, meanMIn, meanDIn;
    private final int layer;

    private BlockActivations(int windows, int layer) {
        this.layer = layer;
        x = new float[windows][];
        attnOut = new float[windows][];
        oIn = new float[windows][];
        mIn = new float[windows][];
        mlpOut = new float[windows][];
        dIn = new float[windows][];
        upOut = new float[windows][];
        next = new float[windows][];
        gated = false;
        meanAttnIn = null;
        meanOIn = null;
        meanMIn = null;
        meanDIn = null;
    }

    private BlockActivations(BlockActivations a, boolean gated, float[] meanAttnIn, float[] meanOIn, float[] meanMIn, float[] meanDIn) {
        this.layer = a.layer;
        x = a.x;
        attnOut = a.attnOut;
        oIn = a.oIn;
        mIn = a.mIn;
        mlpOut = a.mlpOut;
        dIn = a.dIn;
        upOut = a.upOut;
        next = a.next;
        this.gated = gated;
        this.meanAttnIn = meanAttnIn;
        this.meanOIn = meanOIn;
        this.meanMIn = meanMIn;
        this.meanDIn = meanDIn;
    }

    static BlockActivations capture(Transformer model, int layer, float[][] inputs, int T) {
        BlockActivations a = new BlockActivations(inputs.length, layer);
        var lin = model.blockLinears(layer);
        Linear o = lin.get(3), down = lin.get(lin.size() - 1), up = lin.get(lin.size() - 2);
        boolean gated = lin.size() == 7;
        int h = model.config().hiddenSize();
        double[] sA = new double[h], sO = new double[o.inFeatures()], sM = new double[h], sD = new double[down.inFeatures()];
        int[] w = {0};
        try (AutoCloseable hook = model.addHook(new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] in, int rows) {
                if (linear == o) a.oIn[w[0]] = java.util.Arrays.copyOf(in, rows * linear.inFeatures());
                else if (linear == down) a.dIn[w[0]] = java.util.Arrays.copyOf(in, rows * linear.inFeatures());
            }

            @Override
            public void linearOutput(Linear linear, float[] out, int rows) {
                // OPT's fc1 group is judged on fc1's own output (llm-awq), so keep it
                if (!gated && linear == up) a.upOut[w[0]] = java.util.Arrays.copyOf(out, rows * linear.outFeatures());
            }
        })) {
            for (w[0] = 0; w[0] < inputs.length; w[0]++) {
                int i = w[0];
                a.x[i] = inputs[i];
                float[] n = model.attentionInput(layer, inputs[i], T);
                addAbs(sA, n);
                a.attnOut[i] = model.attentionOutput(layer, n, T);
                float[] r = inputs[i].clone();
                for (int j = 0; j < r.length; j++) r[j] += a.attnOut[i][j];
                a.mIn[i] = model.mlpInput(layer, r, T);
                a.mlpOut[i] = model.mlpOutput(layer, a.mIn[i], T);
                for (int j = 0; j < r.length; j++) r[j] += a.mlpOut[i][j];
                a.next[i] = r;
                addAbs(sO, a.oIn[i]);
                addAbs(sM, a.mIn[i]);
                addAbs(sD, a.dIn[i]);
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
        long tokens = (long) inputs.length * T;
        return new BlockActivations(a, gated, mean(sA, tokens), mean(sO, tokens), mean(sM, tokens), mean(sD, tokens));
    }

    private static void addAbs(double[] sum, float[] v) {
        int n = sum.length;
        for (int i = 0; i < v.length; i++) sum[i % n] += Math.abs(v[i]);
    }

    private static float[] mean(double[] sum, long tokens) {
        float[] m = new float[sum.length];
        for (int j = 0; j < m.length; j++) m[j] = (float) (sum[j] / tokens);
        return m;
    }

    /** AWQ's activation statistic for a scaling group: per-channel mean |x| of its input. */
    float[] meanAbs(String group) {
        return switch (group) {
            case "attn_in" -> meanAttnIn;
            case "v_o" -> meanOIn;
            case "mlp_in" -> meanMIn;
            case "up_down", "fc1_fc2" -> meanDIn;
            default -> throw new IllegalArgumentException(group);
        };
    }

    /** Mean squared error, over all output elements, of the group's loss module against its float output. */
    double loss(Transformer model, int layer, String group, int T) {
        LinearLoss single = linearLoss(model, layer, group);
        double err = 0;
        long count = 0;
        for (int i = 0; i < x.length; i++) {
            float[] out, ref;
            if (single != null) {
                out = model.runLinear(single.linear(), single.inputs()[i], T);
                ref = single.reference()[i];
            } else if (group.equals("attn_in")) {
                out = model.attentionOutput(layer, model.attentionInput(layer, x[i], T), T);
                ref = attnOut[i];
            } else {
                out = model.mlpOutput(layer, mIn[i], T);
                ref = mlpOut[i];
            }
            for (int j = 0; j < out.length; j++) {
                double d = out[j] - ref[j];
                err += d * d;
            }
            count += out.length;
        }
        return err / count;
    }

    /** A loss module that is one linear: its inputs and its float outputs per window (live arrays). */
    record LinearLoss(Linear linear, float[][] inputs, float[][] reference) {}

    /**
     * The group's loss module when it is one linear (v -> o, OPT's fc1, up -> down, fc1 -> fc2), null when it is the whole
     * attention or a gated MLP.
     */
    LinearLoss linearLoss(Transformer model, int layer, String group) {
        var lin = model.blockLinears(layer);
        return switch (group) {
            case "attn_in" -> null;
            case "v_o" -> new LinearLoss(lin.get(3), oIn, attnOut);
            case "mlp_in" -> gated ? null : new LinearLoss(lin.get(4), mIn, upOut);
            case "up_down", "fc1_fc2" -> new LinearLoss(lin.get(lin.size() - 1), dIn, mlpOut);
            default -> throw new IllegalArgumentException(group);
        };
    }

    /** After a scale fold: the cached inputs of the group's consumers are divided by s (the attention input follows the norm). */
    void divideInputs(String group, float[] s) {
        float[][] target = switch (group) {
            case "attn_in" -> null;
            case "v_o" -> oIn;
            case "mlp_in" -> mIn;
            case "up_down", "fc1_fc2" -> dIn;
            default -> throw new IllegalArgumentException(group);
        };
        if (target == null) return;
        int n = s.length;
        for (float[] t : target)
            for (int i = 0; i < t.length; i++) t[i] /= s[i % n];
    }

    /** All tokens' input of one linear, [tokens][in] (for the clip search). */
    float[] inputOf(Transformer model, int layer, Linear lin, int T) {
        int n = lin.inFeatures();
        float[] all = new float[x.length * T * n];
        for (int i = 0; i < x.length; i++) {
            float[] src = switch (lin.input()) {
                case "attn_in" -> model.attentionInput(layer, x[i], T);
                case "attn_out" -> oIn[i];
                case "mlp_in" -> mIn[i];
                case "mlp_act" -> dIn[i];
                default -> throw new IllegalArgumentException(lin.name() + " reads " + lin.input() + ", not an input of block " + layer);
            };
            System.arraycopy(src, 0, all, i * T * n, T * n);
        }
        return all;
    }

    /** The float block's output for every window: the next block's input. */
    float[][] next() {
        return next;
    }
}
