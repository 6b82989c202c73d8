package lowbit.quant.mixed;

import java.util.Arrays;
import java.util.Map;
import lowbit.tensor.VectorMath;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * The instrument mixed precision measures with: the mean KL divergence KL(P_float || P_model) per window, over a
 * fixed set of token windows, of the model as it is now, or with some linears' weights swapped for others; the same
 * quantity as {@link lowbit.eval.KlDivergence} (exact over the vocabulary, sums in double).
 *
 * <p>The float model's next-token probabilities and log-probabilities are computed once, when the probe is made, and
 * kept in memory (2 x windows x (seqlen - 1) x vocab floats). The input of every block under the model's current weights is kept
 * too, so a measurement that changes linears of layer l and later reruns only blocks l.. and the head: measuring
 * every linear of a 30-layer model one at a time costs about half of 210 full passes. Nothing is approximated:
 * a measurement equals a full forward pass of the changed model (the same blocks on the same inputs).
 */
public final class KldProbe {
    private final Transformer model;
    private final int[][] windows;
    private final int seqlen;
    private final int vocab;
    private final float[][] reference;  // [window][(seqlen - 1) * vocab]: the float model's probabilities
    private final float[][] logReference; // the same rows' log-probabilities
    private float[][][] inputs;         // [layer][window][seqlen * hidden], under the current weights
    private Measurement current;

    /**
     * Per window: the mean KL divergence to the float model and the mean next-token NLL of the measured model,
     * over the window's seqlen - 1 scored positions.
     */
    public record Measurement(double[] kld, double[] nll) {
        public double meanKld() {
            return Arrays.stream(kld).average().orElseThrow();
        }

        public double meanNll() {
            return Arrays.stream(nll).average().orElseThrow();
        }
    }

    private KldProbe(Transformer model, int[][] windows) {
        if (windows.length == 0) throw new IllegalArgumentException("a KL-divergence probe needs at least one window");
        this.model = model;
        this.windows = windows;
        this.seqlen = windows[0].length;
        for (int[] w : windows)
            if (w.length != seqlen) throw new IllegalArgumentException("probe windows must have one length, got " + w.length + " and " + seqlen);
        if (seqlen < 2) throw new IllegalArgumentException("probe windows need at least 2 tokens, got " + seqlen);
        this.vocab = model.config().vocabSize();
        long floats = (long) windows.length * (seqlen - 1) * vocab;
        if (floats > Integer.MAX_VALUE * (long) windows.length || (long) (seqlen - 1) * vocab > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("probe windows of " + seqlen + " tokens x " + vocab + " vocabulary are too long for one array");
        this.reference = new float[windows.length][];
        this.logReference = new float[windows.length][];
    }

    /**
     * A probe on {@code windows} whose reference is {@code model} as it is now (the float model): its log-probs and
     * block inputs are computed here (one forward pass per window).
     */
    public static KldProbe of(Transformer model, int[][] windows, Progress progress) {
        KldProbe p = new KldProbe(model, windows);
        int layers = model.config().numLayers();
        p.inputs = new float[layers][windows.length][];
        try (Progress.Task task = progress.start("float reference", windows.length, "window")) {
            for (int w = 0; w < windows.length; w++) {
                float[] x = model.embed(windows[w]);
                for (int l = 0; l < layers; l++) {
                    p.inputs[l][w] = x.clone();
                    model.block(l, x, p.seqlen);
                }
                float[] ref = new float[(p.seqlen - 1) * p.vocab], log = new float[ref.length];
                model.nextTokenLogProbsOfHidden(x, p.seqlen, (lp, t) -> {
                    System.arraycopy(lp, 0, log, t * p.vocab, p.vocab);
                    VectorMath.exp(lp, 0, ref, t * p.vocab, p.vocab, 1f, 0f);
                });
                p.reference[w] = ref;
                p.logReference[w] = log;
                task.step(1);
            }
        }
        p.current = p.measureFrom(0, null);
        return p;
    }

    public Transformer model() {
        return model;
    }

    public int windows() {
        return windows.length;
    }

    public int seqlen() {
        return seqlen;
    }

    /** Scored positions per measurement: windows x (seqlen - 1). */
    public long positions() {
        return (long) windows.length * (seqlen - 1);
    }

    /** The measurement of the model as it was at construction or at the last {@link #recache}. */
    public Measurement current() {
        return current;
    }

    /**
     * Re-reads the model after the caller changed it for good (weights, hooks): block inputs and {@link #current}
     * follow the new model from {@code firstLayer} on (layers before it must be unchanged).
     */
    public Measurement recache(int firstLayer) {
        current = measureFrom(firstLayer, inputs);
        return current;
    }

    /**
     * The model with {@code weights} in place of those linears' current weights, measured and restored: only blocks
     * from the first changed layer on are run.
     */
    public Measurement with(Map<Linear, float[]> weights) {
        if (weights.isEmpty()) return current;
        int first = weights.keySet().stream().mapToInt(Linear::layer).min().orElseThrow();
        Map<Linear, float[]> saved = new java.util.LinkedHashMap<>();
        try {
            for (var e : weights.entrySet()) {
                saved.put(e.getKey(), e.getKey().weight());
                e.getKey().setWeight(e.getValue());
            }
            return measureFrom(first, null);
        } finally {
            saved.forEach(Linear::setWeight);
        }
    }

    /**
     * The model as it is now (hooks included) measured from block {@code first} on, on the cached inputs of that
     * block: the caller changed nothing before it. For changes that are not weights (a KV-cache hook on one layer).
     */
    public Measurement from(int first) {
        return measureFrom(first, null);
    }

    /** Runs blocks first.. on the cached inputs; when {@code store} is given, the new block inputs are kept in it. */
    private Measurement measureFrom(int first, float[][][] store) {
        int layers = model.config().numLayers();
        if (first < 0 || first >= layers) throw new IllegalArgumentException("first layer " + first + " is outside 0.." + (layers - 1));
        double[] kld = new double[windows.length], nll = new double[windows.length];
        for (int w = 0; w < windows.length; w++) {
            float[] x = inputs[first][w].clone();
            for (int l = first; l < layers; l++) {
                if (store != null && l > first) store[l][w] = x.clone();
                model.block(l, x, seqlen);
            }
            double[] perPosition = new double[seqlen - 1], nllPosition = new double[seqlen - 1];
            float[] ref = reference[w], log = logReference[w];
            int[] tokens = windows[w];
            // KL(p || q) = sum p (log p - log q) with log q = z - lse(z): the terms KlDivergence.compare sums, from the
            // logits, without writing the log-softmax row
            model.nextTokenLogitsOfHidden(x, seqlen, (t, z, off) -> {
                double lse = Transformer.logSumExp(z, off, vocab);
                perPosition[t] = VectorMath.klDivergence(ref, log, t * vocab, z, off, (float) lse, vocab);
                nllPosition[t] = lse - z[off + tokens[t + 1]];
            });
            kld[w] = mean(perPosition);
            nll[w] = mean(nllPosition);
        }
        return new Measurement(kld, nll);
    }

    private static double mean(double[] a) {
        double s = 0;
        for (double v : a) s += v;  // in position order: the same bits on any thread count
        return s / a.length;
    }
}
