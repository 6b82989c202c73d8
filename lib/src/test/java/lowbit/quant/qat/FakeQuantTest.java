package lowbit.quant.qat;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Golden outputs and gradients from torch (fake_quantize_per_tensor_affine / _per_channel_affine with
 * autograd) and from PyTorch implementations of LSQ and PACT as in their papers. Regenerate with
 * /work/refvenv/bin/python lib/src/test/resources/qat/make_fixtures.py (the script documents each case).
 * Outputs must agree exactly (torch computes them in float, as we do); gradients to 1e-6 relative.
 */
class FakeQuantTest {
    private static JsonNode fixtures;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = FakeQuantTest.class.getResourceAsStream("/qat/fixtures.json")) {
            fixtures = new ObjectMapper().readTree(in);
        }
    }

    @Test
    void fakeQuantMatchesTorch() {
        int cases = 0, clipped = 0;
        for (JsonNode c : fixtures.get("fakeQuant")) {
            String name = c.get("name").asText();
            int bits = c.get("bits").asInt();
            boolean sym = c.get("symmetric").asBoolean();
            FakeQuant fq = switch (c.get("granularity").asText()) {
                case "tensor" -> FakeQuant.perTensor(bits, sym);
                case "channel" -> FakeQuant.perChannel(bits, sym);
                case "group" -> FakeQuant.perGroup(bits, sym, c.get("groupSize").asInt());
                default -> throw new AssertionError(name);
            };
            FakeQuant.Result r = fq.forward(floats(c, "x"), c.get("rows").asInt(), c.get("cols").asInt(),
                    floats(c, "scale"), ints(c, "zero"));
            assertArrayEquals(floats(c, "y"), r.output(), 0f, name + " output");
            float[] dx = r.backward(floats(c, "dy"));
            assertClose(floats(c, "dx"), dx, name + " dx");
            for (boolean in : r.inside()) if (!in) clipped++;
            cases++;
        }
        assertEquals(8, cases);
        assertTrue(clipped > 10, "the fixtures exercise the clip range (" + clipped + " clipped values)");
    }

    @Test
    void tiesAndBoundsFollowTorch() {
        // x/s = 12.5 rounds to the even 12, +3 = 15 = qmax: inside; 13.0 -> 16: outside; -3.5 -> -4 + 3 = -1: outside.
        FakeQuant.Result r = FakeQuant.perTensor(4, false).forward(new float[] {3.125f, 3.25f, -0.875f, -0.75f}, 1, 4,
                new float[] {0.25f}, new int[] {3});
        assertArrayEquals(new float[] {3.0f, 3.0f, -0.75f, -0.75f}, r.output(), 0f);
        assertArrayEquals(new float[] {1, 0, 0, 1}, r.backward(new float[] {1, 1, 1, 1}), 0f);
    }

    @Test
    void lsqMatchesPaperImplementation() {
        for (JsonNode c : fixtures.get("lsq")) {
            String name = c.get("name").asText();
            int bits = c.get("bits").asInt();
            Lsq lsq = c.get("signed").asBoolean() ? Lsq.forWeights(bits) : Lsq.forActivations(bits);
            Lsq.Result r = lsq.forward(floats(c, "x"), (float) c.get("s").asDouble());
            assertArrayEquals(floats(c, "y"), r.output(), 0f, name + " output");
            Lsq.Gradients g = r.backward(floats(c, "dy"));
            assertClose(floats(c, "dx"), g.dx(), name + " dx");
            double ds = c.get("ds").asDouble();
            assertEquals(ds, g.dStep(), 1e-6 * Math.max(1, Math.abs(ds)), name + " ds");
        }
    }

    @Test
    void lsqStepGradientByHand() {
        // 2-bit signed: Qn = 2, Qp = 1, N = 4, g = 1/sqrt(4 * 1) = 0.5; s = 0.5, dy = 1.
        // x/s = 0.4 inside: round(0.4) - 0.4 = -0.4; -3 <= -Qn: -2; 1.2 and 1.8 >= Qp: 1 each.
        // ds = 0.5 * (-0.4 - 2 + 1 + 1) = -0.2; only the first value passes dx.
        Lsq.Result r = Lsq.forWeights(2).forward(new float[] {0.2f, -1.5f, 0.6f, 0.9f}, 0.5f);
        assertArrayEquals(new float[] {0f, -1.0f, 0.5f, 0.5f}, r.output(), 0f);
        Lsq.Gradients g = r.backward(new float[] {1, 1, 1, 1});
        assertArrayEquals(new float[] {1, 0, 0, 0}, g.dx(), 0f);
        assertEquals(-0.2, g.dStep(), 1e-7);
    }

    @Test
    void pactMatchesPaperImplementation() {
        for (JsonNode c : fixtures.get("pact")) {
            String name = c.get("name").asText();
            Pact.Result r = new Pact(c.get("bits").asInt()).forward(floats(c, "x"), (float) c.get("alpha").asDouble());
            assertArrayEquals(floats(c, "y"), r.output(), 0f, name + " output");
            Pact.Gradients g = r.backward(floats(c, "dy"));
            assertClose(floats(c, "dx"), g.dx(), name + " dx");
            double da = c.get("dalpha").asDouble();
            assertEquals(da, g.dAlpha(), 1e-6 * Math.max(1, Math.abs(da)), name + " dalpha");
        }
    }

    @Test
    void badInputIsNamed() {
        assertEquals("fake-quant bits must be 2..8, got 9",
                assertThrows(IllegalArgumentException.class, () -> FakeQuant.perTensor(9, true)).getMessage());
        FakeQuant ch = FakeQuant.perChannel(4, false);
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> ch.forward(new float[4], 2, 2, new float[] {1f}, new int[] {0})).getMessage().contains("needs 2 scales"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> ch.forward(new float[4], 2, 2, new float[] {1f, 1f}, new int[] {0, 16})).getMessage().contains("zero point[1] = 16"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> FakeQuant.perGroup(4, true, 3).forward(new float[4], 2, 2, new float[2], new int[2])).getMessage()
                .contains("does not divide 2 columns"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> Lsq.forWeights(4).forward(new float[] {1f}, 0f)).getMessage().contains("step size"));
        assertTrue(assertThrows(IllegalArgumentException.class,
                () -> new Pact(4).forward(new float[] {1f}, -1f)).getMessage().contains("alpha"));
    }

    private static void assertClose(float[] expected, float[] actual, String what) {
        assertEquals(expected.length, actual.length, what);
        for (int i = 0; i < expected.length; i++)
            assertEquals(expected[i], actual[i], 1e-6 * Math.max(1, Math.abs(expected[i])), what + "[" + i + "]");
    }

    private static float[] floats(JsonNode c, String key) {
        JsonNode a = c.get(key);
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) a.get(i).asDouble();
        return out;
    }

    private static int[] ints(JsonNode c, String key) {
        JsonNode a = c.get(key);
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
