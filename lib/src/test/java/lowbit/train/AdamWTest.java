package lowbit.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * AdamW against torch.optim.AdamW (fixture "adamw" in resources/train/grads.json; regenerate with
 * /work/refvenv/bin/python lib/src/test/resources/train/make_fixtures.py) and the cosine schedule by hand.
 */
class AdamWTest {
    @Test
    void stepsEqualTorch() throws Exception {
        JsonNode f = new ObjectMapper().readTree(
                Path.of(getClass().getClassLoader().getResource("train/grads.json").toURI()).toFile()).get("adamw");
        // torch's per-group weight decay is ours per parameter: a decays, b does not
        Parameter a = Parameter.of("a", floats(f.get("a")), true), b = Parameter.of("b", floats(f.get("b")), false);
        AdamW opt = new AdamW(List.of(a, b), 0.9, 0.999, 1e-8, f.get("weight_decay_a").asDouble());
        int s = 0;
        for (JsonNode step : f.get("steps")) {
            System.arraycopy(floats(step.get("grad_a")), 0, a.grad(), 0, a.size());
            System.arraycopy(floats(step.get("grad_b")), 0, b.grad(), 0, b.size());
            opt.step(step.get("lr").asDouble());
            s++;
            float[] ea = floats(step.get("a")), eb = floats(step.get("b"));
            for (int i = 0; i < ea.length; i++) assertEquals(ea[i], a.value()[i], 1e-6, "step " + s + " a[" + i + "]");
            for (int i = 0; i < eb.length; i++) assertEquals(eb[i], b.value()[i], 1e-6, "step " + s + " b[" + i + "]");
        }
        assertEquals(4, opt.steps());
    }

    @Test
    void resumedStateContinuesTheSameRun() throws Exception {
        Parameter p = Parameter.of("w", new float[] {1f, -2f, 0.5f}, true);
        Parameter q = Parameter.of("w", new float[] {1f, -2f, 0.5f}, true);
        AdamW straight = new AdamW(List.of(p), 0.9, 0.999, 1e-8, 0.01);
        AdamW first = new AdamW(List.of(q), 0.9, 0.999, 1e-8, 0.01);
        float[][] grads = {{0.1f, -0.3f, 2f}, {0.5f, 0.5f, -1f}, {-0.2f, 0.1f, 0.3f}};
        for (int i = 0; i < 2; i++) {
            System.arraycopy(grads[i], 0, p.grad(), 0, 3);
            System.arraycopy(grads[i], 0, q.grad(), 0, 3);
            straight.step(0.01);
            first.step(0.01);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        first.write(new DataOutputStream(bytes));
        AdamW resumed = new AdamW(List.of(q), 0.9, 0.999, 1e-8, 0.01);
        resumed.read(new DataInputStream(new ByteArrayInputStream(bytes.toByteArray())));
        assertEquals(2, resumed.steps());
        System.arraycopy(grads[2], 0, p.grad(), 0, 3);
        System.arraycopy(grads[2], 0, q.grad(), 0, 3);
        straight.step(0.01);
        resumed.step(0.01);
        for (int i = 0; i < 3; i++) assertEquals(p.value()[i], q.value()[i], 0.0);

        AdamW other = new AdamW(List.of(Parameter.of("v", new float[3], true)), 0.9, 0.999, 1e-8, 0.01);
        var e = assertThrows(IllegalArgumentException.class,
                () -> other.read(new DataInputStream(new ByteArrayInputStream(bytes.toByteArray()))));
        assertTrue(e.getMessage().contains("w [3], expected v [3]"), e.getMessage());
    }

    @Test
    void cosineScheduleByHand() {
        CosineSchedule s = new CosineSchedule(1e-3, 10, 110, 1e-4);
        assertEquals(1e-4, s.lr(0), 1e-15);          // warm-up: peak * 1/10
        assertEquals(1e-3, s.lr(9), 1e-15);
        assertEquals(1e-3, s.lr(10), 1e-15);         // cosine from the peak
        assertEquals(1e-4 + 0.5 * 9e-4, s.lr(60), 1e-15); // half way: cos(pi/2) = 0
        assertEquals(1e-4, s.lr(110), 1e-15);
        assertEquals(1e-4, s.lr(500), 1e-15);
        var e = assertThrows(IllegalArgumentException.class, () -> new CosineSchedule(-1, 0, 10, 0));
        assertTrue(e.getMessage().startsWith("--lr"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new CosineSchedule(1e-3, 0, 0, 0));
        assertTrue(e.getMessage().startsWith("--steps"), e.getMessage());
    }

    private static float[] floats(JsonNode a) {
        float[] out = new float[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = (float) a.get(i).asDouble();
        return out;
    }
}
