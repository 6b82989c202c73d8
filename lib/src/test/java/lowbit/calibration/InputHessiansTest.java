package lowbit.calibration;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.Test;

class InputHessiansTest {
    @Test
    void runningAverageByHand() {
        // x1 = [[1, 2]], x2 = [[3, 0], [0, 1]]: H = 2/2 (x1^T x1 + x2^T x2) = [[1+9, 2], [2, 4+1]]
        Hessian h = new Hessian(2);
        try (Parallel par = new Parallel(1)) {
            h.add(new float[] {1, 2}, 1, par);
            assertArrayEquals(new double[] {2, 4, 4, 8}, h.values(), 1e-12, "one sequence: 2 x^T x");
            h.add(new float[] {3, 0, 0, 1}, 2, par);
        }
        assertArrayEquals(new double[] {10, 2, 2, 5}, h.values(), 1e-12);
        assertEquals(2, h.samples());
        assertEquals(15, h.trace(), 1e-12);
    }

    @Test
    void linearsSharingAnInputShareOneHessian() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        SplittableRandom rnd = new SplittableRandom(7);
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1); Parallel par = new Parallel(1)) {
            int[][] windows = new int[3][16];
            for (int[] w : windows) for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(model.config().vocabSize());
            List<String> inputs = new ArrayList<>();
            for (Linear lin : model.blockLinears(1)) inputs.add(lin.module() + "=" + lin.input());
            assertEquals(List.of("q_proj=attn_in", "k_proj=attn_in", "v_proj=attn_in", "o_proj=attn_out", "gate_proj=mlp_in",
                    "up_proj=mlp_in", "down_proj=mlp_act"), inputs);
            InputHessians[] seen = new InputHessians[1];
            List<float[]> down = new ArrayList<>();
            SequentialCalibration.run(model, windows, block -> {
                if (block.layer() != 1) return;
                seen[0] = new InputHessians(1, block.linears(), par);
                block.forward(seen[0]);
                block.forward(new ForwardHook() {
                    @Override
                    public void linearInput(Linear linear, float[] x, int rows) {
                        if (linear.layer() == 1 && linear.module().equals("down_proj")) down.add(x.clone());
                    }
                });
            }, Progress.NONE);
            InputHessians h = seen[0];
            assertEquals(List.of("attn_in", "attn_out", "mlp_in", "mlp_act"), List.copyOf(h.byInput().keySet()));
            assertSame(h.of(model.linear("model.layers.1.self_attn.q_proj")), h.of(model.linear("model.layers.1.self_attn.v_proj")));
            assertSame(h.of(model.linear("model.layers.1.mlp.gate_proj")), h.of(model.linear("model.layers.1.mlp.up_proj")));
            assertEquals(3, h.of("attn_in").samples(), "a shared input is added once per window, not once per reader");
            // mlp_act by hand: 2/n sum over windows of X^T X
            Hessian act = h.of("mlp_act");
            int n = act.columns();
            assertEquals(3, down.size());
            double[] ref = new double[n * n];
            for (float[] x : down)
                for (int t = 0; t < 16; t++)
                    for (int i = 0; i < n; i++)
                        for (int j = 0; j < n; j++) ref[i * n + j] += 2.0 / 3 * x[t * n + i] * x[t * n + j];
            double scale = 0;
            for (double v : ref) scale = Math.max(scale, Math.abs(v));
            // Gram multiplies in float and accumulates in double (as the reference does on the GPU)
            assertArrayEquals(ref, act.values(), 1e-6 * scale);
            assertThrows(IllegalArgumentException.class, () -> new InputHessians(0, model.blockLinears(1), par));
        }
    }
}
