package lowbit.quant.mixed;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Random;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;
import org.junit.jupiter.api.Test;

class LayerOptionTest {

    @Test
    void handComputedGroupedStorage() {
        // 576 x 576 at w4g128: 4.5 groups per row round up to 5, so 2880 (scale, zero) pairs.
        long expected = 576L * 576 * 4 + 2880L * 16 + 2880L * 4;
        assertEquals(1_384_704L, expected);
        assertEquals(expected, LayerOption.storageBits(576, 576, QuantConfig.group(4, 128)));
        LayerOption o = LayerOption.of("q", 576, 576, QuantConfig.group(4, 128), 0.5);
        assertEquals(4, o.bits());
        assertEquals(331_776L, o.parameters());
        assertEquals(expected / 331_776.0, o.bitsPerWeight(), 1e-12);
        // Act-order's group index adds 32 bits per input column.
        assertEquals(expected + 32L * 576, LayerOption.storageBits(576, 576, QuantConfig.group(4, 128), true));
    }

    @Test
    void equalsWhatTheQuantizedWeightReports() {
        Random rnd = new Random(7);
        List<QuantConfig> configs = List.of(
                QuantConfig.group(3, 128), QuantConfig.group(2, 32), QuantConfig.group(8, 7), QuantConfig.group(4, 1000),
                QuantConfig.perChannel(4), QuantConfig.perTensor(3), QuantConfig.q4_1(), QuantConfig.absmaxPerChannel(8),
                QuantConfig.group(4, 64).withSymmetric(true), QuantConfig.group(5, 16).withZeroPoint(ZeroPoint.AWQ),
                QuantConfig.group(6, 24).withScaleFormat(ScaleFormat.F32), QuantConfig.perChannel(3).withZeroPoint(ZeroPoint.FLOAT_MIN),
                QuantConfig.group(3, 128).withMseClip(true));
        int[][] shapes = {{3, 200}, {5, 64}, {1, 1}, {7, 129}};
        for (QuantConfig cfg : configs)
            for (int[] s : shapes) {
                float[] w = new float[s[0] * s[1]];
                for (int i = 0; i < w.length; i++) w[i] = (float) rnd.nextGaussian();
                QuantizedWeight q = Rtn.quantize("w", w, s[0], s[1], cfg);
                assertEquals(q.storageBits(), LayerOption.storageBits(s[0], s[1], cfg), cfg.label() + " " + s[0] + "x" + s[1]);
                assertEquals(q.bitsPerWeight(), LayerOption.of("w", s[0], s[1], cfg, 0).bitsPerWeight(), 0);
            }
    }

    @Test
    void rejectsBadValues() {
        assertThrows(IllegalArgumentException.class, () -> new LayerOption("a", 9, 10, 90, 0));
        assertThrows(IllegalArgumentException.class, () -> new LayerOption("a", 1, 10, 10, 0));
        assertThrows(IllegalArgumentException.class, () -> new LayerOption("", 4, 10, 40, 0));
        assertThrows(IllegalArgumentException.class, () -> new LayerOption("a", 4, 0, 40, 0));
        assertThrows(IllegalArgumentException.class, () -> new LayerOption("a", 4, 10, 0, 0));
        var e = assertThrows(IllegalArgumentException.class, () -> new LayerOption("a", 4, 10, 40, Double.NaN));
        assertTrue(e.getMessage().contains("a at 4 bits"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LayerOption.storageBits(0, 4, QuantConfig.perChannel(4)));
    }
}
