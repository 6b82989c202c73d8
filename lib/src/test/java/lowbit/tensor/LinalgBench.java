package lowbit.tensor;

import java.util.Locale;
import java.util.SplittableRandom;

/**
 * Times GPTQ's linear algebra against the textbook scalar code in the same run. Run after test-compile:
 * java --add-modules jdk.incubator.vector -cp lib/target/classes:lib/target/test-classes lowbit.tensor.LinalgBench
 */
public final class LinalgBench {
    public static void main(String[] args) {
        Locale.setDefault(Locale.ROOT);
        boolean naive = args.length == 0 || !args[0].equals("--fast-only");
        try (Parallel one = new Parallel(1); Parallel two = new Parallel(2)) {
            for (int n : new int[] {576, 1536}) chain(n, one, two, naive);
            for (int n : new int[] {576, 1536}) gram(2048, n, one, two, naive);
        }
    }

    static double[] spd(int n, long seed) {
        // X^T X / m + I for a random X: the shape of a damped GPTQ Hessian
        SplittableRandom rnd = new SplittableRandom(seed);
        int m = n + 16;
        float[] x = new float[m * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        double[] h = new double[n * n];
        try (Parallel p = new Parallel(Parallel.defaultThreads())) {
            Gram.accumulate(h, x, m, n, 1.0 / m, p);
        }
        for (int i = 0; i < n; i++) h[i * n + i] += 0.01;
        return h;
    }

    private static void chain(int n, Parallel one, Parallel two, boolean naive) {
        double[] h = spd(n, n);
        int reps = n <= 576 ? 20 : 6;
        for (Parallel par : new Parallel[] {one, two}) {
            double best = Double.MAX_VALUE, fl = 0, fi = 0, fu = 0;
            for (int rep = 0; rep < reps; rep++) {
                double[] a = h.clone();
                long t0 = System.nanoTime();
                if (!Cholesky.factorLower(a, n, par)) throw new IllegalStateException("not PD");
                long t1 = System.nanoTime();
                double[] inv = Cholesky.inverseFromLower(a, n, par);
                long t2 = System.nanoTime();
                if (!Cholesky.factorUpper(inv, n, par)) throw new IllegalStateException("inverse not PD");
                long t3 = System.nanoTime();
                if ((t3 - t0) * 1e-9 < best) {
                    best = (t3 - t0) * 1e-9;
                    fl = (t1 - t0) * 1e-9;
                    fi = (t2 - t1) * 1e-9;
                    fu = (t3 - t2) * 1e-9;
                }
            }
            double flops = 4.0 * n * n * n / 3; // (n^3/3) each for potrf, trtri, lauum, potrf
            System.out.printf("chain n=%d threads=%d: %.1f ms (factorLower %.1f, inverse %.1f, factorUpper %.1f), %.1f GFLOPS%n",
                    n, par.threads(), best * 1e3, fl * 1e3, fi * 1e3, fu * 1e3, flops / best * 1e-9);
        }
        if (naive) {
            long t0 = System.nanoTime();
            double[] l = NaiveLinalg.choleskyLower(h, n);
            double[] inv = NaiveLinalg.inverseFromLower(l, n);
            NaiveLinalg.choleskyUpper(inv, n);
            System.out.printf("chain n=%d naive scalar: %.1f ms%n", n, (System.nanoTime() - t0) * 1e-6);
        }
    }

    private static void gram(int rows, int n, Parallel one, Parallel two, boolean naive) {
        SplittableRandom rnd = new SplittableRandom(rows + n);
        float[] x = new float[rows * n];
        for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
        double[] h = new double[n * n];
        double flops = (double) rows * n * n; // 2 * rows * n^2 / 2: one triangle
        for (Parallel par : new Parallel[] {one, two}) {
            double best = Double.MAX_VALUE;
            for (int rep = 0; rep < 10; rep++) {
                long t0 = System.nanoTime();
                Gram.accumulate(h, x, rows, n, 1.0 / 128, par);
                best = Math.min(best, (System.nanoTime() - t0) * 1e-9);
            }
            System.out.printf("gram %dx%d threads=%d: %.1f ms, %.1f GFLOPS%n", rows, n, par.threads(), best * 1e3,
                    flops / best * 1e-9);
        }
        if (naive) {
            long t0 = System.nanoTime();
            NaiveLinalg.gram(h, x, rows, n, 1.0 / 128);
            double s = (System.nanoTime() - t0) * 1e-9;
            System.out.printf("gram %dx%d naive scalar: %.1f ms, %.2f GFLOPS%n", rows, n, s * 1e3, flops / s * 1e-9);
        }
    }
}
