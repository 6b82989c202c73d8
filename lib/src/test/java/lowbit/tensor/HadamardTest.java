package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class HadamardTest {
    /** Orders the models need (576, 1536 default; 896 Qwen2-0.5B; 3072 Qwen3; 48 a tiny model) and QuaRot's Paley ones. */
    private static final int[] NEEDED = {12, 20, 24, 28, 36, 40, 48, 60, 64, 108, 140, 576, 896, 1536, 3072};

    @Test
    void everyConstructibleOrderUpTo4096IsOrthonormalWithEntriesPlusMinusOneOverRootN() {
        List<Integer> built = new ArrayList<>();
        for (int n = 1; n <= 4096; n++) if (Hadamard.exists(n)) built.add(n);
        for (int n : NEEDED) assertTrue(built.contains(n), "order " + n);
        for (int n : built) {
            double[] m = Hadamard.of(n, "test").matrix();
            double e = 1 / Math.sqrt(n);
            // signs packed 64 to a long: row i . row j = n - 2 popcount(i xor j), exact for +-1 entries
            int words = (n + 63) / 64;
            long[] bits = new long[n * words];
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double v = m[i * n + j];
                    if (v != e && v != -e) throw new AssertionError("order " + n + " entry [" + i + "][" + j + "] = " + v);
                    if (v < 0) bits[i * words + j / 64] |= 1L << (j % 64);
                }
            for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++) {
                    int differ = 0;
                    for (int w = 0; w < words; w++) differ += Long.bitCount(bits[i * words + w] ^ bits[j * words + w]);
                    if (2 * differ != n) throw new AssertionError("order " + n + ": rows " + i + " and " + j + " are not orthogonal");
                }
        }
    }

    @Test
    void orthonormalInDoubleArithmeticToo() {
        for (int n : new int[]{12, 28, 36, 40, 48, 140, 576}) {
            double[] m = Hadamard.of(n, "test").matrix();
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int k = 0; k < n; k++) s += m[i * n + k] * m[j * n + k];
                    assertEquals(i == j ? 1 : 0, s, 1e-12, "order " + n + " (M M^T)[" + i + "][" + j + "]");
                }
        }
    }

    @Test
    void paleyIOfOrderFourAndTwelveAsWorkedByHand() {
        // q = 3: chi(1) = 1, chi(2) = -1; rows [1 1 1 1], [-1, 1 + 0, chi(1), chi(2)], then cyclic shifts of Q
        assertArrayEquals(new int[][]{{1, 1, 1, 1}, {-1, 1, 1, -1}, {-1, -1, 1, 1}, {-1, 1, -1, 1}}, Hadamard.paleyI(3));
        // q = 11: residues {1, 3, 4, 5, 9}; row 1 = [-1, 1, chi(1..10)], row 2 its cyclic shift of the Q part
        int[][] h = Hadamard.paleyI(11);
        assertArrayEquals(new int[]{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, h[0]);
        assertArrayEquals(new int[]{-1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1}, h[1]);
        assertArrayEquals(new int[]{-1, -1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1}, h[2]);
        // order 12 is Paley I, p = 1: M = K / sqrt(12)
        double[] m = Hadamard.of(12, "test").matrix();
        for (int j = 0; j < 12; j++) assertEquals(h[1][j] / Math.sqrt(12), m[12 + j], 0, "M[1][" + j + "]");
    }

    @Test
    void paleyIIOfOrderTwelveAndTwentyEightAsWorkedByHand() {
        // q = 5, residues {1, 4}: conference row 0 = [0 1 1 1 1 1], row 1 = [1 0 1 -1 -1 1];
        // 0 -> [[1 -1] [-1 -1]], +-1 -> +-[[1 1] [1 -1]]
        int[][] h = Hadamard.paleyII(5);
        assertArrayEquals(new int[]{1, -1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, h[0]);
        assertArrayEquals(new int[]{-1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1}, h[1]);
        assertArrayEquals(new int[]{1, 1, 1, -1, 1, 1, -1, -1, -1, -1, 1, 1}, h[2]);
        // q = 13, residues {1, 3, 4, 9, 10, 12}: order 28 is Paley II only; its row 2 is conference row 1's top half
        int[] row2 = {1, 1, 1, -1, 1, 1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, 1, 1};
        double[] m = Hadamard.of(28, "test").matrix();
        for (int j = 0; j < 28; j++) assertEquals(row2[j] / Math.sqrt(28), m[2 * 28 + j], 0, "M[2][" + j + "]");
    }

    @Test
    void theKroneckerLayoutPutsThePaleyFactorFirst() {
        // 24 = 12 x 2, index a * 2 + b: row a = 1, b = 1 is K12's row 1 (hand-written above) times S2's row 1 [1, -1]
        int[] k1 = {-1, 1, 1, -1, 1, 1, 1, -1, -1, -1, 1, -1};
        double[] m = Hadamard.of(24, "test").matrix();
        for (int c = 0; c < 12; c++) {
            assertEquals(k1[c] / Math.sqrt(24), m[3 * 24 + 2 * c], 0);
            assertEquals(-k1[c] / Math.sqrt(24), m[3 * 24 + 2 * c + 1], 0);
        }
        assertEquals("Hadamard[1536 = 12 x 128]", Hadamard.of(1536, "x").toString());
        assertEquals("Hadamard[576 = 36 x 16]", Hadamard.of(576, "x").toString());
        assertEquals("Hadamard[896 = 28 x 32]", Hadamard.of(896, "x").toString());
        assertEquals("Hadamard[64]", Hadamard.of(64, "x").toString());
    }

    @Test
    void matrixIsExactlyWhatTheTransformsApply() {
        for (int n : new int[]{1, 2, 12, 20, 40, 48, 64, 576}) {
            Hadamard h = Hadamard.of(n, "test");
            double[] m = h.matrix();
            double[] eye = new double[n * n];
            float[] eyeF = new float[n * n];
            for (int i = 0; i < n; i++) eye[i * n + i] = eyeF[i * n + i] = 1;
            h.transformRows(eye, n);
            assertArrayEquals(m, eye, 0, "order " + n + " double");
            try (Parallel par = new Parallel(2)) {
                h.transformRows(eyeF, n, par);
            }
            for (int i = 0; i < n * n; i++) assertEquals((float) m[i], eyeF[i], 0, "order " + n + " float, entry " + i);
        }
    }

    @Test
    void transformsEqualTheDenseProduct() {
        Random rnd = new Random(13);
        for (int n : new int[]{1, 2, 4, 8, 12, 16, 20, 28, 32, 36, 40, 48, 60, 64, 108, 140, 256, 576, 896, 1536}) {
            Hadamard h = Hadamard.of(n, "test");
            double[] m = h.matrix();
            for (int rows : new int[]{1, 3, 7}) {
                double[] x = new double[rows * n];
                for (int i = 0; i < x.length; i++) x[i] = rnd.nextGaussian() * (i % 17 == 0 ? 40 : 1);
                double[] want = new double[rows * n];
                for (int r = 0; r < rows; r++)
                    for (int j = 0; j < n; j++) {
                        double s = 0;
                        for (int k = 0; k < n; k++) s += x[r * n + k] * m[k * n + j];
                        want[r * n + j] = s;
                    }
                float[] xf = new float[rows * n];
                for (int i = 0; i < x.length; i++) xf[i] = (float) x[i];
                double[] xd = x.clone();
                h.transformRows(xd, rows);
                float[] one = xf.clone(), two = xf.clone();
                try (Parallel p1 = new Parallel(1); Parallel p2 = new Parallel(2)) {
                    h.transformRows(one, rows, p1);
                    h.transformRows(two, rows, p2);
                }
                assertArrayEquals(one, two, "order " + n + ": 1 and 2 threads differ");
                for (int r = 0; r < rows; r++) {
                    double norm = 0;
                    for (int j = 0; j < n; j++) norm = Math.max(norm, Math.abs(want[r * n + j]));
                    for (int j = 0; j < n; j++) {
                        int i = r * n + j;
                        assertEquals(want[i], xd[i], 1e-12 * norm, "order " + n + " double [" + r + "][" + j + "]");
                        assertEquals(want[i], one[i], 1e-5 * norm, "order " + n + " float [" + r + "][" + j + "]");
                    }
                }
            }
        }
    }

    @Test
    void onlyTheGivenRowsChange() {
        Hadamard h = Hadamard.of(12, "test");
        float[] x = new float[3 * 12];
        java.util.Arrays.fill(x, 2f);
        try (Parallel par = new Parallel(2)) {
            h.transformRows(x, 2, par);
        }
        for (int j = 24; j < 36; j++) assertEquals(2f, x[j]);
        assertEquals("5 rows of 12 values need 60 elements, have 36",
                assertThrows(IllegalArgumentException.class, () -> h.transformRows(new double[36], 5)).getMessage());
    }

    @Test
    void ordersWithoutAConstructionAreRefusedNamingWhatNeedsThem() {
        for (int n : new int[]{52, 92, 116, 156, 172, 7, 3, 0, -4}) assertFalse(Hadamard.exists(n), "order " + n);
        String m = assertThrows(IllegalArgumentException.class, () -> Hadamard.of(172, "layer 3 mlp.down_proj input (172)")).getMessage();
        assertEquals("layer 3 mlp.down_proj input (172): no Hadamard matrix of order 172 (orders built here are m * 2^k with m = 1 or a Paley"
                + " order up to 256, q + 1 for a prime q = 3 mod 4 or 2(q + 1) for a prime q = 1 mod 4: m in 1, 12, 20, 28, 36, 44, 60, 68, 76, 84,"
                + " 104, 108, 124, 132, 140, 148, 164, 180, 196, 200, 204, 212, 220, 228, 252; the nearest are 168 and 176)", m);
        assertFalse(m.contains("\n"), m);
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Hadamard.of(52, "q")).getMessage()
                .contains("no Hadamard matrix of order 52 ("));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> Hadamard.of(7, "head")).getMessage()
                .endsWith("the nearest are 4 and 8)"));
        String zero = assertThrows(IllegalArgumentException.class, () -> Hadamard.of(0, "emb")).getMessage();
        assertTrue(zero.startsWith("emb: no Hadamard matrix of order 0 ("), zero);
        assertTrue(zero.endsWith("m in 1, 12, 20, 28, 36, 44, 60, 68, 76, 84, 104, 108, 124, 132, 140, 148, 164, 180, 196, 200, 204, 212, 220, 228, 252)"), zero);
        // 1020 = 255 x 4 and 1019 is a prime = 3 mod 4, but a Paley factor above 256 is not built
        assertFalse(Hadamard.exists(1020));
        assertTrue(Hadamard.exists(1008)); // 63 x 16 -> 252 x 4, Paley I q = 251
    }
}
