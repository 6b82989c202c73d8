package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class VectorMathTest {
    @Test
    void expIsWithinTwoUlpOfTheCorrectlyRoundedValue() {
        var s = FloatVector.SPECIES_PREFERRED;
        float[] xs = new float[s.length()];
        float[] out = new float[s.length()];
        for (float x = -87f; x < 88f; x += 0.0173f) {
            for (int i = 0; i < xs.length; i++) xs[i] = x + i * 1e-3f;
            VectorMath.exp(FloatVector.fromArray(s, xs, 0)).intoArray(out, 0);
            for (int i = 0; i < xs.length; i++) {
                float ref = (float) Math.exp(xs[i]);
                assertEquals(ref, out[i], 2 * Math.ulp(ref), "exp(" + xs[i] + ")");
                assertEquals(out[i], VectorMath.exp(xs[i]), "scalar and vector agree at " + xs[i]);
            }
        }
        assertEquals(1f, VectorMath.exp(0f));
        assertEquals((float) Math.E, VectorMath.exp(1f), Math.ulp((float) Math.E));
    }
}
