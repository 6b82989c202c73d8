package lowbit.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import lowbit.model.Transformer;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Every parameter's gradient against PyTorch's (transformers, float32, eager attention) on the tiny checkpoints.
 * Fixtures: resources/train/grads.json and the .bin files beside it; regenerate with
 * /work/refvenv/bin/python lib/src/test/resources/train/make_fixtures.py.
 */
class TrainableModelGradientTest {
    @ParameterizedTest
    @ValueSource(strings = {"llama", "smollm-like-f16", "qwen2", "qwen3", "llama-distill", "smollm-like-f16-long"})
    void gradientsEqualPyTorch(String name) throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("train").toURI());
        JsonNode index = new ObjectMapper().readTree(dir.resolve("grads.json").toFile());
        JsonNode c = index.at("/cases/" + name);
        JsonNode w = c.has("windows") ? c.get("windows") : index.get("windows");
        List<int[]> windows = List.of(ids(w.get(0)), ids(w.get(1)));
        ByteBuffer bin = ByteBuffer.wrap(Files.readAllBytes(dir.resolve(name + ".bin"))).order(ByteOrder.LITTLE_ENDIAN);
        try (Transformer model = TrainableModelTest.load(c.get("model").asText(), 2);
             Transformer teacher = TrainableModelTest.load(c.get("model").asText(), 2);
             TrainableModel train = TrainableModel.of(model, 2)) {
            Loss loss = Loss.nextToken();
            if (c.get("loss_kind").asText().equals("distill")) {
                // the generator's teacher: model.norm.weight x 1.5, layer 0's input_layernorm x 0.5
                float[] fin = teacher.normWeight(0, "final"), attn = teacher.normWeight(0, "attn");
                for (int i = 0; i < fin.length; i++) fin[i] *= 1.5f;
                for (int i = 0; i < attn.length; i++) attn[i] *= 0.5f;
                teacher.setNormWeight(0, "final", fin);
                teacher.setNormWeight(0, "attn", attn);
                loss = Loss.distill(teacher);
            }
            double value = train.gradient(windows, loss);
            assertEquals(c.get("loss").asDouble(), value, 1e-5, name + " loss");
            Map<String, Parameter> byName = new HashMap<>();
            for (Parameter p : train.parameters()) byName.put(p.name(), p);
            assertEquals(c.get("tensors").size(), byName.size(), name + ": parameter count");
            for (JsonNode t : c.get("tensors")) {
                Parameter p = byName.get(t.get("name").asText());
                assertNotNull(p, name + ": no parameter " + t.get("name").asText());
                int n = t.get("count").asInt(), off = t.get("offset").asInt();
                assertEquals(n, p.size(), p.name());
                double maxRef = 0, maxDiff = 0;
                for (int i = 0; i < n; i++) {
                    float ref = bin.getFloat((off + i) * 4);
                    maxRef = Math.max(maxRef, Math.abs(ref));
                    maxDiff = Math.max(maxDiff, Math.abs(ref - p.grad()[i]));
                }
                assertTrue(maxRef > 0, p.name() + ": reference gradient is all zero");
                assertTrue(maxDiff / maxRef <= 1e-4, name + " " + p.name() + ": max|diff| / max|ref| = " + maxDiff / maxRef);
            }
        }
    }

    private static int[] ids(JsonNode a) {
        int[] out = new int[a.size()];
        for (int i = 0; i < out.length; i++) out[i] = a.get(i).asInt();
        return out;
    }
}
