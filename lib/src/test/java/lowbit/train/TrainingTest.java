package lowbit.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;

/** Training end to end on the tiny checkpoints: overfitting one batch, and the TrainHook call contract. */
class TrainingTest {
    @Test
    void overfitsOneBatch() throws Exception {
        try (Transformer model = TrainableModelTest.load("llama", 2); TrainableModel train = TrainableModel.of(model, 2)) {
            List<int[]> batch = List.of(TrainableModelTest.W1, TrainableModelTest.W2);
            AdamW opt = new AdamW(train.trainable(), 0.9, 0.999, 1e-8, 0.0);
            double first = train.gradient(batch, Loss.nextToken()), last = first;
            for (int step = 0; step < 150; step++) {
                last = train.gradient(batch, Loss.nextToken());
                opt.step(1e-2);
            }
            last = train.gradient(batch, Loss.nextToken());
            assertTrue(first > 4, "a random model starts near log(128) = 4.85, got " + first);
            assertTrue(last < 0.05, "loss after 150 steps on one batch: " + last);
            // the trained weights go back into the runtime model, which then scores the batch the same
            train.copyInto(model);
            double nll = 0;
            for (int[] w : batch) for (double v : model.nll(w)) nll += v;
            assertEquals(last, nll / 22, 1e-4);
        }
    }

    /**
     * A hook that doubles every block linear's weight (gradient x2 through weightGradient) and halves down_proj's input
     * (gradient x0.5 through inputGradient) must give the gradients of a float model whose block weights are doubled
     * and whose down_proj weights are unchanged: x2 on q..up, x1 on down_proj, equal on everything else.
     */
    @Test
    void hookCallContract() throws Exception {
        try (Transformer model = TrainableModelTest.load("qwen2", 1); TrainableModel hooked = TrainableModel.of(model, 1);
             TrainableModel plain = TrainableModel.of(model, 1)) {
            AtomicInteger effective = new AtomicInteger(), weightGrads = new AtomicInteger(), inputs = new AtomicInteger();
            hooked.setHook(new TrainHook() {
                @Override
                public float[] effectiveWeight(TrainLinear linear, float[] w) {
                    effective.incrementAndGet();
                    if (linear.layer() < 0) return w;
                    float[] e = w.clone();
                    for (int i = 0; i < e.length; i++) e[i] *= 2;
                    return e;
                }

                @Override
                public void weightGradient(TrainLinear linear, float[] w, float[] d) {
                    weightGrads.incrementAndGet();
                    if (linear.layer() >= 0) for (int i = 0; i < d.length; i++) d[i] *= 2;
                }

                @Override
                public boolean quantizesInput(TrainLinear linear) {
                    return linear.module().equals("down_proj");
                }

                @Override
                public void input(TrainLinear linear, float[] x, int rows) {
                    inputs.incrementAndGet();
                    for (int i = 0; i < rows * linear.in(); i++) x[i] *= 0.5f;
                }

                @Override
                public void inputGradient(TrainLinear linear, float[] x, float[] dx, int rows) {
                    for (int i = 0; i < rows * linear.in(); i++) dx[i] *= 0.5f;
                }
            });
            for (TrainLinear l : plain.linears())
                if (l.layer() >= 0 && !l.module().equals("down_proj"))
                    for (int i = 0; i < l.weight().size(); i++) l.weight().value()[i] *= 2;
            List<int[]> batch = List.of(TrainableModelTest.W1, TrainableModelTest.W2);
            double a = hooked.gradient(batch, Loss.nextToken()), b = plain.gradient(batch, Loss.nextToken());
            int linears = hooked.linears().size();
            assertEquals(linears, effective.get());
            assertEquals(linears, weightGrads.get());
            assertEquals(2 * model.config().numLayers(), inputs.get(), "input() once per window per down_proj (activations kept)");
            assertEquals(b, a, 1e-6);
            for (int p = 0; p < hooked.parameters().size(); p++) {
                Parameter ph = hooked.parameters().get(p), pp = plain.parameters().get(p);
                boolean doubled = ph.name().contains("layers.") && ph.name().endsWith("proj.weight") && !ph.name().contains("down_proj");
                double max = 0, diff = 0;
                for (int i = 0; i < ph.size(); i++) {
                    double expected = (doubled ? 2 : 1) * pp.grad()[i];
                    max = Math.max(max, Math.abs(expected));
                    diff = Math.max(diff, Math.abs(expected - ph.grad()[i]));
                }
                assertTrue(max > 0 && diff <= 1e-4 * max, ph.name() + ": max|diff| " + diff + " of max " + max);
            }
        }
    }

    @Test
    void frozenParametersGetNoGradient() throws Exception {
        try (Transformer model = TrainableModelTest.load("smollm-like-f16", 1); TrainableModel train = TrainableModel.of(model, 1);
             TrainableModel all = TrainableModel.of(model, 1)) {
            train.setTrainable(p -> !p.name().equals("model.embed_tokens.weight"));
            assertEquals(all.trainable().size() - 1, train.trainable().size());
            List<int[]> batch = List.of(TrainableModelTest.W1);
            train.parameters().get(0).grad()[0] = 7f; // frozen: left alone, not zeroed, not accumulated into
            train.gradient(batch, Loss.nextToken());
            all.gradient(batch, Loss.nextToken());
            assertEquals(7f, train.parameters().get(0).grad()[0]);
            for (int p = 1; p < train.parameters().size(); p++)
                org.junit.jupiter.api.Assertions.assertArrayEquals(all.parameters().get(p).grad(), train.parameters().get(p).grad(),
                        train.parameters().get(p).name());
        }
    }
}
