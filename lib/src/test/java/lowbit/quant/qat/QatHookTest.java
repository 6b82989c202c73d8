package lowbit.quant.qat;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.SplittableRandom;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;
import lowbit.train.Parameter;
import lowbit.train.TrainLinear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The QAT hook's forward against RTN and its backward against the FakeQuant, Lsq and Pact ops, with hand-checked cases. */
class QatHookTest {
    private static TrainLinear linear(String module, int layer, int out, int in, long seed) {
        float[] w = new float[out * in];
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = 0; i < w.length; i++) w[i] = (float) r.nextGaussian() * 0.05f;
        return new TrainLinear("model.layers." + layer + ".mlp." + module, layer, module, out, in, Parameter.of("w" + seed, w, true), null);
    }

    /** The fake-quantized weight is RTN's dequantized weight, and the final grid writes RTN's exact codes and scales. */
    @ParameterizedTest
    @ValueSource(strings = {"rtn:w4g16", "rtn:w3g16", "rtn:w4", "rtn:w4g16sym", "rtn:w2g8", "rtn:w4g32fmin", "rtn:w4g12"})
    void minMaxForwardIsRtn(String text) {
        QuantSpec spec = QuantSpec.parse(text);
        TrainLinear l = linear("down_proj", 0, 6, 40, 3);
        QatHook hook = QatHook.of(spec, List.of(l), false, false);
        QuantizedWeight rtn = Rtn.quantize(l.name(), l.weight().value(), 6, 40, spec.weightConfig());
        assertArrayEquals(rtn.dequantize(), hook.effectiveWeight(l, l.weight().value()), text);
        assertEquals(rtn, hook.quantized(l), text + ": codes, scales and zeros");
    }

    @Test
    void lmHeadAndEmbeddingsStayFloat() {
        TrainLinear head = new TrainLinear("lm_head", -1, "lm_head", 4, 16, Parameter.of("e", new float[64], true), null);
        QatHook hook = QatHook.of(QuantSpec.parse("rtn:w4a8"), List.of(head), false, false);
        float[] w = head.weight().value();
        assertSame(w, hook.effectiveWeight(head, w));
        assertFalse(hook.quantizesInput(head));
        assertTrue(hook.quantizedLinears().isEmpty());
    }

    /**
     * STE on a 2-bit asymmetric grid, scale 0.5, zero 2, by hand: codes rint(x / 0.5) + 2 of
     * x = -1.3, -1.2, -0.9, 0, 0.7, 0.74, 0.76, 2.0 are -1, 0, 0, 2, 3, 3, 4, 6; [0, 3] passes (inclusive).
     */
    @Test
    void steMaskByHandAndAsFakeQuant() {
        float[] x = {-1.3f, -1.2f, -0.9f, 0f, 0.7f, 0.74f, 0.76f, 2.0f};
        float[] d = {1, 2, 3, 4, 5, 6, 7, 8};
        QatHook.steMask(x, d, 0, x.length, 0.5, 2, 3, false);
        assertArrayEquals(new float[] {0, 2, 3, 4, 5, 6, 0, 0}, d);
        float[] dy = {1, 2, 3, 4, 5, 6, 7, 8};
        float[] ref = FakeQuant.perTensor(2, false).forward(x, 1, x.length, new float[] {0.5f}, new int[] {2}).backward(dy);
        assertArrayEquals(ref, d);
    }

    /** Per-group STE inside the hook: values beyond a fixed LSQ grid get no weight gradient, as FakeQuant per group says. */
    @Test
    void minMaxGradientPassesEverythingInsideItsOwnRange() {
        TrainLinear l = linear("up_proj", 1, 4, 32, 9);
        QatHook hook = QatHook.of(QuantSpec.parse("rtn:w3g16"), List.of(l), false, false);
        hook.effectiveWeight(l, l.weight().value());
        float[] d = new float[4 * 32];
        for (int i = 0; i < d.length; i++) d[i] = i + 1;
        float[] expect = d.clone();
        hook.weightGradient(l, l.weight().value(), d);
        // min-max ranges hold every value; only an fp16-rounded scale could push an extreme code out, so count what passes
        int passed = 0;
        for (int i = 0; i < d.length; i++) if (d[i] == expect[i]) passed++;
        assertTrue(passed >= d.length - 8, "at most one extreme per group may be clipped by fp16 scale rounding: " + passed);
        for (int i = 0; i < d.length; i++) assertTrue(d[i] == expect[i] || d[i] == 0);
    }

    /**
     * LSQ by hand, 2-bit symmetric (codes -2..1), step 0.5, x = 0.2, -1.5, 0.6, 0.4: x/s = 0.4, -3, 1.2, 0.8, terms
     * rint(v) - v = -0.4, the bound -2, the bound 1, 0.2; with dy = 1: ds = g * (-1.2), g = 1/sqrt(4 * 1) = 0.5.
     */
    @Test
    void lsqByHand() {
        float[] x = {0.2f, -1.5f, 0.6f, 0.4f};
        float[] d = {1, 1, 1, 1};
        double ds = QatHook.lsqBackward(x, d, 0, 4, 0.5f, 2, 3);
        assertArrayEquals(new float[] {1, 0, 0, 1}, d);
        assertEquals(-0.6, ds, 1e-7);
    }

    /** The hook's LSQ backward equals the Lsq op's on the same values: symmetric (signed range) and asymmetric (range shifted by z). */
    @ParameterizedTest
    @ValueSource(ints = {2, 3, 4, 8})
    void lsqEqualsTheLsqOp(int bits) {
        SplittableRandom r = new SplittableRandom(bits);
        float[] x = new float[64], dy = new float[64];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
            dy[i] = (float) r.nextGaussian();
        }
        float step = 0.37f;
        int maxq = (1 << bits) - 1;
        for (int zero : new int[] {1 << (bits - 1), 1, maxq - 1}) {
            Lsq op = zero == 1 << (bits - 1) ? Lsq.forWeights(bits) : new Lsq(new QuantRange(-zero, maxq - zero));
            Lsq.Gradients ref = op.forward(x, step).backward(dy);
            float[] d = dy.clone();
            double ds = QatHook.lsqBackward(x, d, 0, x.length, step, zero, maxq);
            assertArrayEquals(ref.dx(), d, "bits " + bits + " zero " + zero);
            assertEquals(ref.dStep(), ds, 1e-12 * Math.max(1, Math.abs(ref.dStep())), "bits " + bits + " zero " + zero);
        }
    }

    /** With --lsq: step 0 is RTN exactly; the step's gradient lands in its parameter, group by group; the forward follows the learned step. */
    @Test
    void lsqHookStartsAtRtnAndLearnsPerGroup() {
        QuantSpec spec = QuantSpec.parse("rtn:w4g16sym");
        TrainLinear l = linear("gate_proj", 0, 3, 32, 5);
        QatHook hook = QatHook.of(spec, List.of(l), true, false);
        assertEquals(1, hook.parameters().size());
        Parameter step = hook.parameters().get(0);
        assertEquals(l.name() + ".weight.lsq_step", step.name());
        assertEquals(6, step.size(), "3 rows x 2 groups");
        QuantizedWeight rtn = Rtn.quantize(l.name(), l.weight().value(), 3, 32, spec.weightConfig());
        assertArrayEquals(rtn.scales(), step.value());
        assertArrayEquals(rtn.dequantize(), hook.effectiveWeight(l, l.weight().value()));

        float[] d = new float[96];
        java.util.Arrays.fill(d, 1f);
        float[] w = l.weight().value();
        hook.weightGradient(l, w, d);
        for (int p = 0; p < 6; p++) {
            float[] g = new float[16];
            System.arraycopy(w, p * 16, g, 0, 16);
            float[] ones = new float[16];
            java.util.Arrays.fill(ones, 1f);
            double ref = Lsq.forWeights(4).forward(g, (float) QuantConfig.ScaleFormat.F16.round(step.value()[p])).backward(ones).dStep();
            assertEquals(ref, step.grad()[p], 1e-6 * Math.max(1, Math.abs(ref)), "group " + p);
        }
        step.value()[0] *= 2;   // a doubled step: the first group's values land on a coarser grid, the stored format's
        float[] eff = hook.effectiveWeight(l, w);
        double s = QuantConfig.ScaleFormat.F16.round(step.value()[0]);
        for (int c = 0; c < 16; c++) {
            double q = Math.max(-8, Math.min(7, Math.rint(w[c] / s)));
            assertEquals((float) (s * q), eff[c], 0f, "column " + c);
        }
        assertArrayEquals(eff, hook.quantized(l).dequantize(), "the written grid is the learned one");
    }

    /** Symmetric PACT by hand: alpha 1, x = 0.5, 1.0, 1.5, -1.5, -0.3, dy = 1..5: dx = 1, 0, 0, 0, 5; dalpha = 2 + 3 - 4 = 1. */
    @Test
    void pactByHand() {
        float[] x = {0.5f, 1.0f, 1.5f, -1.5f, -0.3f};
        float[] dx = {1, 2, 3, 4, 5};
        assertEquals(1.0, QatHook.pactBackward(x, dx, 5, 1f), 0);
        assertArrayEquals(new float[] {1, 0, 0, 0, 5}, dx);
    }

    /** On non-negative inputs the symmetric clip's gradients are the Pact op's. */
    @Test
    void pactEqualsThePactOpOnNonNegativeInputs() {
        SplittableRandom r = new SplittableRandom(11);
        float[] x = new float[50], dy = new float[50];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.abs(r.nextGaussian());
            dy[i] = (float) r.nextGaussian();
        }
        Pact.Gradients ref = new Pact(8).forward(x, 1.2f).backward(dy);
        float[] dx = dy.clone();
        double dAlpha = QatHook.pactBackward(x, dx, x.length, 1.2f);
        assertArrayEquals(ref.dx(), dx);
        assertEquals(ref.dAlpha(), dAlpha, 0);
    }

    /** q/k/v share one clip, gate/up another; PACT's clips start at the observed absmax and become static scales alpha / 127. */
    @Test
    void pactClipsAreSharedPerInputAndBecomeStaticScales() {
        TrainLinear q = new TrainLinear("model.layers.0.self_attn.q_proj", 0, "q_proj", 4, 8, Parameter.of("q", new float[32], true), null);
        TrainLinear k = new TrainLinear("model.layers.0.self_attn.k_proj", 0, "k_proj", 4, 8, Parameter.of("k", new float[32], true), null);
        TrainLinear o = new TrainLinear("model.layers.0.self_attn.o_proj", 0, "o_proj", 8, 4, Parameter.of("o", new float[32], true), null);
        QatHook hook = QatHook.of(QuantSpec.parse("rtn:w4a8"), List.of(q, k, o), false, true);
        assertEquals(List.of("model.layers.0.attn_in.pact_alpha", "model.layers.0.o_proj.pact_alpha"),
                hook.parameters().stream().map(Parameter::name).toList());
        hook.observe();
        hook.input(q, new float[] {0.5f, -2.5f, 1, 0, 0, 0, 0, 0}, 1);
        hook.input(k, new float[] {3f, 0, 0, 0, 0, 0, 0, 0}, 1);
        float[] oIn = {0.25f, -0.5f, 0, 0};
        hook.input(o, oIn, 1);
        assertArrayEquals(new float[] {0.25f, -0.5f, 0, 0}, oIn, "observing leaves inputs alone");
        hook.endObserving();
        assertEquals(3f, hook.parameters().get(0).value()[0]);
        assertEquals(0.5f, hook.parameters().get(1).value()[0]);
        var scales = hook.runtime().staticScales();
        assertEquals((float) (3.0 / 127), scales.get(q.name()));
        assertEquals(scales.get(q.name()), scales.get(k.name()));
        assertEquals((float) (0.5 / 127), scales.get(o.name()));
        float[] x = {4f, -1f, 0.01f, 0, 0, 0, 0, 0};
        hook.input(q, x, 1);
        double s = (float) (3.0 / 127);
        assertEquals((float) (127 * s), x[0], 0f, "clipped at alpha");
        assertEquals((float) (Math.rint(-1 / s) * s), x[1], 0f);
        assertEquals(0f, x[3]);
    }

    @Test
    void refusesWhatQatDoesNotTrain() {
        assertThrows(IllegalArgumentException.class, () -> QatHook.check(QuantSpec.parse("gptq:w4g128"), false, false));
        assertThrows(IllegalArgumentException.class, () -> QatHook.check(QuantSpec.parse("rtn:w4+kv4"), false, false));
        assertThrows(IllegalArgumentException.class, () -> QatHook.check(QuantSpec.parse("quarot+rtn:w4a8"), false, false));
        assertThrows(IllegalArgumentException.class, () -> QatHook.check(QuantSpec.parse("rtn:w4"), false, true));
        assertThrows(IllegalArgumentException.class, () -> QatHook.check(QuantSpec.parse("rtn:w4g32fmin"), true, false));
        assertThrows(IllegalArgumentException.class, () -> QatHook.of(QuantSpec.parse("rtn:w4g64"), List.of(linear("up_proj", 0, 2, 32, 1)), false, false));
    }
}
