package lowbit.quant.activation;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;
import java.util.function.Predicate;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.observer.Observer;
import lowbit.quant.observer.ObserverSpec;

/**
 * Fake-quantizes the input of every linear inside the transformer blocks (q/k/v/o, gate/up/down; OPT's
 * q/k/v/out_proj, fc1/fc2) to a symmetric signed grid of {@code bits} bits, as SmoothQuant's W8A8 and the
 * qllm-eval W/A study simulate integer activations. Linears outside the blocks are left in float: lm_head
 * (the usual practice, and the reference's quantize_llama_like/quantize_opt only replace block linears) and
 * OPT's project_in/project_out.
 *
 * <p>The grid is the reference's (mit-han-lab/smoothquant, smoothquant/fake_quant.py):
 * <pre>
 *   q_max = 2^(b-1) - 1
 *   scale = max(absmax, 1e-5) / q_max           (scales.clamp_(min=1e-5).div_(q_max))
 *   x'    = scale * clamp(rint(x / scale), -q_max, q_max)
 * </pre>
 * with absmax taken per token (row) in {@link #perTokenDynamic} ({@code quantize_activation_per_token_absmax})
 * and from calibration in {@link #perTensorStatic} (the static form of {@code quantize_activation_per_tensor_absmax}).
 * The grid has no -2^(b-1) level, like the reference. torch.round is round half to even, hence Math.rint. The clamp
 * never binds for dynamic scales; static scales clip inputs beyond the calibrated range. The 1e-5 floor keeps an
 * all-zero token at zero (no 0/0). The reference runs in fp16; we compute the scale in double and round each
 * result once to float, so bit-for-bit agreement with a fp16 run is not expected.
 *
 * <p>Idempotent, exactly: q/k/v (and gate/up) read one shared array, so the hook rewrites it once and then sees
 * its own output two more times. For per-token scales: the scale is kept in double, so the absmax element maps to
 * (float)(q_max * absmax / q_max) = absmax itself and the second pass finds the same scale; every other element
 * is (float)(q * scale), whose quotient by the scale is within q_max * 2^-24 of the integer q and rounds back to
 * it. Static scales are fixed, so only the second half of the argument is needed.
 *
 * <p>Non-finite activations are not masked: a NaN row stays NaN.
 */
public final class ActivationQuantizer implements ForwardHook {
    /** The reference's floor on absmax before dividing by q_max. */
    public static final float MIN_ABSMAX = 1e-5f;

    public enum Mode { PER_TOKEN_DYNAMIC, PER_TENSOR_STATIC }

    private final Mode mode;
    private final int bits;
    private final int qmax;
    private final Map<String, Float> scales;

    private ActivationQuantizer(Mode mode, int bits, Map<String, Float> scales) {
        this.mode = mode;
        this.bits = checkBits(bits);
        this.qmax = qmax(bits);
        this.scales = scales;
    }

    /** Symmetric absmax per token, the scale recomputed for every row of every linear input. */
    public static ActivationQuantizer perTokenDynamic(int bits) {
        return new ActivationQuantizer(Mode.PER_TOKEN_DYNAMIC, bits, Map.of());
    }

    /**
     * One fixed scale per linear, keyed by {@link Linear#name()}, e.g. from {@link #calibrate}. Every block linear the
     * model runs must have one (a missing scale fails at that linear, naming it).
     */
    public static ActivationQuantizer perTensorStatic(int bits, Map<String, Float> scales) {
        Map<String, Float> copy = new TreeMap<>();
        for (var e : scales.entrySet()) {
            Float s = e.getValue();
            if (s == null || !(s > 0) || !Float.isFinite(s))
                throw new IllegalArgumentException("static activation scale for " + e.getKey() + " must be positive and finite, got " + s);
            copy.put(e.getKey(), s);
        }
        return new ActivationQuantizer(Mode.PER_TENSOR_STATIC, bits, Map.copyOf(copy));
    }

    /** {@link #calibrate(Transformer, int[][], int, ObserverSpec, Progress)} with the min/max observer: max |x| per linear. */
    public static Map<String, Float> calibrate(Transformer model, int[][] windows, int bits) {
        return calibrate(model, windows, bits, ObserverSpec.MINMAX, Progress.NONE);
    }

    /**
     * Runs the windows through the model (blocks only: lm_head is not quantized, so its input is not needed) with one
     * observer per block linear, fed that linear's whole input once per window, and returns
     * scale = max(max(|lo|, |hi|), 1e-5) / q_max per linear name from each observer's range [lo, hi]. The min/max
     * observer gives max |x| over every input, the reference's static scale. Other hooks already on the model stay
     * active, so calibrating on top of weight-quantized or rotated models sees what the model actually runs.
     */
    public static Map<String, Float> calibrate(Transformer model, int[][] windows, int bits, ObserverSpec observer, Progress progress) {
        int qmax = qmax(checkBits(bits));
        Map<String, List<Observer>> observers = observe(model, windows, l -> true,
                (linear, count) -> List.of(observer.create(bits, count)), "act " + observer.text(), progress);
        Map<String, Float> out = new LinkedHashMap<>();
        for (var e : observers.entrySet()) {
            float absmax = absmax(e.getValue().get(0).range());
            if (!Float.isFinite(absmax))
                throw new IllegalStateException("activation calibration saw a non-finite input to " + e.getKey());
            out.put(e.getKey(), scale(absmax, qmax));
        }
        return out;
    }

    /** The symmetric grid's static scale for a range whose largest magnitude is absmax. */
    static float scale(float absmax, int qmax) {
        return (float) (Math.max(absmax, MIN_ABSMAX) / (double) qmax);
    }

    /** max(|lo|, |hi|) of an observer's range; 0 when it saw nothing. */
    static float absmax(Observer.Range r) {
        if (r.min() > r.max()) return 0f;
        return Math.max(Math.abs(r.min()), Math.abs(r.max()));
    }

    /**
     * Runs the windows through the model with observers on the inputs of the block linears {@code which} accepts:
     * {@code make} gets the linear and the number of values its input will hold over all windows, and each observer
     * sees that linear's input once per window. Returns the observers by linear name, in execution order.
     */
    static Map<String, List<Observer>> observe(Transformer model, int[][] windows, Predicate<Linear> which,
                                               BiFunction<Linear, Long, List<Observer>> make, String task, Progress progress) {
        if (windows.length == 0) throw new IllegalArgumentException("activation calibration needs at least one window");
        long tokens = 0;
        for (int[] w : windows) tokens += w.length;
        long totalTokens = tokens;
        Map<String, List<Observer>> observers = new LinkedHashMap<>();
        ForwardHook recorder = new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] x, int rows) {
                if (linear.layer() < 0 || !which.test(linear)) return;
                int n = rows * linear.inFeatures();
                List<Observer> obs = observers.computeIfAbsent(linear.name(), k -> make.apply(linear, totalTokens * linear.inFeatures()));
                float[] values = x.length == n ? x : Arrays.copyOf(x, n);
                try {
                    for (Observer o : obs) o.observe(values);
                } catch (IllegalArgumentException e) {
                    throw new IllegalStateException("activation calibration, input to " + linear.name() + ": " + e.getMessage(), e);
                }
            }
        };
        AutoCloseable handle = model.addHook(recorder);
        try (Progress.Task t = progress.start(task, windows.length, "win")) {
            for (int[] w : windows) {
                model.hidden(w);
                t.step(1);
            }
        } finally {
            closeQuietly(handle);
        }
        return observers;
    }

    @Override
    public void linearInput(Linear linear, float[] x, int rows) {
        if (linear.layer() < 0) return;
        int cols = linear.inFeatures();
        if (mode == Mode.PER_TOKEN_DYNAMIC) {
            quantizePerToken(x, rows, cols, bits);
        } else {
            Float s = scales.get(linear.name());
            if (s == null)
                throw new IllegalStateException("no static activation scale for " + linear.name()
                        + " (calibrated scales cover " + scales.size() + " linears)");
            quantizeWithScale(x, 0, rows * cols, s, qmax);
        }
    }

    /** Per-token symmetric absmax fake quantization of x [rows][cols] in place. */
    public static void quantizePerToken(float[] x, int rows, int cols, int bits) {
        int qmax = qmax(checkBits(bits));
        for (int r = 0; r < rows; r++) {
            int off = r * cols;
            float m = 0;
            for (int i = off; i < off + cols; i++) {
                float a = Math.abs(x[i]);
                if (a > m) m = a;
                else if (a != a) {   // a NaN row stays NaN rather than being quantized around it
                    m = a;
                    break;
                }
            }
            quantizeWithScale(x, off, cols, Math.max(m, MIN_ABSMAX) / (double) qmax, qmax);
        }
    }

    /** x[off..off+n) := scale * clamp(rint(x / scale), -qmax, qmax), in place. */
    public static void quantizeWithScale(float[] x, int off, int n, double scale, int qmax) {
        for (int i = off; i < off + n; i++) {
            double q = Math.rint(x[i] / scale);
            if (q > qmax) q = qmax;
            else if (q < -qmax) q = -qmax;
            x[i] = (float) (q * scale);
        }
    }

    public Mode mode() {
        return mode;
    }

    public int bits() {
        return bits;
    }

    /** The static scales (empty for per-token), by linear name. */
    public Map<String, Float> scales() {
        return scales;
    }

    public Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("method", "activation fake quantization");
        m.put("mode", mode == Mode.PER_TOKEN_DYNAMIC ? "per-token dynamic" : "per-tensor static");
        m.put("bits", bits);
        m.put("grid", "symmetric absmax, q in [-" + qmax + ", " + qmax + "], round half to even");
        m.put("scale", mode == Mode.PER_TOKEN_DYNAMIC ? "max(absmax, 1e-5) / " + qmax
                : "max(max(|lo|, |hi|), 1e-5) / " + qmax + " from the calibration observer's range [lo, hi] of each linear's input");
        m.put("tensors", "inputs of every linear inside the transformer blocks; lm_head (and OPT project_in/out) kept float");
        m.put("reference", "mit-han-lab/smoothquant smoothquant/fake_quant.py");
        if (mode == Mode.PER_TENSOR_STATIC) m.put("calibrated_linears", scales.size());
        return m;
    }

    static int checkBits(int bits) {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("activation bits must be 2..8, got " + bits);
        return bits;
    }

    static int qmax(int bits) {
        return (1 << (bits - 1)) - 1;
    }

    private static void closeQuietly(AutoCloseable handle) {
        try {
            handle.close();
        } catch (Exception e) {
            throw new IllegalStateException("could not remove the calibration hook", e);
        }
    }
}
