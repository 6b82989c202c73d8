package lowbit.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.List;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The trainable copy's forward pass against the runtime model, its gradients against central differences. */
class TrainableModelTest {
    static final int[] W1 = {1, 5, 9, 33, 17, 2, 60, 44, 8, 3, 21, 7};
    static final int[] W2 = {4, 40, 12, 6, 30, 11, 0, 19, 25, 50, 13, 2};

    static Transformer load(String name, int threads) throws URISyntaxException {
        Path dir = Path.of(TrainableModelTest.class.getClassLoader().getResource("tiny/" + name).toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir)) {
            return Checkpoints.load(ckpt, threads);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "smollm-like-f16", "qwen2", "qwen3"})
    void logitsEqualTheRuntimeModel(String name) throws Exception {
        try (Transformer model = load(name, 2); TrainableModel train = TrainableModel.of(model, 2)) {
            int V = model.config().vocabSize();
            float[] ours = train.logits(W1);
            float[][] ref = model.logProbs(W1);
            for (int t = 0; t < W1.length; t++) {
                double lse = Transformer.logSumExp(ours, t * V, V);
                for (int j = 0; j < V; j++)
                    assertEquals(ref[t][j], ours[t * V + j] - lse, 1e-5, name + " position " + t + " token " + j);
            }
        }
    }

    @Test
    void refusesOpt() throws Exception {
        try (Transformer model = load("opt", 1)) {
            var e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class, () -> TrainableModel.of(model));
            assertTrue(e.getMessage().contains("model_type opt") && e.getMessage().contains("no backward pass"), e.getMessage());
        }
    }

    /** Central differences in float32 with h = 1e-2 on the tiny models: truncation and rounding both stay near 1e-4. */
    @ParameterizedTest
    @ValueSource(strings = {"llama", "qwen2", "qwen3"})
    void gradientsMatchCentralDifferences(String name) throws Exception {
        try (Transformer model = load(name, 1); TrainableModel train = TrainableModel.of(model, 1)) {
            List<int[]> batch = List.of(W1, W2);
            train.gradient(batch, Loss.nextToken());
            for (Parameter p : train.parameters()) {
                if (!(p.name().endsWith("layers.1.input_layernorm.weight") || p.name().endsWith("layers.0.self_attn.q_proj.weight")
                        || p.name().equals("model.embed_tokens.weight") || p.name().endsWith("layers.0.mlp.down_proj.weight")
                        || p.name().endsWith("q_norm.weight") || p.name().endsWith("k_proj.bias") || p.name().equals("model.norm.weight")))
                    continue;
                float[] grad = p.grad().clone();
                int[] at = {3, p.size() / 2 + 1, p.size() - 2};
                if (p.name().equals("model.embed_tokens.weight")) at = new int[] {5 * 64 + 3, 9 * 64 + 10};
                for (int i : at) {
                    float keep = p.value()[i];
                    float h = 1e-2f;
                    p.value()[i] = keep + h;
                    double up = train.gradient(batch, Loss.nextToken());
                    p.value()[i] = keep - h;
                    double down = train.gradient(batch, Loss.nextToken());
                    p.value()[i] = keep;
                    double fd = (up - down) / (2 * h);
                    assertEquals(fd, grad[i], 2e-4 + 2e-2 * Math.abs(fd), name + " " + p.name() + "[" + i + "]");
                }
            }
        }
    }

    @Test
    void recomputingBlocksGivesTheSameGradients() throws Exception {
        try (Transformer model = load("qwen3", 2); TrainableModel kept = TrainableModel.of(model, 2);
             TrainableModel recomputed = TrainableModel.of(model, 2)) {
            recomputed.keepActivationsUpTo(0);
            assertEquals(kept.gradient(List.of(W1, W2), Loss.nextToken()), recomputed.gradient(List.of(W1, W2), Loss.nextToken()), 0.0);
            for (int i = 0; i < kept.parameters().size(); i++)
                assertArrayEquals(kept.parameters().get(i).grad(), recomputed.parameters().get(i).grad(), kept.parameters().get(i).name());
        }
    }

    @Test
    void gradientDoesNotDependOnThreads() throws Exception {
        try (Transformer model = load("qwen3", 1); TrainableModel one = TrainableModel.of(model, 1);
             TrainableModel two = TrainableModel.of(model, 2)) {
            double l1 = one.gradient(List.of(W1, W2), Loss.nextToken());
            double l2 = two.gradient(List.of(W1, W2), Loss.nextToken());
            assertEquals(l1, l2, 0.0);
            for (int i = 0; i < one.parameters().size(); i++)
                assertArrayEquals(one.parameters().get(i).grad(), two.parameters().get(i).grad(), one.parameters().get(i).name());
        }
    }

    /** Buffers and packed weights are reused between windows and steps: a repeated step must give the same numbers. */
    @Test
    void repeatedStepsReuseNothingStale() throws Exception {
        int[] longer = new int[45];
        for (int t = 0; t < longer.length; t++) longer[t] = (t * 37 + 11) % 64;
        try (Transformer model = load("qwen3", 2); TrainableModel reused = TrainableModel.of(model, 2);
             TrainableModel fresh = TrainableModel.of(model, 2)) {
            reused.gradient(List.of(longer), Loss.nextToken());
            reused.gradient(List.of(W1), Loss.nextToken());
            List<int[]> batch = List.of(W1, longer, W2);
            assertEquals(fresh.gradient(batch, Loss.nextToken()), reused.gradient(batch, Loss.nextToken()), 0.0);
            for (int i = 0; i < fresh.parameters().size(); i++)
                assertArrayEquals(fresh.parameters().get(i).grad(), reused.parameters().get(i).grad(), fresh.parameters().get(i).name());
            float[] logits = fresh.logits(longer);
            reused.keepActivationsUpTo(0);
            reused.gradient(batch, Loss.nextToken());
            assertArrayEquals(logits, reused.logits(longer));
        }
    }

    /** lm_head's input gradient in blocks of its outputs (as the 49152-token vocabulary runs) sums the same terms. */
    @Test
    void blockedInputGradientsGiveTheSameGradients() throws Exception {
        try (Transformer model = load("llama", 2); TrainableModel whole = TrainableModel.of(model, 2);
             TrainableModel blocked = TrainableModel.of(model, 1)) {
            blocked.blockInputGradientsBy(48);
            assertEquals(whole.gradient(List.of(W1, W2), Loss.nextToken()), blocked.gradient(List.of(W1, W2), Loss.nextToken()), 0.0);
            for (int i = 0; i < whole.parameters().size(); i++) {
                float[] a = whole.parameters().get(i).grad(), b = blocked.parameters().get(i).grad();
                for (int j = 0; j < a.length; j++)
                    assertEquals(a[j], b[j], 1e-6 * (1 + Math.abs(a[j])), whole.parameters().get(i).name() + "[" + j + "]");
            }
        }
    }
}
