package lowbit.quant.gptq;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;
import lowbit.tensor.Parallel;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The sequential protocol, recomputed independently: for each block, run the model from the embeddings
 * through the already-quantized earlier blocks, collect every linear's inputs with a hook, run GPTQ per
 * linear, and compare with what GptqQuantizer produced. A pipeline that fed float outputs forward, or
 * mixed up which input a linear reads, would give different codes.
 */
class GptqQuantizerTest {
    @ParameterizedTest
    @ValueSource(booleans = {false, true})
    void blocksAreCalibratedOnTheOutputsOfQuantizedBlocks(boolean trueSequential) throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        QuantConfig cfg = QuantConfig.group(3, 16);
        Gptq.Options opt = Gptq.Options.defaults().withBlockSize(32);
        SplittableRandom rnd = new SplittableRandom(3);
        int[][] windows = new int[5][40];
        try (Checkpoint ckpt = Checkpoints.open(dir)) {
            int vocab = ckpt.config().vocabSize();
            for (int[] w : windows) for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(vocab);
            QuantizedModel qm;
            try (Transformer model = Checkpoints.load(ckpt, 2)) {
                qm = new GptqQuantizer(cfg, opt, trueSequential).quantize(model, windows, Progress.NONE);
                assertEquals(2 * 7, qm.weights().size());
                for (var e : qm.weights().entrySet())
                    assertArrayEquals(e.getValue().dequantize(), model.linear(e.getKey()).weight(), "the model runs the stored weights");
            }
            List<List<String>> order = trueSequential
                    ? List.of(List.of("q_proj", "k_proj", "v_proj"), List.of("o_proj"), List.of("gate_proj", "up_proj"), List.of("down_proj"))
                    : List.of(List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"));
            try (Transformer ref = Checkpoints.load(ckpt, 1); Parallel par = new Parallel(1)) {
                for (int l = 0; l < ref.config().numLayers(); l++) {
                    for (List<String> group : order) {
                        Map<String, Gptq> hessians = new HashMap<>();
                        List<Linear> targets = new ArrayList<>();
                        for (Linear lin : ref.blockLinears(l))
                            if (group.contains(lin.module())) {
                                targets.add(lin);
                                hessians.put(lin.name(), new Gptq(lin.inFeatures()));
                            }
                        final int layer = l;
                        try (AutoCloseable h = ref.addHook(new ForwardHook() {
                            @Override
                            public void linearInput(Linear linear, float[] x, int rows) {
                                Gptq g = hessians.get(linear.name());
                                if (g != null && linear.layer() == layer) g.addBatch(x, rows, par);
                            }
                        })) {
                            for (int[] w : windows) {
                                float[] x = ref.embed(w);
                                for (int j = 0; j <= l; j++) ref.block(j, x, w.length);
                            }
                        }
                        for (Linear lin : targets) {
                            QuantizedWeight q = hessians.get(lin.name()).quantize(lin.name(), lin.weight(), lin.outFeatures(), cfg, opt, par).weight();
                            QuantizedWeight stored = (QuantizedWeight) qm.weights().get(lin.name());
                            assertArrayEquals(q.codes(), stored.codes(), lin.name());
                            assertArrayEquals(q.scales(), stored.scales(), lin.name());
                            lin.setWeight(q.dequantize());
                        }
                    }
                }
            }
        }
    }

    @org.junit.jupiter.api.Test
    void sameModelOnAnyThreadCount() throws Exception {
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        int[][] windows = new int[3][48];
        SplittableRandom rnd = new SplittableRandom(11);
        try (Checkpoint ckpt = Checkpoints.open(dir)) {
            for (int[] w : windows) for (int i = 0; i < w.length; i++) w[i] = rnd.nextInt(ckpt.config().vocabSize());
            QuantizedModel[] runs = new QuantizedModel[2];
            for (int t = 1; t <= 2; t++)
                try (Transformer model = Checkpoints.load(ckpt, t)) {
                    runs[t - 1] = new GptqQuantizer(QuantConfig.perChannel(4), Gptq.Options.defaults().withActOrder(true), true)
                            .quantize(model, windows, Progress.NONE);
                }
            assertEquals(runs[0].weights(), runs[1].weights());
        }
    }
}
