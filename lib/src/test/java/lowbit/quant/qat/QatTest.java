package lowbit.quant.qat;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.eval.EvaluatedModel;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantSpec;
import lowbit.train.AdamW;
import lowbit.train.TrainableModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** QAT end to end on the tiny Llama checkpoint (no tokenizer: training windows are seeded random token ids). */
class QatTest {
    private static final int SEQLEN = 16;

    private static Path tiny() throws Exception {
        return Path.of(QatTest.class.getClassLoader().getResource("tiny/llama").toURI());
    }

    private static Transformer load() throws Exception {
        try (Checkpoint c = Checkpoints.open(tiny())) {
            return Checkpoints.load(c, 2);
        }
    }

    private static Qat.Data data(int windows, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        List<int[]> w = new ArrayList<>();
        for (int i = 0; i < windows; i++) w.add(r.ints(SEQLEN, 0, 128).toArray());
        return Qat.Data.of(w, Map.of("source", "uniform random token ids", "seed", seed));
    }

    private static Qat.Options options(int steps, boolean lsq, boolean pact, boolean distill) {
        return new Qat.Options(steps, 1e-2, 1, 1e-3, 0.01, 2, SEQLEN, 0, lsq, pact, distill, 2);
    }

    private static double[] logSoftmax(float[] logits, int t, int V) {
        double lse = Transformer.logSumExp(logits, t * V, V);
        double[] out = new double[V];
        for (int j = 0; j < V; j++) out[j] = logits[t * V + j] - lse;
        return out;
    }

    /**
     * The written directory, loaded as `ppl --model DIR` loads it, runs exactly as the runtime model the trainer left, and
     * to 1e-5 as the training model with the trained parameters and the hook (its fake-quantized forward).
     */
    @ParameterizedTest
    @CsvSource({"rtn:w4g32,false,false,false", "rtn:w3g16,true,false,false", "rtn:w4a8,false,false,true", "rtn:w4a8,true,true,false",
            "rtn:w4g32sym,true,false,true"})
    void writtenModelRunsAsTheTrainingModel(String text, boolean lsq, boolean pact, boolean distill, @TempDir Path tmp) throws Exception {
        QuantSpec spec = QuantSpec.parse(text);
        Qat.Options o = options(3, lsq, pact, distill);
        Qat.Data data = data(6, 1);
        Path runDir = tmp.resolve("run"), out = tmp.resolve("out");
        int[] probe = data(1, 99).windows().get(0);
        float[][] inMemory;
        try (Checkpoint ckpt = Checkpoints.open(tiny()); Transformer model = Checkpoints.load(ckpt, 2); Transformer teacher = load()) {
            Qat.Result r = Qat.train(model, teacher, spec, o, data, runDir, Progress.NONE);
            assertEquals(3, r.log().size());
            assertEquals("qat", r.provenance().get("method"));
            assertEquals(3L * 2 * SEQLEN, ((Map<?, ?>) r.provenance().get("qat")).get("tokens_seen"));
            assertEquals(3, r.lossTable().rowCount());
            QuantizedModelFiles.write(out, ckpt, tiny().toString(), model, r.model(), r.provenance());
            inMemory = model.logProbs(probe);
        }
        int V = 128;
        try (Checkpoint c = Checkpoints.open(out); Transformer loaded = Checkpoints.load(c, 2);
             EvaluatedModel saved = EvaluatedModel.of(c, loaded, null, null)) {
            float[][] fromDir = saved.transformer().logProbs(probe);
            for (int t = 0; t < probe.length; t++) assertArrayEquals(inMemory[t], fromDir[t], 0f, text + ": position " + t);
        }
        try (Transformer fresh = load(); TrainableModel tm = TrainableModel.of(fresh, 2)) {
            QatHook hook = QatHook.of(spec, tm.linears(), lsq, pact);
            tm.setHook(hook);
            AdamW adam = new AdamW(tm.trainable(), Qat.Options.BETA1, Qat.Options.BETA2, Qat.Options.EPS, o.weightDecay());
            try (QatRun run = QatRun.open(runDir, Qat.identity(fresh, spec, o, data))) {
                assertEquals(3, run.resume(tm.trainable(), adam).step());
            }
            float[] logits = tm.logits(probe);
            for (int t = 0; t < probe.length; t++) {
                double[] train = logSoftmax(logits, t, V);
                for (int j = 0; j < V; j++) assertEquals(inMemory[t][j], train[j], 1e-5, text + ": position " + t + " token " + j);
            }
        }
    }

    /**
     * Killed after step 3 with a checkpoint at step 2, restarted with the same arguments: bitwise the weights and losses of one
     * uninterrupted run. The uninterrupted run goes last, on a JIT warmed by the others, so a cold-versus-warm difference in
     * the training code's arithmetic would show here too.
     */
    @Test
    void interruptedAndResumedEqualsUninterrupted(@TempDir Path tmp) throws Exception {
        QuantSpec spec = QuantSpec.parse("rtn:w4a8");
        Qat.Options o = options(4, true, true, false);
        Qat.Data data = data(8, 2);
        Progress dies = (name, total, unit) -> new Progress.Task() {
            int steps;

            @Override
            public void step(long units) {
                if (++steps == 3) throw new IllegalStateException("killed");
            }

            @Override
            public void close() {}
        };
        Path b = tmp.resolve("b");
        try (Transformer m = load()) {
            assertThrows(IllegalStateException.class, () -> Qat.train(m, m, spec, o, data, b, dies));
        }
        assertTrue(Files.exists(b.resolve("state-00000002.bin")));
        assertEquals(4, Files.readAllLines(b.resolve(QatRun.LOG)).size(), "header and 3 steps, the third past the checkpoint");
        Qat.Result resumed;
        float[][] resumedLogProbs;
        try (Transformer m = load()) {
            resumed = Qat.train(m, m, spec, o, data, b, Progress.NONE);
            resumedLogProbs = m.logProbs(data.windows().get(0));
        }
        Qat.Result once;
        try (Transformer m = load()) {
            once = Qat.train(m, m, spec, o, data, tmp.resolve("a"), Progress.NONE);
            float[][] lp = m.logProbs(data.windows().get(0));
            for (int t = 0; t < lp.length; t++) assertArrayEquals(lp[t], resumedLogProbs[t], 0f);
        }
        assertEquals(once.runtime(), resumed.runtime(), "PACT's clips as static scales");
        assertEquals(once.model().weights(), resumed.model().weights(), "LSQ steps, zeros and codes");
        assertEquals(4, resumed.log().size());
        for (int i = 0; i < 4; i++) {
            assertEquals(once.log().get(i).loss(), resumed.log().get(i).loss(), 0, "step " + (i + 1));
            assertEquals(once.log().get(i).lr(), resumed.log().get(i).lr(), 0, "step " + (i + 1));
        }
        try (var files = Files.list(b)) {
            assertEquals(List.of("state-00000004.bin"), files.filter(QatRun::isState).map(p -> p.getFileName().toString()).toList(),
                    "only the latest checkpoint is kept");
        }
    }

    @Test
    void aRunDirectoryOfOtherArgumentsIsRefused(@TempDir Path tmp) throws Exception {
        QuantSpec spec = QuantSpec.parse("rtn:w4g32");
        Qat.Data data = data(2, 3);
        try (Transformer m = load()) {
            Qat.train(m, m, spec, options(1, false, false, false), data, tmp.resolve("r"), Progress.NONE);
        }
        Qat.Options other = new Qat.Options(1, 5e-3, 1, 1e-3, 0.01, 2, SEQLEN, 0, false, false, false, 2);
        try (Transformer m = load()) {
            var e = assertThrows(IllegalArgumentException.class, () -> Qat.train(m, m, spec, other, data, tmp.resolve("r"), Progress.NONE));
            assertTrue(e.getMessage().contains("its lr is 0.01, this run's is 0.005"), e.getMessage());
        }
    }

    /** Loss on one repeated batch falls: the fake-quantized model still learns (STE, LSQ and PACT gradients flow). */
    @Test
    void overfitsOneBatch(@TempDir Path tmp) throws Exception {
        List<int[]> same = new ArrayList<>();
        int[] w = data(1, 5).windows().get(0);
        for (int i = 0; i < 40; i++) same.add(w);
        Qat.Options o = new Qat.Options(40, 1e-2, 0, 1e-2, 0, 1, SEQLEN, 0, true, true, false, 40);
        try (Transformer m = load()) {
            Qat.Result r = Qat.train(m, m, QuantSpec.parse("rtn:w4a8"), o, Qat.Data.of(same, Map.of()), tmp.resolve("r"), Progress.NONE);
            double first = r.log().get(0).loss(), last = r.log().get(39).loss();
            assertTrue(first > 4.5, "random ids start near ln 128 = 4.85: " + first);
            assertTrue(last < 0.5, "40 steps on one window: " + first + " -> " + last);
        }
    }
}
