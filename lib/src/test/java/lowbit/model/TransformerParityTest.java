package lowbit.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Our log-probs against transformers' (fp32, eager attention) on tiny random checkpoints written by
 * save_pretrained: environment/fixtures/make_tiny_models.py, format in resources/tiny/README.md.
 */
class TransformerParityTest {
    private static final double TOLERANCE = 1e-4;

    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama-tied-bf16", "smollm-like-f16", "qwen2", "qwen3", "opt", "opt-350m-style"})
    void logProbsMatchTransformers(String name) throws Exception {
        Path dir = resource("tiny/" + name);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        int vocab = expected.at("/config/vocabSize").asInt();
        float[] reference = readFloats(dir.resolve(expected.get("logprobs_file").asText()));
        JsonNode windows = expected.get("input_ids");
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 2)) {
            assertEquals(expected.at("/config/modelType").asText(), model.config().modelType());
            assertEquals(expected.at("/config/tieWordEmbeddings").asBoolean(), model.config().tieWordEmbeddings());
            for (int w = 0; w < windows.size(); w++) {
                int[] ids = new int[windows.get(w).size()];
                for (int i = 0; i < ids.length; i++) ids[i] = windows.get(w).get(i).asInt();
                float[][] ours = model.logProbs(ids);
                double worst = 0;
                for (int p = 0; p < ids.length; p++)
                    for (int t = 0; t < vocab; t++)
                        worst = Math.max(worst, Math.abs(ours[p][t] - reference[(w * ids.length + p) * vocab + t]));
                assertEquals(0, worst, TOLERANCE, name + " window " + w + ": largest log-prob difference");
                double nll = 0;
                for (double v : model.nll(ids)) nll += v;
                assertEquals(expected.get("sum_nll").get(w).asDouble(), nll, 1e-3, name + " window " + w + " NLL sum");
            }
        }
    }

    static Path resource(String name) throws URISyntaxException {
        return Path.of(TransformerParityTest.class.getClassLoader().getResource(name).toURI());
    }

    private static float[] readFloats(Path file) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }
}
