package lowbit.tensor;

import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp over arrays, built from add/mul/fma only (and a vectorized scan for non-finite values). The Vector API's own EXP is computed by a math library
 * once the JIT compiles the caller and by Java code before that, and the two round differently: the same
 * window would give different perplexities early and late in a run. This one is bitwise the same in every
 * tier and in the scalar tail. Cephes' expf: range reduction by ln 2 (split in two) and a degree-6
 * polynomial, within 2 ulp.
 *
 * <p>The loops take arrays, not vectors: a method taking a FloatVector parameter is compiled without
 * knowing the lane count and falls off the Vector API intrinsics unless it happens to be inlined.
 */
public final class VectorMath {
    private VectorMath() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float MIN = -87.33654f, MAX = 88.72283f;
    /** 1.5 * 2^23: adding it rounds a float to an integer held in the low mantissa bits. */
    private static final float ROUNDER = 12582912f;
    private static final int ROUNDER_BITS = Float.floatToRawIntBits(ROUNDER);
    private static final float P0 = 1.9875691500e-4f, P1 = 1.3981999507e-3f, P2 = 8.3334519073e-3f,
            P3 = 4.1665795894e-2f, P4 = 1.6666665459e-1f, P5 = 5.0000001201e-1f;

    /** The index of the first NaN or infinite value of a, or -1 when every value is finite. */
    public static int firstNonFinite(float[] a) {
        // x - x is 0 for a finite x and NaN for NaN or an infinity; a sum of zeros stays 0, a NaN stays NaN
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (; i + L <= a.length; i += L) {
            FloatVector v = FloatVector.fromArray(S, a, i);
            acc = acc.add(v.sub(v));
        }
        float tail = 0;
        for (; i < a.length; i++) tail += a[i] - a[i];
        if (acc.reduceLanes(VectorOperators.ADD) + tail == 0) return -1;
        for (int j = 0; j < a.length; j++) if (!Float.isFinite(a[j])) return j;
        return -1;
    }

    /**
     * dst[dstFrom + i] = exp(sign * src[srcFrom + i] - shift) for i in [0, n); returns the sum of the values
     * written (lane partial sums, then the tail, in a fixed order). dst may be src, or null when only the sum
     * is wanted.
     */
    public static float exp(float[] src, int srcFrom, float[] dst, int dstFrom, int n, float sign, float shift) {
        FloatVector sum = FloatVector.zero(S);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector x = FloatVector.fromArray(S, src, srcFrom + i).mul(sign).sub(shift).max(MIN).min(MAX);
            FloatVector t = x.fma(LOG2E, ROUNDER);
            FloatVector k0 = t.sub(ROUNDER);
            FloatVector r = k0.fma(FloatVector.broadcast(S, -LN2_HI), x);
            r = k0.fma(FloatVector.broadcast(S, -LN2_LO), r);
            FloatVector p = r.fma(P0, P1);
            p = p.fma(r, FloatVector.broadcast(S, P2));
            p = p.fma(r, FloatVector.broadcast(S, P3));
            p = p.fma(r, FloatVector.broadcast(S, P4));
            p = p.fma(r, FloatVector.broadcast(S, P5));
            FloatVector y = p.mul(r).fma(r, r).add(1f);
            IntVector k = ((IntVector) t.reinterpretAsInts()).sub(ROUNDER_BITS).lanewise(VectorOperators.LSHL, 23);
            FloatVector e = ((IntVector) y.reinterpretAsInts()).add(k).reinterpretAsFloats();
            if (dst != null) e.intoArray(dst, dstFrom + i);
            sum = sum.add(e);
        }
        // lanes added in index order: reduceLanes' order differs between the JIT's intrinsic and the fallback
        float[] lanes = new float[L];
        sum.intoArray(lanes, 0);
        float total = 0;
        for (float lane : lanes) total += lane;
        for (; i < n; i++) {
            float e = exp(sign * src[srcFrom + i] - shift);
            if (dst != null) dst[dstFrom + i] = e;
            total += e;
        }
        return total;
    }

    /** The same function on one float. */
    public static float exp(float x) {
        x = Math.min(Math.max(x, MIN), MAX);
        float t = Math.fma(x, LOG2E, ROUNDER);
        float n = t - ROUNDER;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, P0, P1);
        p = Math.fma(p, r, P2);
        p = Math.fma(p, r, P3);
        p = Math.fma(p, r, P4);
        p = Math.fma(p, r, P5);
        float y = Math.fma(p * r, r, r) + 1f;
        int k = (Float.floatToRawIntBits(t) - ROUNDER_BITS) << 23;
        return Float.intBitsToFloat(Float.floatToRawIntBits(y) + k);
    }

    /** g[i] = silu(g[i]) * u[i] = g[i] / (1 + exp(-g[i])) * u[i] for i in [from, to); scratch holds to-from floats. */
    public static void siluMul(float[] g, float[] u, int from, int to, float[] scratch) {
        int n = to - from;
        exp(g, from, scratch, 0, n, -1f, 0f);
        int i = 0;
        for (; i + L <= n; i += L) {
            FloatVector x = FloatVector.fromArray(S, g, from + i);
            FloatVector den = FloatVector.fromArray(S, scratch, i).add(1f);
            x.div(den).mul(FloatVector.fromArray(S, u, from + i)).intoArray(g, from + i);
        }
        for (; i < n; i++) g[from + i] = g[from + i] / (scratch[i] + 1f) * u[from + i];
    }

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;

    /**
     * sum_j p[pFrom + j] * (logP[pFrom + j] - (z[zFrom + j] - shift)) for j < n: KL(P || Q) over one row, with Q's log
     * probabilities given as logits z and their log-sum-exp {@code shift}. Every term is small where P has mass (the two
     * log-probabilities nearly agree), so float lanes lose nothing a double sum would keep; lanes are added in index
     * order, then the tail (fixed order: the same bits on any thread count).
     */
    public static double klDivergence(float[] p, float[] logP, int pFrom, float[] z, int zFrom, float shift, int n) {
        FloatVector acc = FloatVector.zero(S);
        int j = 0;
        for (; j + L <= n; j += L) {
            FloatVector d = FloatVector.fromArray(S, logP, pFrom + j).sub(FloatVector.fromArray(S, z, zFrom + j)).add(shift);
            acc = FloatVector.fromArray(S, p, pFrom + j).fma(d, acc);
        }
        float[] lanes = new float[L];
        acc.intoArray(lanes, 0);
        double s = 0;
        for (float lane : lanes) s += lane;
        for (; j < n; j++) s += (double) p[pFrom + j] * (logP[pFrom + j] - (z[zFrom + j] - shift));
        return s;
    }

    /** sum_j a[aFrom + j] * b[j] for j < n, in double (lane-wise fma, then the lanes, then the tail: fixed order). */
    public static double dot(double[] a, int aFrom, double[] b, int n) {
        DoubleVector acc = DoubleVector.zero(D);
        int j = 0;
        for (int upper = D.loopBound(n); j < upper; j += D.length())
            acc = DoubleVector.fromArray(D, a, aFrom + j).fma(DoubleVector.fromArray(D, b, j), acc);
        double s = acc.reduceLanes(VectorOperators.ADD);
        for (; j < n; j++) s += a[aFrom + j] * b[j];
        return s;
    }
}
