package lowbit.quant.qat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.RuntimeQuantization;
import lowbit.quant.UniformQuantizer;
import lowbit.quant.activation.ActivationQuantizer;
import lowbit.train.Parameter;
import lowbit.train.TrainHook;
import lowbit.train.TrainLinear;

/**
 * Quantization-aware training of an RTN spec ({@code rtn:w4a8}, {@code rtn:w3g128}, {@code rtn:w4g128sym}): the block
 * linears' weights fake-quantized on exactly RTN's grid ({@link UniformQuantizer}, fp16 scales, the same codes and
 * dequantized values the runtime computes from a written model, so the trained model evaluates as it trained), and,
 * for an aA term, their inputs on {@link ActivationQuantizer}'s symmetric grid. Embeddings and lm_head stay float, as
 * every weight method here leaves them.
 *
 * <p>Weights, default: each step refits scale and zero from the current weights (a min-max observer per group or output
 * channel, torch.ao's default QAT weight observer) and passes gradients straight through where the unclamped code
 * lies in [0, maxq] (FakeQuant's STE rule). With min-max ranges nothing is clipped except where the fp16 rounding of a
 * scale pushes an extreme value one code past the end.
 *
 * <p>Weights, {@link #lsq}: a learned step per group (LSQ, Esser et al. 2020), initialised from the RTN scale of the
 * starting weights rather than the paper's 2 mean|w| / sqrt(Qp), so step 0 is exactly RTN; the forward pass uses the
 * step rounded to fp16 (what is stored). The zero point stays at its initial RTN value (LSQ+ would learn it too). The
 * gradient is {@link Lsq}'s on the group's code range shifted by its zero, [-z, maxq - z]: dw = dy strictly inside,
 * ds = g * sum dy * (rint(v) - v inside, the bound outside), g = 1 / sqrt(N * Qp) with N the group's size and Qp =
 * maxq - z (the signed 2^(b-1) - 1 for symmetric grids; at least 1).
 *
 * <p>Activations, default: per-token dynamic absmax (the runtime's {@code rtn:w4a8}), gradient passed straight through
 * (the clamp never binds for a per-token absmax). {@link #pact}: a learned clip alpha per block input (PACT, Choi et
 * al. 2018, made symmetric, [-alpha, alpha], since linear inputs are signed), shared by the linears that read the same
 * input (q/k/v, gate/up) because the runtime quantizes that shared array once; the grid is the runtime's static one,
 * scale = alpha / qmax, so the trained clip becomes {@link RuntimeQuantization}'s per-tensor static scale. Backward:
 * dx = dy for |x| < alpha, dalpha = sum of dy sign(x) where |x| >= alpha ({@link Pact}'s rule mirrored). Alpha starts at
 * the absmax of its input over the first batch ({@link #observe}).
 */
public final class QatHook implements TrainHook {
    private final QuantSpec spec;
    private final QuantConfig grid;
    private final UniformQuantizer quantizer;
    private final boolean lsq, pact;
    private final int activationBits, activationQmax;
    private final Map<String, Weight> weights = new LinkedHashMap<>();
    private final Map<String, Parameter> alphaOfLinear = new HashMap<>();
    private final Map<String, Parameter> alphas = new LinkedHashMap<>();
    private final List<Parameter> parameters = new ArrayList<>();
    private Map<String, Float> observed;   // site absmax while observing

    /** One quantized linear's grid: per group (row-major [rows][groups]) the scale and zero point in force. */
    private static final class Weight {
        final TrainLinear linear;
        final int groupColumns, groupsPerRow;
        final double[] scale, zero;
        final Parameter step;   // LSQ; null for min-max

        Weight(TrainLinear linear, QuantConfig grid, Parameter step) {
            this.linear = linear;
            this.groupColumns = grid.groupColumns(linear.in());
            this.groupsPerRow = grid.groupsPerRow(linear.in());
            this.scale = new double[linear.out() * groupsPerRow];
            this.zero = new double[scale.length];
            this.step = step;
        }
    }

    private QatHook(QuantSpec spec, List<TrainLinear> linears, boolean lsq, boolean pact) {
        check(spec, lsq, pact);
        this.spec = spec;
        this.grid = spec.weightConfig();
        this.quantizer = new UniformQuantizer(grid);
        this.lsq = lsq;
        this.pact = pact;
        this.activationBits = spec.activationBits();
        this.activationQmax = activationBits == 0 ? 0 : (1 << (activationBits - 1)) - 1;
        for (TrainLinear l : linears) {
            if (!inBlock(l)) continue;
            if (grid.grouped() && grid.groupSize() > l.in())
                throw new IllegalArgumentException("--quant " + spec + ": group size " + grid.groupSize() + " is wider than " + l.name()
                        + "'s " + l.in() + " input columns; use a smaller g or per-channel (no g)");
            Weight w;
            if (lsq) {
                Weight init = new Weight(l, grid, null);
                fit(init, l.weight().value());
                float[] s = new float[init.scale.length];
                for (int p = 0; p < s.length; p++) s[p] = (float) init.scale[p];
                Parameter step = Parameter.of(l.name() + ".weight.lsq_step", s, false);
                w = new Weight(l, grid, step);
                System.arraycopy(init.zero, 0, w.zero, 0, w.zero.length);
                parameters.add(step);
            } else {
                w = new Weight(l, grid, null);
            }
            weights.put(l.name(), w);
            if (pact) {
                String site = siteName(l);
                Parameter a = alphas.computeIfAbsent(site, k -> {
                    Parameter p = Parameter.of(k + ".pact_alpha", new float[] {1f}, false);
                    parameters.add(p);
                    return p;
                });
                alphaOfLinear.put(l.name(), a);
            }
        }
    }

    /** The hook for {@code spec} over a trainable model's linears (only the block linears are quantized). */
    public static QatHook of(QuantSpec spec, List<TrainLinear> linears, boolean lsq, boolean pact) {
        return new QatHook(spec, linears, lsq, pact);
    }

    /** What QAT can start from, checked before any model is loaded: one line naming the option and why. */
    public static void check(QuantSpec spec, boolean lsq, boolean pact) {
        if (spec.rotates())
            throw new IllegalArgumentException("--quant " + spec + ": QAT does not support the quarot rotation (no backward pass through "
                    + "the online Hadamards); drop the quarot term");
        if (spec.kvBits() != 0)
            throw new IllegalArgumentException("--quant " + spec + ": QAT does not quantize the KV cache; drop the kv" + spec.kvBits() + " term");
        if (!"rtn".equals(spec.method()))
            throw new IllegalArgumentException("--quant " + spec + ": QAT starts from the RTN grid; give an rtn spec (e.g. rtn:w4a8, rtn:w3g128, "
                    + "rtn:w4g128sym)");
        if (spec.floatMin() && lsq)
            throw new IllegalArgumentException("--lsq learns a step on an integer zero-point grid; --quant " + spec + " has a float min (fmin)");
        if (pact && spec.activationBits() == 0)
            throw new IllegalArgumentException("--pact learns the clip of the linears' inputs; --quant " + spec + " has no aA term (e.g. rtn:w4a8)");
    }

    /** Block linears are quantized; lm_head (and the embeddings it may share) stays float. */
    private static boolean inBlock(TrainLinear l) {
        return l.layer() >= 0;
    }

    /** Linears that read the same activation share one clip: the runtime quantizes that array once for all of them. */
    private static String siteName(TrainLinear l) {
        String input = switch (l.module()) {
            case "q_proj", "k_proj", "v_proj" -> "attn_in";
            case "gate_proj", "up_proj" -> "mlp_in";
            default -> l.module();
        };
        return "model.layers." + l.layer() + "." + input;
    }

    public QuantSpec spec() {
        return spec;
    }

    public boolean lsq() {
        return lsq;
    }

    public boolean pact() {
        return pact;
    }

    @Override
    public List<Parameter> parameters() {
        return List.copyOf(parameters);
    }

    // ---------------------------------------------------------------- weights

    @Override
    public float[] effectiveWeight(TrainLinear linear, float[] w) {
        Weight st = weights.get(linear.name());
        if (st == null) return w;
        setGrid(st, w);
        float[] out = new float[w.length];
        int in = linear.in();
        for (int r = 0; r < linear.out(); r++)
            for (int c = 0; c < in; c++) {
                int p = r * st.groupsPerRow + c / st.groupColumns;
                int i = r * in + c;
                out[i] = (float) quantizer.quantize(w[i], st.scale[p], st.zero[p]);
            }
        return out;
    }

    /** The grid the step's forward uses: refit from {@code w} (min-max) or the learned steps rounded to the stored format. */
    private void setGrid(Weight st, float[] w) {
        if (st.step == null) {
            fit(st, w);
            return;
        }
        for (int p = 0; p < st.scale.length; p++) st.scale[p] = storedStep(st.step.value()[p]);
    }

    private void fit(Weight st, float[] w) {
        int in = st.linear.in();
        double[] row = new double[in], params = new double[2];
        for (int r = 0; r < st.linear.out(); r++) {
            for (int c = 0; c < in; c++) row[c] = w[r * in + c];
            for (int g = 0; g < st.groupsPerRow; g++) {
                int c0 = g * st.groupColumns;
                quantizer.fit(row, c0, Math.min(st.groupColumns, in - c0), params);
                st.scale[r * st.groupsPerRow + g] = params[0];
                st.zero[r * st.groupsPerRow + g] = params[1];
            }
        }
    }

    /** A learned step as stored (fp16 by default); a step trained to zero or below becomes the format's smallest positive value. */
    private double storedStep(float s) {
        double r = grid.scaleFormat().round(s);
        if (r > 0) return r;
        return grid.scaleFormat() == QuantConfig.ScaleFormat.F16 ? Float.float16ToFloat((short) 1) : Float.MIN_VALUE;
    }

    @Override
    public void weightGradient(TrainLinear linear, float[] w, float[] d) {
        Weight st = weights.get(linear.name());
        if (st == null) return;
        int in = linear.in(), maxq = grid.maxq();
        boolean floatMin = grid.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN;
        for (int r = 0; r < linear.out(); r++)
            for (int g = 0; g < st.groupsPerRow; g++) {
                int p = r * st.groupsPerRow + g;
                int c0 = g * st.groupColumns, n = Math.min(st.groupColumns, in - c0);
                int from = r * in + c0;
                if (st.step == null) {
                    steMask(w, d, from, n, st.scale[p], st.zero[p], maxq, floatMin);
                } else {
                    double ds = lsqBackward(w, d, from, n, (float) st.scale[p], (int) st.zero[p], maxq);
                    st.step.grad()[p] += (float) ds;
                }
            }
    }

    /** FakeQuant's STE: the gradient passes where the code before clamping is in [0, maxq], inclusive. */
    static void steMask(float[] w, float[] d, int from, int n, double scale, double zeroOrMin, int maxq, boolean floatMin) {
        for (int i = from; i < from + n; i++) {
            double q = floatMin ? Math.rint((w[i] - zeroOrMin) / scale) : Math.rint(w[i] / scale) + zeroOrMin;
            if (q < 0 || q > maxq) d[i] = 0;
        }
    }

    /**
     * LSQ's backward on one group, in place on {@code d}, with {@link Lsq}'s float arithmetic; returns dL/dstep.
     * The code range [0, maxq] with zero z is LSQ's [-Qn, Qp] = [-z, maxq - z].
     */
    static double lsqBackward(float[] w, float[] d, int from, int n, float step, int zero, int maxq) {
        return Lsq.backwardInPlace(w, d, from, n, step, zero, maxq - zero);
    }

    /** The trained linear on its final grid (the last min-max fit or the learned steps): what the runtime will run. */
    public QuantizedWeight quantized(TrainLinear linear) {
        Weight st = weights.get(linear.name());
        if (st == null) throw new IllegalArgumentException(linear.name() + " is not quantized by QAT (embeddings and lm_head stay float)");
        float[] w = linear.weight().value();
        setGrid(st, w);
        QuantizedWeight.Builder b = new QuantizedWeight.Builder(linear.out(), linear.in(), grid);
        int in = linear.in();
        for (int r = 0; r < linear.out(); r++) {
            for (int g = 0; g < st.groupsPerRow; g++) b.group(r, g, st.scale[r * st.groupsPerRow + g], st.zero[r * st.groupsPerRow + g]);
            for (int c = 0; c < in; c++) {
                int p = r * st.groupsPerRow + c / st.groupColumns;
                b.code(r, c, quantizer.code(w[r * in + c], st.scale[p], st.zero[p]));
            }
        }
        return b.build();
    }

    /** Names of the linears QAT quantizes, in model order. */
    public List<String> quantizedLinears() {
        return List.copyOf(weights.keySet());
    }

    public QuantConfig grid() {
        return grid;
    }

    // ---------------------------------------------------------------- activations

    @Override
    public boolean quantizesInput(TrainLinear linear) {
        return activationBits != 0 && inBlock(linear);
    }

    /** Until {@link #endObserving}, inputs pass unchanged and their absmax per input site is recorded (PACT's initial clip). */
    public void observe() {
        observed = new HashMap<>();
    }

    /** Sets every clip alpha to the absmax its input reached while observing. */
    public void endObserving() {
        if (observed == null) throw new IllegalStateException("endObserving without observe");
        for (var e : alphas.entrySet()) {
            Float m = observed.get(e.getKey());
            if (m == null) throw new IllegalStateException("PACT: no input was observed for " + e.getKey());
            if (!(m > 0) || !Float.isFinite(m))
                throw new IllegalStateException("PACT: the observed absmax of " + e.getKey() + " is " + m + "; cannot start a clip there");
            e.getValue().value()[0] = m;
        }
        observed = null;
    }

    @Override
    public void input(TrainLinear linear, float[] x, int rows) {
        int n = rows * linear.in();
        if (observed != null) {
            float m = 0;
            for (int i = 0; i < n; i++) m = Math.max(m, Math.abs(x[i]));
            synchronized (observed) {
                observed.merge(siteName(linear), m, Math::max);
            }
            return;
        }
        if (!pact) {
            ActivationQuantizer.quantizePerToken(x, rows, linear.in(), activationBits);
            return;
        }
        double scale = staticScale(alphaOfLinear.get(linear.name()).value()[0]);
        ActivationQuantizer.quantizeWithScale(x, 0, n, scale, activationQmax);
    }

    /** The static scale a clip becomes, as the runtime stores it (a float). */
    private float staticScale(float alpha) {
        return (float) (Math.max(alpha, Float.MIN_NORMAL) / activationQmax);
    }

    @Override
    public void inputGradient(TrainLinear linear, float[] x, float[] dx, int rows) {
        if (!pact) return;   // per-token absmax: the clamp never binds, the STE passes everything
        Parameter a = alphaOfLinear.get(linear.name());
        double dAlpha = pactBackward(x, dx, rows * linear.in(), a.value()[0]);
        synchronized (a) {
            a.grad()[0] += (float) dAlpha;
        }
    }

    /** Symmetric PACT's backward, in place on {@code dx}: returns dL/dalpha. */
    static double pactBackward(float[] x, float[] dx, int n, float alpha) {
        double dAlpha = 0;
        for (int i = 0; i < n; i++) {
            if (x[i] >= alpha) {
                dAlpha += dx[i];
                dx[i] = 0;
            } else if (x[i] <= -alpha) {
                dAlpha -= dx[i];
                dx[i] = 0;
            }
        }
        return dAlpha;
    }

    /** What the written model runs at inference beyond its weights: the aA term, per-token or with the trained clips as static scales. */
    public RuntimeQuantization runtime() {
        if (activationBits == 0) return RuntimeQuantization.NONE;
        if (!pact) return new RuntimeQuantization(activationBits, null, 0, 0, 0);
        Map<String, Float> scales = new LinkedHashMap<>();
        for (var e : alphaOfLinear.entrySet()) scales.put(e.getKey(), staticScale(e.getValue().value()[0]));
        return new RuntimeQuantization(activationBits, scales, 0, 0, 0);
    }

    /** Provenance: the weight grid, how its scales were set, and the activations. */
    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("weights", lsq ? "LSQ: learned step per " + (grid.grouped() ? "group" : "output channel") + " (initialised from the RTN scale, "
                + "fp16-rounded in the forward pass), zero points fixed at their RTN values; gradient scale 1/sqrt(N*Qp)"
                : "min-max observer refit every step (RTN's grid), straight-through estimator");
        m.put("activations", activationBits == 0 ? "float" : pact
                ? "PACT: learned symmetric clip per block input (shared by the linears reading it), static scale alpha/" + activationQmax
                : "per-token dynamic absmax, straight-through estimator");
        m.put("float_linears", "lm_head and the embeddings");
        m.put("quantized_linears", weights.size());
        return m;
    }
}
