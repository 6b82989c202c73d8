package lowbit.eval;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.stats.Percentiles;
import lowbit.tensor.VectorMath;

/**
 * How far a quantized model's next-token distributions are from the float model's over the same windows, as
 * llama.cpp's {@code perplexity --kl-divergence} reports it (METHODS.md section 1): per scored position
 * KL(P_float || P_quant) over the whole vocabulary, the share of positions where both argmax tokens agree ("same
 * top p"), the RMS of Δp = p_quant(target) - p_float(target), and ln(PPL_q / PPL_f) with its uncertainty.
 *
 * <p>Both distributions are float32 log-softmax rows; every sum is accumulated in double. Unlike llama.cpp, which
 * stores the float model's log-probs as 16-bit values and drops vocabulary entries with log p below -16 from the
 * sum, the KL here is exact over the vocabulary. Uncertainties follow llama.cpp's formulas: the standard error of a
 * mean is sqrt((E[x^2] - E[x]^2) / (n - 1)), reported as 0 for 10 positions or fewer; the covariance of the two
 * mean NLLs enters the uncertainty of their difference (0 below 10 positions); the RMS's uncertainty is
 * propagated from the mean of Δp^2 (0.5 / rms times its standard error); percentiles interpolate linearly at
 * fraction x (n - 1) of the sorted values.
 */
public final class KlDivergence {
    private KlDivergence() {}

    /** One scored position: KL(P_float || P_quant) and whether both argmax tokens are the same. */
    public record Position(double kld, boolean sameTop) {}

    /**
     * Compares two log-softmax rows of {@code vocab} entries. {@code scratch} (at least vocab floats) receives
     * p_float; pass one per thread.
     */
    public static Position compare(float[] logFloat, float[] logQuant, int vocab, float[] scratch) {
        return compare(logFloat, 0, logQuant, vocab, scratch);
    }

    /** As above, with the float row at {@code offset} of {@code logFloat} (a window's rows kept in one array). */
    public static Position compare(float[] logFloat, int offset, float[] logQuant, int vocab, float[] scratch) {
        VectorMath.exp(logFloat, offset, scratch, 0, vocab, 1f, 0f);
        double kld = 0;
        int topF = 0, topQ = 0;
        for (int j = 0; j < vocab; j++) {
            // 0 x (-inf) is 0: a token the float model never predicts contributes nothing
            float f = logFloat[offset + j];
            if (scratch[j] > 0) kld += (double) scratch[j] * ((double) f - logQuant[j]);
            if (f > logFloat[offset + topF]) topF = j;
            if (logQuant[j] > logQuant[topQ]) topQ = j;
        }
        return new Position(kld, topF == topQ);
    }

    /**
     * The statistics over every scored position.
     *
     * @param kld      KL(P_float || P_quant) per position
     * @param nllQuant -log p_quant(target) per position
     * @param nllFloat -log p_float(target) per position
     * @param sameTop  whether the argmax tokens agree, per position
     */
    public record Stats(long positions, double mean, double meanStderr, double median, double p90, double p95, double p99,
                        double max, double sameTop, double sameTopStderr, double rmsDp, double rmsDpStderr,
                        double lnPplRatio, double lnPplRatioStderr, double pplRatio, double pplRatioStderr,
                        double pplQuant, double pplFloat) {

        /** The {@code kld} object of {@code ppl --json} and of store rows; keys documented in the README. */
        public Map<String, Object> fields() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("positions", positions);
            m.put("mean", mean);
            m.put("mean_stderr", meanStderr);
            m.put("median", median);
            m.put("p90", p90);
            m.put("p95", p95);
            m.put("p99", p99);
            m.put("max", max);
            m.put("same_top_p", sameTop);
            m.put("same_top_p_stderr", sameTopStderr);
            m.put("rms_dp", rmsDp);
            m.put("rms_dp_stderr", rmsDpStderr);
            m.put("ln_ppl_ratio", lnPplRatio);
            m.put("ln_ppl_ratio_stderr", lnPplRatioStderr);
            m.put("ppl_ratio", pplRatio);
            m.put("ppl_ratio_stderr", pplRatioStderr);
            m.put("ppl_float", pplFloat);
            return m;
        }
    }

    public static Stats of(double[] kld, double[] nllQuant, double[] nllFloat, boolean[] sameTop) {
        int n = kld.length;
        if (n == 0 || nllQuant.length != n || nllFloat.length != n || sameTop.length != n)
            throw new IllegalArgumentException("KL divergence needs the same positive number of positions in every array");
        double sk = 0, sk2 = 0, sq = 0, sq2 = 0, sf = 0, sf2 = 0, sqf = 0, sd2 = 0, sd4 = 0;
        long same = 0;
        for (int i = 0; i < n; i++) {
            sk += kld[i];
            sk2 += kld[i] * kld[i];
            sq += nllQuant[i];
            sq2 += nllQuant[i] * nllQuant[i];
            sf += nllFloat[i];
            sf2 += nllFloat[i] * nllFloat[i];
            sqf += nllQuant[i] * nllFloat[i];
            double dp = Math.exp(-nllQuant[i]) - Math.exp(-nllFloat[i]);
            sd2 += dp * dp;
            sd4 += dp * dp * dp * dp;
            if (sameTop[i]) same++;
        }
        double[] k = meanAndStderr(sk, sk2, n);
        double[] q = meanAndStderr(sq, sq2, n);
        double[] f = meanAndStderr(sf, sf2, n);
        double cov = n < 10 ? 0 : (sqf / n - (sq / n) * (sf / n)) / (n - 1);
        double ln = q[0] - f[0];
        double lnErr = Math.sqrt(Math.max(0, q[1] * q[1] + f[1] * f[1] - 2 * cov));
        double[] mse = meanAndStderr(sd2, sd4, n);
        double rms = Math.sqrt(mse[0]);
        double rmsErr = rms > 0 ? 0.5 / rms * mse[1] : 0;
        double top = (double) same / n;
        double topErr = n > 1 ? Math.sqrt(top * (1 - top) / (n - 1)) : 0;
        double[] sorted = kld.clone();
        Arrays.sort(sorted);
        double ratio = Math.exp(ln);
        return new Stats(n, k[0], k[1], Percentiles.of(sorted, 0.5), Percentiles.of(sorted, 0.90), Percentiles.of(sorted, 0.95),
                Percentiles.of(sorted, 0.99), sorted[n - 1], top, topErr, rms, rmsErr, ln, lnErr, ratio, ratio * lnErr,
                Math.exp(q[0]), Math.exp(f[0]));
    }

    /** llama.cpp's mean_and_uncertainty: the mean, and its standard error (0 for 10 values or fewer). */
    static double[] meanAndStderr(double sum, double sum2, long n) {
        double mean = sum / n;
        double var = sum2 / n - mean * mean;
        return new double[] {mean, var > 0 && n > 10 ? Math.sqrt(var / (n - 1)) : 0};
    }
}
