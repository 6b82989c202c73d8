package lowbit.tensor;

import java.util.Locale;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Rows per second of the online Hadamard against the dense product x M (float, vectorized) it replaces, on the
 * shapes QuaRot's online rotations meet: down_proj's 1536-wide input and a 64-wide head. Run after test-compile:
 * java --add-modules jdk.incubator.vector -cp lib/target/classes:lib/target/test-classes lowbit.tensor.HadamardBench
 */
public final class HadamardBench {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    public static void main(String[] args) {
        Locale.setDefault(Locale.ROOT);
        System.out.println("vector lanes " + S.length());
        try (Parallel one = new Parallel(1); Parallel two = new Parallel(2)) {
            for (int n : new int[] {64, 576, 1536}) {
                Hadamard h = Hadamard.of(n, "bench");
                int rows = n == 64 ? 2048 * 9 : 2048; // 9 heads of 64 per token on the default model
                float[] x = new float[rows * n];
                SplittableRandom rnd = new SplittableRandom(n);
                for (int i = 0; i < x.length; i++) x[i] = (float) rnd.nextGaussian();
                double[] md = h.matrix();
                float[] m = new float[md.length];
                for (int i = 0; i < m.length; i++) m[i] = (float) md[i];
                for (Parallel par : new Parallel[] {one, two}) {
                    double fast = best(() -> h.transformRows(x, rows, par), 30);
                    float[] y = new float[rows * n];
                    double dense = best(() -> dense(x, m, y, rows, n, par), n >= 1536 ? 3 : 10);
                    System.out.printf("%s threads %d: transform %.3g rows/s, dense x M %.3g rows/s, %.1fx%n",
                            h, par.threads(), rows / fast, rows / dense, dense / fast);
                }
            }
        }
    }

    private static double best(Runnable r, int reps) {
        double best = Double.MAX_VALUE;
        for (int i = 0; i < reps; i++) {
            long t = System.nanoTime();
            r.run();
            best = Math.min(best, (System.nanoTime() - t) / 1e9);
        }
        return best;
    }

    private static void dense(float[] x, float[] m, float[] y, int rows, int n, Parallel par) {
        par.forEach(rows, r -> {
            int o = r * n;
            java.util.Arrays.fill(y, o, o + n, 0f);
            for (int k = 0; k < n; k++) {
                FloatVector xk = FloatVector.broadcast(S, x[o + k]);
                int j = 0;
                for (; j + S.length() <= n; j += S.length())
                    FloatVector.fromArray(S, m, k * n + j).fma(xk, FloatVector.fromArray(S, y, o + j)).intoArray(y, o + j);
                for (; j < n; j++) y[o + j] += x[o + k] * m[k * n + j];
            }
        });
    }
}
