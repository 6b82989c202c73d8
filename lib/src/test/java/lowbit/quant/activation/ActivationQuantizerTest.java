package lowbit.quant.activation;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;

class ActivationQuantizerTest {

    @Test
    void perTokenEightBitsByHand() {
        float[] x = {
                127f, 2.5f, -3.5f, 0.4f,       // absmax 127 -> scale 127/127 = 1: rint gives 127, 2 (tie to even), -4 (tie to even), 0
                -63.5f, 1.25f, 0.75f, -0.2f};  // absmax 63.5 -> scale 0.5: x/scale = -127, 2.5, 1.5, -0.4 -> -127, 2, 2, -0
        ActivationQuantizer.quantizePerToken(x, 2, 4, 8);
        assertArrayEquals(new float[]{127f, 2f, -4f, 0f, -63.5f, 1f, 1f, -0f}, x, 0f);
    }

    @Test
    void perTokenFourBitsByHand() {
        float[] x = {
                7f, 2.5f, -3.5f, 0.4f,   // q_max 7, absmax 7 -> scale 1: 7, 2, -4, 0
                -14f, 3f, -5f, 1f};      // absmax 14 -> scale 2: x/scale = -7, 1.5, -2.5, 0.5 -> -7, 2, -2, 0 -> times 2
        ActivationQuantizer.quantizePerToken(x, 2, 4, 4);
        assertArrayEquals(new float[]{7f, 2f, -4f, 0f, -14f, 4f, -4f, 0f}, x, 0f);
    }

    @Test
    void twoBitsHaveThreeLevelsPerToken() {
        // q_max = 2^(2-1) - 1 = 1: every value becomes -absmax, 0 or +absmax (x/scale = x/absmax rounds to -1, 0, 1).
        float[] x = {0.3f, -0.6f, 0.49f, 0.51f};
        ActivationQuantizer.quantizePerToken(x, 1, 4, 2);
        assertArrayEquals(new float[]{0f, -0.6f, 0.6f, 0.6f}, x, 0f);
    }

    @Test
    void zeroRowsStayZero() {
        for (int bits = 2; bits <= 8; bits++) {
            float[] x = {0f, 0f, 0f, 3f, -1.5f, 0f, 0f, 0f, 0f};
            ActivationQuantizer.quantizePerToken(x, 3, 3, bits);
            for (int i : new int[]{0, 1, 2, 6, 7, 8}) assertEquals(0f, x[i], 0f, "bits " + bits + " element " + i);
            assertEquals(3f, x[3], 0f, "the absmax element is on the grid");
        }
    }

    @Test
    void tinyRowsUseTheReferenceFloor() {
        // absmax 2e-6 < 1e-5: scale = 1e-5 / 127, so 2e-6 / scale = 25.4 -> 25 (value 25e-5/127) and -3e-8 / scale = -0.38 -> 0.
        float[] x = {2e-6f, -3e-8f};
        ActivationQuantizer.quantizePerToken(x, 1, 2, 8);
        double scale = 1e-5f / 127.0;
        assertEquals((float) (25 * scale), x[0], 0f);
        assertEquals(0f, x[1], 0f);
    }

    @Test
    void applyingTwiceEqualsApplyingOnce() {
        SplittableRandom rnd = new SplittableRandom(11);
        int rows = 64, cols = 37;
        for (int bits = 2; bits <= 8; bits++) {
            float[] x = new float[rows * cols];
            for (int r = 0; r < rows; r++) {
                // magnitudes from 1e-8 (under the 1e-5 floor) to 1e6, one outlier channel in some rows
                double mag = Math.pow(10, -8 + 14 * rnd.nextDouble());
                for (int c = 0; c < cols; c++) x[r * cols + c] = (float) (mag * rnd.nextGaussian());
                if (r % 3 == 0) x[r * cols + rnd.nextInt(cols)] *= 50;
            }
            float[] once = x.clone();
            ActivationQuantizer.quantizePerToken(once, rows, cols, bits);
            float[] twice = once.clone();
            ActivationQuantizer.quantizePerToken(twice, rows, cols, bits);
            ActivationQuantizer.quantizePerToken(twice, rows, cols, bits);
            assertArrayEquals(once, twice, 0f, "bits " + bits);
            assertFalse(java.util.Arrays.equals(x, once), "quantization changed something");

            float[] st = x.clone();
            double scale = 0.37 / ActivationQuantizer.qmax(bits);
            ActivationQuantizer.quantizeWithScale(st, 0, st.length, scale, ActivationQuantizer.qmax(bits));
            float[] st2 = st.clone();
            ActivationQuantizer.quantizeWithScale(st2, 0, st2.length, scale, ActivationQuantizer.qmax(bits));
            assertArrayEquals(st, st2, 0f, "static, bits " + bits);
        }
    }

    @Test
    void staticScaleClipsBeyondTheCalibratedRange() {
        // scale 0.5, 4 bits (q_max 7): x/scale = 2.4, -10, 7.5, 0.5 -> 2, -7 (clamped), 7 (8 after the tie, clamped), 0
        float[] x = {1.2f, -5f, 3.75f, 0.25f};
        ActivationQuantizer.quantizeWithScale(x, 0, 4, 0.5, 7);
        assertArrayEquals(new float[]{1f, -3.5f, 3.5f, 0f}, x, 0f);
    }

    @Test
    void badOptionsAreRejected() {
        var e = assertThrows(IllegalArgumentException.class, () -> ActivationQuantizer.perTokenDynamic(9));
        assertEquals("activation bits must be 2..8, got 9", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ActivationQuantizer.perTokenDynamic(1));
        var z = assertThrows(IllegalArgumentException.class,
                () -> ActivationQuantizer.perTensorStatic(8, Map.of("model.layers.0.mlp.up_proj", 0f)));
        assertTrue(z.getMessage().contains("model.layers.0.mlp.up_proj"), z.getMessage());
    }

    /**
     * q/k/v read one array: the hook rewrites it at q_proj and sees its own output at k_proj and v_proj. What the three
     * matmuls read must be exactly one per-token quantization of the raw input.
     */
    @Test
    void sharedInputsAreQuantizedOnceInTheModel() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] tokens = TinyLlama.windows(1, 24, ckpt.config().vocabSize(), 5)[0];
            Map<String, float[]> raw = new HashMap<>(), seen = new HashMap<>();
            List<float[]> lmHeadInputs = new ArrayList<>();
            ForwardHook before = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    raw.put(linear.name(), java.util.Arrays.copyOf(x, rows * linear.inFeatures()));
                }
            };
            ForwardHook after = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    if (linear.layer() < 0) lmHeadInputs.add(java.util.Arrays.copyOf(x, rows * linear.inFeatures()));
                    else seen.put(linear.name(), java.util.Arrays.copyOf(x, rows * linear.inFeatures()));
                }
            };
            try (var a = model.addHook(before); var q = model.addHook(ActivationQuantizer.perTokenDynamic(3)); var b = model.addHook(after)) {
                model.logProbs(tokens);
            }
            String p = "model.layers.1.";
            float[] expected = raw.get(p + "self_attn.q_proj").clone();
            ActivationQuantizer.quantizePerToken(expected, tokens.length, 64, 3);
            for (String m : new String[]{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"})
                assertArrayEquals(expected, seen.get(p + m), 0f, m);
            expected = raw.get(p + "mlp.gate_proj").clone();
            ActivationQuantizer.quantizePerToken(expected, tokens.length, 64, 3);
            assertArrayEquals(expected, seen.get(p + "mlp.gate_proj"), 0f);
            assertArrayEquals(expected, seen.get(p + "mlp.up_proj"), 0f);
            assertEquals(14, seen.size(), "every block linear");
            // 3 bits: q_max 3, so at most 7 distinct values per token inside the blocks; lm_head's input is left float.
            assertTrue(distinct(seen.get(p + "mlp.down_proj"), 0, 128) <= 7);
            assertEquals(1, lmHeadInputs.size());
            assertTrue(distinct(lmHeadInputs.get(0), 0, 64) > 30, "lm_head input is not quantized");
        }
    }

    @Test
    void perTokenChangesTheModelMoreAtFewerBits() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[] tokens = TinyLlama.windows(1, 40, ckpt.config().vocabSize(), 6)[0];
            float[][] ref = model.logProbs(tokens);
            double d8 = diffWith(model, ActivationQuantizer.perTokenDynamic(8), tokens, ref);
            double d4 = diffWith(model, ActivationQuantizer.perTokenDynamic(4), tokens, ref);
            // The fixture is sensitive by construction (logits ~14 nats wide): A8 moves the worst log-prob by ~0.2.
            assertTrue(d8 > 0 && d8 < 0.5, "A8 " + d8);
            assertTrue(d4 > 10 * d8, "A4 " + d4 + " vs A8 " + d8);
            assertArrayEquals(ref[5], model.logProbs(tokens)[5], 0f, "closing the hook restores the float model");
        }
    }

    /** Calibration against an independent recorder: max |x| over every input of every block linear, divided by q_max. */
    @Test
    void staticCalibrationOnTheTinyModel() throws Exception {
        try (Checkpoint ckpt = TinyLlama.open(); Transformer model = Checkpoints.load(ckpt, 1)) {
            int[][] windows = TinyLlama.windows(3, 20, ckpt.config().vocabSize(), 7);
            Map<String, Double> absmax = new LinkedHashMap<>();
            ForwardHook rec = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    for (int i = 0; i < rows * linear.inFeatures(); i++)
                        absmax.merge(linear.name(), (double) Math.abs(x[i]), Math::max);
                }
            };
            try (var h = model.addHook(rec)) {
                for (int[] w : windows) model.logProbs(w);
            }
            Map<String, Float> scales = ActivationQuantizer.calibrate(model, windows, 8);
            Set<String> blockLinears = new HashSet<>();
            for (int l = 0; l < 2; l++) for (Linear lin : model.blockLinears(l)) blockLinears.add(lin.name());
            assertEquals(blockLinears, scales.keySet(), "block linears only, no lm_head");
            for (String name : blockLinears)
                assertEquals((float) (absmax.get(name) / 127), scales.get(name), 0f, name);
            assertEquals(scales.get("model.layers.0.self_attn.q_proj"), scales.get("model.layers.0.self_attn.v_proj"), "shared input");
            Map<String, Float> s4 = ActivationQuantizer.calibrate(model, windows, 4);
            assertEquals(scales.get("model.layers.1.mlp.down_proj") * 127.0 / 7, (double) s4.get("model.layers.1.mlp.down_proj"), 1e-6);

            float[][] ref = model.logProbs(windows[0]);
            ActivationQuantizer st = ActivationQuantizer.perTensorStatic(8, scales);
            double d8 = diffWith(model, st, windows[0], ref);
            assertTrue(d8 > 0 && d8 < 1.0, "static A8 " + d8);
            assertEquals("per-tensor static", st.describe().get("mode"));
            assertEquals(14, st.describe().get("calibrated_linears"));

            Map<String, Float> partial = new HashMap<>(scales);
            partial.remove("model.layers.1.mlp.up_proj");
            var e = assertThrows(IllegalStateException.class,
                    () -> diffWith(model, ActivationQuantizer.perTensorStatic(8, partial), windows[0], ref));
            assertTrue(e.getMessage().contains("model.layers.1.mlp.up_proj"), e.getMessage());
        }
    }

    @Test
    void describeNamesTheSetting() {
        Map<String, Object> d = ActivationQuantizer.perTokenDynamic(8).describe();
        assertEquals("per-token dynamic", d.get("mode"));
        assertEquals(8, d.get("bits"));
        assertNotNull(d.get("tensors"));
    }

    static double diffWith(Transformer model, ForwardHook hook, int[] tokens, float[][] ref) throws Exception {
        try (var h = model.addHook(hook)) {
            return TinyLlama.maxAbsDiff(ref, model.logProbs(tokens));
        }
    }

    private static int distinct(float[] x, int off, int n) {
        Set<Float> s = new HashSet<>();
        for (int i = off; i < off + n; i++) s.add(x[i]);
        return s.size();
    }
}
