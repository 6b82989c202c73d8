package lowbit.quant.observer;

/**
 * TensorRT's entropy calibration as NVIDIA's pytorch-quantization implements it ({@code HistogramCalibrator} with
 * torch's histogram, then {@code _compute_amax_entropy}): a histogram of |x| over [0, max|x|] in 2048 bins, and the
 * clipping threshold amax whose quantized distribution is closest to the observed one in KL divergence. The range is
 * symmetric, [-amax, amax].
 *
 * <p>Collecting follows the reference's rule for a growing range: the first tensor sets the bin width
 * (torch.linspace(0, max, 2049)); a later tensor with a larger max appends bins of the same width up to it
 * (ceil(max / width) bins, edges torch.arange(0, max + width, width)), so the bin count grows and the old counts stay
 * in their bins. The search, for every candidate threshold bin i from 128 to the last: the reference distribution is
 * bins [0, i) with everything beyond folded into bin i-1; the candidate spreads bins [0, i) over 2^(b-1) levels
 * (2^b unsigned), each level's mass shared equally by its non-empty bins; KL(reference || candidate) as
 * scipy.stats.entropy computes it (both normalized, numpy's pairwise sums); the smallest wins, the last of equal
 * ones; amax is that bin's left edge. Bin 0 takes bin 1's count first, as in the reference, so exact zeros (ReLU
 * outputs, padding) do not weigh.
 *
 * <p>Two deliberate differences, neither of which changes amax where the reference runs: counts are kept exactly in
 * longs (torch.histc counts in float32, which stops counting at 2^24 per bin); and tensors that are all zero before
 * any range exists are counted as zeros without starting the histogram (the reference would make bins of width 0
 * and fail at the next tensor), which is harmless because bin 0's count is replaced by bin 1's. Non-finite values
 * are refused: the reference would build its bins up to infinity.
 */
public final class EntropyObserver implements Observer {
    public static final int DEFAULT_BINS = 2048;
    public static final int START_BIN = 128;

    private final int bits;
    private final boolean unsigned;
    private long[] histogram;
    private float[] edges;
    private long zerosBeforeRange;

    /** For a grid of {@code bits} bits, signed (2^(b-1) levels per side searched) or unsigned (2^b). */
    public EntropyObserver(int bits, boolean unsigned) {
        if (bits < 2 || bits > 8) throw new IllegalArgumentException("entropy observer bits must be 2..8, got " + bits);
        this.bits = bits;
        this.unsigned = unsigned;
    }

    public int bits() {
        return bits;
    }

    /** Number of histogram bins so far (2048 after the first tensor, more once the range has grown). */
    public int bins() {
        return histogram == null ? 0 : histogram.length;
    }

    @Override
    public void observe(float[] x) {
        if (x.length == 0) return;
        float xmax = 0;
        for (int i = 0; i < x.length; i++) {
            float a = Math.abs(x[i]);
            if (!Float.isFinite(a))
                throw new IllegalArgumentException("entropy observer input holds " + x[i] + " at element " + i + "; it needs finite values");
            if (a > xmax) xmax = a;
        }
        if (histogram == null) {
            if (xmax == 0) {
                zerosBeforeRange += x.length;
                return;
            }
            edges = HistogramObserver.linspace(0f, xmax, DEFAULT_BINS + 1);
            histogram = histc(x, DEFAULT_BINS, xmax);
            histogram[0] += zerosBeforeRange;
            return;
        }
        int oldBins = histogram.length;
        if (xmax > edges[edges.length - 1]) {
            float width = edges[1] - edges[0];
            int bins = (int) Math.ceil(xmax / width);
            int count = (int) Math.ceil((double) (xmax + width) / (double) width);
            edges = arange(width, count);
            long[] grown = histc(x, bins, edges[count - 1]);
            for (int k = 0; k < oldBins; k++) grown[k] += histogram[k];
            histogram = grown;
            return;
        }
        long[] update = histc(x, oldBins, edges[edges.length - 1]);
        for (int k = 0; k < oldBins; k++) histogram[k] += update[k];
    }

    /**
     * torch.arange(0, end, step) in float32 on CPU, whose length ceil(end / step) is computed in double from the float32
     * end and step. Its kernel fills 8-float vectors two at a time, each vector from base = (float) (step * k0) as
     * (float) (base + i * step) in double, and the remainder past the last pair of vectors as (float) (step * k); the
     * two differ by an ulp often enough to move a grown histogram's edges, so both are followed (checked against torch
     * 2.15's output for 300 random ranges).
     */
    static float[] arange(float step, int count) {
        final int vec = 8;
        double s = step;
        float[] out = new float[count];
        int vectorized = count - count % (2 * vec);
        for (int k = 0; k < count; k++) {
            if (k < vectorized) {
                float base = (float) (s * (k / vec * vec));
                out[k] = (float) ((double) base + (k % vec) * s);
            } else {
                out[k] = (float) (s * k);
            }
        }
        return out;
    }

    /** torch.histc(|x|, bins, min=0, max=hi) on CPU: bin = (int) (|x| * bins / hi) in float32, the top edge in the last bin. */
    private static long[] histc(float[] x, int bins, float hi) {
        long[] h = new long[bins];
        for (float v : x) {
            float a = Math.abs(v);
            if (!(a <= hi)) continue;
            int pos = (int) (a * bins / hi);
            if (pos == bins) pos--;
            h[pos]++;
        }
        return h;
    }

    @Override
    public Range range() {
        if (histogram == null) return zerosBeforeRange > 0 ? new Range(0f, 0f) : Range.EMPTY;
        float amax = edges[bestBin()];
        return new Range(-amax, amax);
    }

    /** The threshold bin with the smallest KL divergence (the last of equal ones). */
    private int bestBin() {
        double[] kl = divergences();
        int best = 0;
        for (int k = 0; k < kl.length; k++) if (kl[k] <= kl[best]) best = k;
        return START_BIN + best;
    }

    /** KL(reference || candidate) for each threshold bin i = 128 .. bins, as _compute_amax_entropy's divergences. */
    double[] divergences() {
        long[] h = histogram.clone();
        h[0] = h[1];
        int stop = h.length;
        if (stop < START_BIN) throw new IllegalStateException("entropy search needs at least " + START_BIN + " bins, has " + stop);
        long[] beyond = new long[stop + 1];
        for (int k = stop - 1; k >= 0; k--) beyond[k] = beyond[k + 1] + h[k];
        double total = beyond[0];
        int levels = 1 << (bits - 1 + (unsigned ? 1 : 0));
        double[] levelMass = new double[levels];
        int[] levelBins = new int[levels];
        double[] candidate = new double[stop];
        double[] terms = new double[stop];
        double[] out = new double[stop - START_BIN + 1];
        for (int i = START_BIN; i <= stop; i++) {
            java.util.Arrays.fill(levelMass, 0);
            java.util.Arrays.fill(levelBins, 0);
            // numpy.digitize(j, linspace(0, i, levels + 1)) - 1 is exactly floor(j * levels / i): the edges k * i / levels
            // are exact in double because levels is a power of two
            for (int j = 0; j < i; j++) {
                if (h[j] == 0) continue;
                int d = (int) ((long) j * levels / i);
                levelMass[d] += h[j];
                levelBins[d]++;
            }
            for (int d = 0; d < levels; d++) if (levelBins[d] != 0) levelMass[d] = levelMass[d] / levelBins[d];
            for (int j = 0; j < i; j++) candidate[j] = h[j] == 0 ? 0 : levelMass[(int) ((long) j * levels / i)];
            double candidateSum = pairwiseSum(candidate, i);
            for (int j = 0; j < i; j++) {
                double ref = j == i - 1 ? h[j] + beyond[i] : h[j];
                terms[j] = relEntr(ref / total, candidate[j] / candidateSum);
            }
            out[i - START_BIN] = pairwiseSum(terms, i);
        }
        return out;
    }

    /** scipy.special.rel_entr. */
    private static double relEntr(double p, double q) {
        if (p > 0 && q > 0) return p * Math.log(p / q);
        if (p == 0 && q >= 0) return 0;
        return Double.POSITIVE_INFINITY;
    }

    /** numpy's pairwise summation of a[0..n) (np.sum of a contiguous float64 array), so near-equal divergences order as numpy's do. */
    static double pairwiseSum(double[] a, int n) {
        return pairwiseSum(a, 0, n);
    }

    private static double pairwiseSum(double[] a, int off, int n) {
        if (n < 8) {
            double res = 0;
            for (int i = 0; i < n; i++) res += a[off + i];
            return res;
        }
        if (n <= 128) {
            double r0 = a[off], r1 = a[off + 1], r2 = a[off + 2], r3 = a[off + 3];
            double r4 = a[off + 4], r5 = a[off + 5], r6 = a[off + 6], r7 = a[off + 7];
            int i = 8;
            for (; i < n - n % 8; i += 8) {
                r0 += a[off + i];
                r1 += a[off + i + 1];
                r2 += a[off + i + 2];
                r3 += a[off + i + 3];
                r4 += a[off + i + 4];
                r5 += a[off + i + 5];
                r6 += a[off + i + 6];
                r7 += a[off + i + 7];
            }
            double res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7));
            for (; i < n; i++) res += a[off + i];
            return res;
        }
        int n2 = n / 2;
        n2 -= n2 % 8;
        return pairwiseSum(a, off, n2) + pairwiseSum(a, off + n2, n - n2);
    }
}
