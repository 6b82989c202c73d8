package lowbit.quant;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import org.junit.jupiter.api.Test;

/** Hand-computed cases of the GPTQ reference's grid (quant.py), one per rule. */
class RtnTest {
    private static QuantConfig f32(int bits, boolean sym, int group) {
        return new QuantConfig(bits, sym, group, ZeroPoint.INTEGER, ScaleFormat.F32, false);
    }

    private static float[] rtn(QuantConfig cfg, int rows, int cols, float... w) {
        return Rtn.quantize("test.weight", w, rows, cols, cfg).dequantize();
    }

    @Test
    void asymmetricPerChannelRangeWithZero() {
        // min -1, max 2, 2 bits: scale 1, zero round(1) = 1; 0.5 rounds half to even, to 0.
        QuantizedWeight q = Rtn.quantize("w", new float[] {-1, 0, 0.5f, 2}, 1, 4, f32(2, false, QuantConfig.PER_CHANNEL));
        assertArrayEquals(new byte[] {0, 1, 1, 3}, q.codes());
        assertArrayEquals(new float[] {1}, q.scales());
        assertArrayEquals(new float[] {1}, q.zeros());
        assertArrayEquals(new float[] {-1, 0, 0, 2}, q.dequantize());
    }

    @Test
    void rangeWithoutZeroIsWidenedToIncludeIt() {
        // [1, 6] becomes [0, 6]: scale 2, zero 0; x/scale = .5, 1, 1.5, 3 -> 0, 1, 2, 3 (ties to even).
        assertArrayEquals(new float[] {0, 2, 4, 6}, rtn(f32(2, false, -1), 1, 4, 1, 2, 3, 6));
        // All negative: [-6, -0.5] becomes [-6, 0]; zero = round(6 / 2) = 3.
        assertArrayEquals(new float[] {-6, -4, -2, 0}, rtn(f32(2, false, -1), 1, 4, -6, -3, -2, -0.5f));
    }

    @Test
    void constantRows() {
        // An all-zero row gets the range [-1, 1] (the reference's rule) and comes back as zeros.
        QuantizedWeight zero = Rtn.quantize("w", new float[4], 1, 4, f32(2, false, -1));
        assertArrayEquals(new float[] {2f / 3f}, zero.scales());
        assertArrayEquals(new float[] {2}, zero.zeros());
        assertArrayEquals(new float[4], zero.dequantize());
        // A constant positive row: range [0, 5], scale 5/3, code 3, exact.
        assertArrayEquals(new float[] {5, 5, 5}, rtn(f32(2, false, -1), 1, 3, 5, 5, 5));
        // Symmetric, constant negative: scale 10/7 rounds UP in float32, so -5/scale = -3.4999999 -> -3, code 1.
        float s = (float) (10.0 / 7);
        assertArrayEquals(new float[] {-3 * s, -3 * s}, rtn(f32(3, true, -1), 1, 2, -5, -5));
    }

    @Test
    void symmetricUsesTheReferenceGrid() {
        // max|x| = 3, 3 bits: scale 6/7, zero 4; 3/(6/7) = 3.5 rounds to 4, code 8 clamps to 7.
        QuantizedWeight q = Rtn.quantize("w", new float[] {-2, 1, 0.5f, 3}, 1, 4, f32(3, true, -1));
        assertNull(q.zeros());
        assertArrayEquals(new byte[] {2, 5, 5, 7}, q.codes());
        float s = 6f / 7f;
        assertArrayEquals(new float[] {-2 * s, s, s, 3 * s}, q.dequantize());
    }

    @Test
    void groupsWithAShorterLastGroup() {
        // 6 columns in groups of 4: [0,4) and [4,6) each get their own range.
        QuantizedWeight q = Rtn.quantize("w", new float[] {0, 1, 2, 3, -10, 10}, 1, 6, f32(2, false, 4));
        assertEquals(2, q.groups());
        assertArrayEquals(new float[] {1, 20f / 3f}, q.scales());
        assertArrayEquals(new float[] {0, 2}, q.zeros());   // round(10 / (20/3)) = round(1.5) = 2
        assertArrayEquals(new float[] {0, 1, 2, 3, -40f / 3f, 20f / 3f}, q.dequantize());
    }

    @Test
    void perTensorSharesOneScaleAcrossRows() {
        QuantizedWeight q = Rtn.quantize("w", new float[] {0, 3, -3, 1}, 2, 2, new QuantConfig(2, false, 0, ZeroPoint.INTEGER, ScaleFormat.F32, false));
        assertArrayEquals(new float[] {2}, q.scales());    // (3 - -3) / 3
        assertArrayEquals(new float[] {2}, q.zeros());     // round(3/2) = 2 (half to even)
        assertArrayEquals(new float[] {0, 2, -4, 0}, q.dequantize());
    }

    @Test
    void fp16ScalesAreRoundedBeforeUse() {
        // scale 0.1/3 is not an fp16 number: the stored scale is its fp16 rounding and codes use it.
        QuantizedWeight q = Rtn.quantize("w", new float[] {0, 0.1f}, 1, 2, QuantConfig.perChannel(2));
        float s16 = Float.float16ToFloat(Float.floatToFloat16(0.1f / 3));
        assertEquals(s16, q.scales()[0]);
        assertArrayEquals(new float[] {0, 3 * s16}, q.dequantize());
    }

    @Test
    void floatMinGridLikeQ4_1() {
        // [1, 4] is not widened: scale 1, min 1, exact.
        QuantConfig cfg = new QuantConfig(2, false, -1, ZeroPoint.FLOAT_MIN, ScaleFormat.F32, false);
        QuantizedWeight q = Rtn.quantize("w", new float[] {1, 2, 3, 4}, 1, 4, cfg);
        assertArrayEquals(new byte[] {0, 1, 2, 3}, q.codes());
        assertArrayEquals(new float[] {1}, q.zeros());
        assertArrayEquals(new float[] {1, 2, 3, 4}, q.dequantize());
        assertArrayEquals(new float[] {7, 7}, rtn(cfg, 1, 2, 7, 7));
    }

    @Test
    void mseClipNeverLosesToMinMax() {
        Random rnd = new Random(1);
        float[] w = new float[64 * 96];
        for (int i = 0; i < w.length; i++) w[i] = (float) (rnd.nextGaussian() * (i % 37 == 0 ? 8 : 1));
        for (boolean sym : new boolean[] {false, true}) {
            QuantConfig plain = f32(3, sym, 32);
            float[] a = rtn(plain, 64, 96, w), b = rtn(plain.withMseClip(true), 64, 96, w);
            assertTrue(err(w, b, 2.4) <= err(w, a, 2.4), "sym=" + sym);
            assertTrue(err(w, b, 2) < err(w, a, 2), "the clip search lowers the squared error too, sym=" + sym);
        }
    }

    private static double err(float[] w, float[] q, double p) {
        double e = 0;
        for (int i = 0; i < w.length; i++) e += Math.pow(Math.abs(w[i] - q[i]), p);
        return e;
    }

    @Test
    void bitsPerWeightCountsScalesZerosAndGroupIndex() {
        QuantizedWeight q = Rtn.quantize("w", new float[4 * 576], 4, 576, QuantConfig.group(4, 128));
        assertEquals(4 + (5 * 16 + 5 * 4) / 576.0, q.bitsPerWeight(), 1e-12);   // 576 = 4.5 groups of 128
        assertEquals(5.0, Rtn.quantize("w", new float[64], 2, 32, QuantConfig.q4_1()).bitsPerWeight(), 1e-12);
        assertEquals(3 + 16 / 64.0, Rtn.quantize("w", new float[128], 2, 64, f32(3, true, -1).withScaleFormat(ScaleFormat.F16)).bitsPerWeight(), 1e-12);
    }

    @Test
    void nonFiniteWeightsAreRefusedByName() {
        var e = assertThrows(IllegalArgumentException.class,
                () -> Rtn.quantize("model.layers.0.mlp.up_proj", new float[] {0, Float.NaN, 1, 2}, 2, 2, QuantConfig.perChannel(4)));
        assertTrue(e.getMessage().contains("model.layers.0.mlp.up_proj") && e.getMessage().contains("[0][1]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Rtn.quantize("w", new float[] {Float.POSITIVE_INFINITY}, 1, 1, QuantConfig.perChannel(4)));
    }

    @Test
    void bitsOutsideTwoToEightAreRefused() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantConfig.perChannel(1)).getMessage().contains("2..8"));
        assertThrows(IllegalArgumentException.class, () -> QuantConfig.perChannel(9));
        assertThrows(IllegalArgumentException.class, () -> QuantConfig.group(4, 0));
    }

    @Test
    void absmaxGridIsSmoothQuantsWeightQuantizer() {
        // max|x| = 2.54, 8 bits: scale 2.54/127 = 0.02; codes round(x/scale) offset by 128.
        QuantConfig cfg = new QuantConfig(8, true, -1, ZeroPoint.ABSMAX, ScaleFormat.F32, false);
        QuantizedWeight q = Rtn.quantize("w", new float[] {-2.54f, 0.01f, 0.03f, 1.0f}, 1, 4, cfg);
        float s = (float) (2.54f / 127.0);
        assertArrayEquals(new float[] {s}, q.scales());
        assertNull(q.zeros());
        assertEquals(1, q.codes()[0]);   // -127 + 128
        assertArrayEquals(new float[] {-127 * s, 0 * s, 2 * s, 50 * s}, q.dequantize());   // 0.5 and 1.5 round to even
        // 4 bits: scale = max / 7, codes -7..7
        float[] w4 = Rtn.quantize("w", new float[] {7, -3.4f, 0}, 1, 3, new QuantConfig(4, true, -1, ZeroPoint.ABSMAX, ScaleFormat.F32, false)).dequantize();
        assertArrayEquals(new float[] {7, -3, 0}, w4);
    }
}
