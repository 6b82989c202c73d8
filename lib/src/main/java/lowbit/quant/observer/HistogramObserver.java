package lowbit.quant.observer;

/**
 * torch.ao's HistogramObserver: a running histogram of {@code bins} bins over [min, max] of everything observed,
 * and at the end a search for the sub-range [start bin, end bin] that minimizes the L2 error of quantizing the
 * histogram onto 256 levels (torch's _non_linear_param_search, from caffe2's NormMinimization). The search uses 256
 * levels whatever the grid, as torch does (it takes the dtype's width, and our grids are 8-bit dtypes).
 *
 * <p>Range extension follows torch: a tensor that widens the range is histogrammed over the new range, and the old
 * histogram is spread into it by upsampling each bin 16 times and moving each sub-bin's mass to the new bin that holds
 * its midpoint. Infinite values are dropped, as torch drops them. Arithmetic follows torch's float32 operations
 * (histc's bin index, linspace, floor division) so the chosen bins agree; sums torch does with double accumulators
 * (cumsum, bincount) are done in double here too.
 */
public final class HistogramObserver implements Observer {
    public static final int DEFAULT_BINS = 2048;
    static final int DST_BINS = 256;
    static final int UPSAMPLE = 16;

    private final int bins;
    private float[] histogram;
    private float min = Float.POSITIVE_INFINITY;
    private float max = Float.NEGATIVE_INFINITY;

    public HistogramObserver() {
        this(DEFAULT_BINS);
    }

    public HistogramObserver(int bins) {
        if (bins < 2) throw new IllegalArgumentException("histogram observer needs at least 2 bins, got " + bins);
        this.bins = bins;
        this.histogram = new float[bins];
    }

    /** An observer in a given state (torch's histogram, min_val and max_val buffers), e.g. to rerun the search. */
    static HistogramObserver withState(float[] histogram, float min, float max) {
        if (!(min <= max)) throw new IllegalArgumentException("histogram range [" + min + ", " + max + "] is empty");
        HistogramObserver o = new HistogramObserver(histogram.length);
        o.histogram = histogram.clone();
        o.min = min;
        o.max = max;
        return o;
    }

    /** min and max of everything observed (torch's min_val/max_val, before the search). */
    public Range observedRange() {
        return new Range(min, max);
    }

    /** A copy of the running histogram over {@link #observedRange()} (torch's histogram buffer). */
    float[] histogram() {
        return histogram.clone();
    }

    @Override
    public void observe(float[] input) {
        float[] x = finite(input);
        Range r = Observer.minMax(x);
        if (r == null) return;
        if (min == Float.POSITIVE_INFINITY || max == Float.NEGATIVE_INFINITY) {
            min = r.min();
            max = r.max();
            histogram = histc(x, min, max);
            return;
        }
        float newMin = Math.min(min, r.min()), newMax = Math.max(max, r.max());
        float[] update = histc(x, newMin, newMax);
        if (newMin == min && newMax == max) {
            for (int i = 0; i < bins; i++) histogram[i] += update[i];
            return;
        }
        histogram = combine(update, newMin, newMax);
        min = newMin;
        max = newMax;
    }

    private static float[] finite(float[] x) {
        int infinite = 0;
        for (float v : x) if (Float.isInfinite(v)) infinite++;
        if (infinite == 0) return x;
        float[] kept = new float[x.length - infinite];
        int k = 0;
        for (float v : x) if (!Float.isInfinite(v)) kept[k++] = v;
        return kept;
    }

    /** torch.histc on CPU: bin = (int) ((x - lo) * bins / (hi - lo)) in float, the top edge in the last bin. */
    private float[] histc(float[] x, float lo, float hi) {
        if (lo == hi) { // histc widens an empty range by one on each side
            lo -= 1;
            hi += 1;
        }
        float[] h = new float[bins];
        float width = hi - lo;
        for (float v : x) {
            if (!(v >= lo && v <= hi)) continue;
            int pos = (int) ((v - lo) * bins / width);
            if (pos == bins) pos--;
            h[pos] += 1;
        }
        return h;
    }

    /** The old histogram moved into [newMin, newMax] and added to {@code update} (torch's _combine_histograms). */
    private float[] combine(float[] update, float newMin, float newMax) {
        double[] moved = new double[bins];
        if (min == max) {
            double total = 0;
            for (float v : histogram) total += v;
            float[] one = histc(new float[] {min}, newMin, newMax);
            for (int i = 0; i < bins; i++) moved[i] = (float) (one[i] * (float) total);
        } else {
            int fine = bins * UPSAMPLE;
            float subWidth = (max - min) / fine;
            float[] oldStarts = linspace(min, max, fine + 1);
            float[] edges = linspace(newMin, newMax, bins + 1);
            for (int j = 0; j < fine; j++) {
                float mid = oldStarts[j] + 0.5f * subWidth;
                int b = countAtMost(edges, mid) - 1; // torch.bucketize(right=True) - 1
                b = Math.max(0, Math.min(bins - 1, b));
                moved[b] += histogram[j / UPSAMPLE] / UPSAMPLE;
            }
        }
        float[] out = new float[bins];
        for (int i = 0; i < bins; i++) out[i] = (float) (update[i] + moved[i]);
        return out;
    }

    /**
     * torch.linspace in float32 on CPU: from the start below the halfway index, from the end above it, each point one
     * fused multiply-add (torch's kernel compiles to FMA; rounding the product separately moves ~40% of the points of
     * a 32769-point linspace by an ulp, enough to send sub-bins of the upsampled histogram to a neighbouring bin).
     */
    static float[] linspace(float start, float end, int steps) {
        float step = (end - start) / (float) (steps - 1);
        float[] out = new float[steps];
        int halfway = steps / 2;
        for (int i = 0; i < steps; i++)
            out[i] = i < halfway ? Math.fma(step, (float) i, start) : Math.fma(-step, (float) (steps - i - 1), end);
        return out;
    }

    private static int countAtMost(float[] sorted, float v) {
        int lo = 0, hi = sorted.length;
        while (lo < hi) {
            int m = (lo + hi) >>> 1;
            if (sorted[m] <= v) lo = m + 1;
            else hi = m;
        }
        return lo;
    }

    @Override
    public Range range() {
        if (min == Float.POSITIVE_INFINITY && max == Float.NEGATIVE_INFINITY) return Range.EMPTY;
        float binWidth = (max - min) / bins;
        double totalSum = 0;
        for (float v : histogram) totalSum += v;
        double total = (float) totalSum;
        float[] cSum = new float[bins];
        double run = 0;
        for (int i = 0; i < bins; i++) cSum[i] = (float) (run += histogram[i]);

        final double stepsize = 1e-5;
        double alpha = 0, beta = 1, normMin = Double.POSITIVE_INFINITY;
        int start = 0, end = bins - 1;
        while (alpha < beta) {
            double nextAlpha = alpha + stepsize, nextBeta = beta - stepsize;
            int l = start, r = end;
            while (l < end && cSum[l] < (float) (nextAlpha * total)) l++;
            while (r > start && cSum[r] > (float) (nextBeta * total)) r--;
            int nextStart = start, nextEnd = end;
            // trim whichever tail gives up more bins for the same probability mass
            if (l - start > end - r) {
                nextStart = l;
                alpha = nextAlpha;
            } else {
                nextEnd = r;
                beta = nextBeta;
            }
            if (nextStart == start && nextEnd == end) continue;
            double norm = quantizationError(nextStart, nextEnd);
            if (norm > normMin) break;
            normMin = norm;
            start = nextStart;
            end = nextEnd;
        }
        return new Range(min + binWidth * start, min + binWidth * (end + 1));
    }

    /**
     * L2 error of quantizing the histogram onto 256 levels spanning bins [start, end], each source bin's mass spread
     * uniformly over its width (torch's _compute_quantization_error, in its float32 element-wise order).
     */
    private double quantizationError(int start, int end) {
        double binWidthD = ((double) max - (double) min) / bins;
        double dstWidthD = binWidthD * (end - start + 1) / DST_BINS;
        if (dstWidthD == 0.0) return 0.0;
        float binWidth = (float) binWidthD, dstWidth = (float) dstWidthD, half = (float) (dstWidthD / 2);
        float fullNorm = cube(half) - cube(-half);
        fullNorm = fullNorm / 3;
        double sum = 0;
        for (int i = 0; i < bins; i++) {
            float begin = (float) (i - start) * binWidth;
            float srcEnd = begin + binWidth;
            float dstOfBegin = clampDst(floorDivide(begin, dstWidth));
            float dstOfEnd = clampDst(floorDivide(srcEnd, dstWidth));
            float density = histogram[i] / binWidth;
            float beginCenter = (dstOfBegin + 0.5f) * dstWidth;
            float norm = 0;
            norm += density * ((cube(half) - cube(begin - beginCenter)) / 3);
            norm += (dstOfEnd - dstOfBegin - 1) * (fullNorm * density);
            float endCenter = dstOfEnd * dstWidth + half;
            norm += density * ((cube(srcEnd - endCenter) - cube(-half)) / 3);
            sum += norm;
        }
        return (float) sum;
    }

    private static float cube(float v) {
        return v * v * v;
    }

    private static float clampDst(float v) {
        return Math.max(0f, Math.min(DST_BINS - 1, v));
    }

    /** torch.div(a, b, rounding_mode="floor") for floats (Python's floor division, via fmod). */
    static float floorDivide(float a, float b) {
        float mod = a % b;
        float div = (a - mod) / b;
        if (mod != 0 && (b < 0) != (mod < 0)) div -= 1;
        float floor = (float) Math.floor(div);
        if (div - floor > 0.5f) floor += 1;
        return floor;
    }
}
