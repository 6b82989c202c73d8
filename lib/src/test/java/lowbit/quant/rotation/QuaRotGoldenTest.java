package lowbit.quant.rotation;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.Test;

/**
 * Given QuaRot's signs, our rotated weights equal those of a float64 port of QuaRot's rotation code
 * (environment/fixtures/make_quarot_golden.py; resources/quarot/README.md) to 1e-5.
 */
class QuaRotGoldenTest {
    @Test
    void rotatedWeightsEqualThePortOfQuaRot() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("quarot").toURI());
        JsonNode golden = new ObjectMapper().readTree(dir.resolve("tiny-llama.json").toFile());
        ByteBuffer bin = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("tiny-llama.bin"))).order(ByteOrder.LITTLE_ENDIAN);
        double[] signs = new double[golden.get("signs").size()];
        for (int i = 0; i < signs.length; i++) signs[i] = golden.get("signs").get(i).asDouble();
        try (Checkpoint ckpt = Checkpoints.open(QuaRotTest.tiny("llama")); Transformer model = Checkpoints.load(ckpt, 2)) {
            QuaRot.rotate(model, signs, false, Progress.NONE);
            int compared = 0;
            for (JsonNode t : golden.get("tensors")) {
                String name = t.get("name").asText();
                float[] ours = model.tensor(name);
                int n = 1;
                for (JsonNode d : t.get("shape")) n *= d.asInt();
                assertEquals(n, ours.length, name);
                int off = t.get("offset").asInt();
                double worst = 0, norm = 0;
                for (int i = 0; i < n; i++) {
                    float ref = bin.getFloat(4 * (off + i));
                    worst = Math.max(worst, Math.abs(ours[i] - ref));
                    norm = Math.max(norm, Math.abs(ref));
                }
                assertTrue(worst <= 1e-5, name + ": differs from QuaRot's port by " + worst);
                assertTrue(norm > 1e-3, name + ": the reference is not all zeros");
                compared++;
            }
            assertEquals(10, compared);
        }
    }
}
