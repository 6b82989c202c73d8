package lowbit.quant.billm;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import lowbit.calibration.InputHessians;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedModel;
import lowbit.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * BiLLM on the tiny Llama checkpoint (hidden 64, MLP 128: blocks of 64 columns): the sequential wiring, the stored
 * directory read back bit for bit, and the block sizes that do not fit refused before any work.
 */
class BillmModelTest {
    static Path tiny() throws Exception {
        return Path.of(BillmModelTest.class.getClassLoader().getResource("tiny/llama").toURI());
    }

    static int[][] windows(int vocab) {
        SplittableRandom rnd = new SplittableRandom(11);
        int[][] w = new int[4][48];
        for (int[] x : w) for (int i = 0; i < x.length; i++) x[i] = rnd.nextInt(vocab);
        return w;
    }

    @Test
    void theSavedModelLoadsBackExactly(@TempDir Path tmp) throws Exception {
        Path src = tiny(), out = tmp.resolve("billm");
        Billm.Options opt = new Billm.Options(0.01, 64, QuantConfig.ScaleFormat.F16);
        QuantizedModel qm;
        double[] nll;
        int[] probe;
        try (Checkpoint c = Checkpoints.open(src); Transformer m = Checkpoints.load(c, 2)) {
            int[][] windows = windows(c.config().vocabSize());
            probe = windows[0];
            double[] fp = m.nll(probe);
            qm = new BillmQuantizer(opt).quantize(m, windows, Progress.NONE);
            assertEquals(2 * 7, qm.weights().size(), "every block linear, lm_head left in float");
            for (var e : qm.weights().entrySet())
                assertArrayEquals(e.getValue().dequantize(), m.linear(e.getKey()).weight(), "the model runs the stored weights: " + e.getKey());
            nll = m.nll(probe);
            assertNotEquals(sum(fp), sum(nll));
            assertNull(qm.config(), "no uniform grid");
            assertEquals("billm", qm.grid().get("method"));
            double paper = (double) qm.options().get("bits_per_weight_paper");
            assertTrue(paper > 1 && paper < 2, "one bit plus the salient share: " + paper);
            QuantizedModelFiles.write(out, c, src.toString(), m, qm, Map.of("spec", "billm:w1g64"));
        }
        try (Checkpoint c = Checkpoints.open(out); Transformer m = Checkpoints.load(c, 2)) {
            QuantizedCheckpoint qc = (QuantizedCheckpoint) c;
            assertEquals(qm.weights().keySet(), qc.quantizedWeights().keySet());
            for (var e : qm.weights().entrySet()) {
                assertEquals(e.getValue(), qc.quantizedWeights().get(e.getKey()), "codes, masks and fp16 parameters of " + e.getKey());
                assertArrayEquals(e.getValue().dequantize(), m.linear(e.getKey()).weight(), e.getKey());
            }
            assertArrayEquals(nll, m.nll(probe), "the loaded model scores exactly as the one quantized in memory");
            assertEquals(qm.weights().get("model.layers.1.mlp.down_proj").bitsPerWeight(),
                    qc.manifest().at("/linears/model.layers.1.mlp.down_proj/bits_per_weight").asDouble(), 0.0);
        }
    }

    @Test
    void theFirstBlockIsBinarizedOnTheFloatModelsInputs() throws Exception {
        Billm.Options opt = new Billm.Options(0.01, 64, QuantConfig.ScaleFormat.F32);
        try (Checkpoint c = Checkpoints.open(tiny()); Transformer m = Checkpoints.load(c, 2); Transformer ref = Checkpoints.load(c, 1);
             Parallel par = new Parallel(1)) {
            int[][] windows = windows(c.config().vocabSize());
            QuantizedModel qm = new BillmQuantizer(opt).quantize(m, windows, Progress.NONE);
            List<Linear> block0 = ref.blockLinears(0);
            InputHessians h = new InputHessians(0, block0, par);
            try (AutoCloseable hook = ref.addHook(h)) {
                for (int[] w : windows) ref.block(0, ref.embed(w), w.length);
            }
            for (Linear lin : block0) {
                BillmWeight expected = new Billm(h.of(lin)).quantize(lin.name(), lin.weight(), lin.outFeatures(), opt, par).weight();
                assertEquals(expected, qm.weights().get(lin.name()), lin.name());
            }
        }
    }

    @Test
    void aBlockSizeThatDoesNotFitIsRefusedBeforeAnyWork() throws Exception {
        try (Checkpoint c = Checkpoints.open(tiny()); Transformer m = Checkpoints.load(c, 1)) {
            assertEquals("--quant billm:w1g100: model.layers.0.self_attn.q_proj: BiLLM block size 100 is wider than its input (64 columns); "
                    + "use g <= 64", refused(m, "billm:w1g100"));
            assertEquals("--quant billm:w1g40: model.layers.0.self_attn.q_proj: BiLLM block size 40 leaves blocks of 40 of its 64 input columns; "
                    + "every block needs >= 50 columns (the reference's salient search ranks the top 50 columns of each block)",
                    refused(m, "billm:w1g40"));
            assertEquals("--quant billm:w1g60: model.layers.0.self_attn.q_proj: BiLLM block size 60 leaves a last block of 4 of its 64 input "
                    + "columns; every block needs >= 50 columns (the reference's salient search ranks the top 50 columns of each block)",
                    refused(m, "billm:w1g60"));
            QuantizationRecipe.of("billm:w1g64").validate(m);
        }
    }

    private static String refused(Transformer m, String spec) {
        return assertThrows(IllegalArgumentException.class, () -> QuantizationRecipe.of(spec).validate(m)).getMessage();
    }

    private static double sum(double[] v) {
        double s = 0;
        for (double x : v) s += x;
        return s;
    }

    @Test
    void storedParametersThatDisagreeWithTheManifestAreRefused(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("q");
        try (Checkpoint c = Checkpoints.open(tiny()); Transformer m = Checkpoints.load(c, 1)) {
            QuantizedModel qm = new BillmQuantizer(new Billm.Options(0.01, 64, QuantConfig.ScaleFormat.F16)).quantize(m, windows(c.config().vocabSize()), Progress.NONE);
            QuantizedModelFiles.write(out, c, "tiny", m, qm, Map.of());
        }
        Path manifest = out.resolve(QuantizedModelFiles.MANIFEST);
        Files.writeString(manifest, Files.readString(manifest).replace("\"scale_format\" : \"f16\"", "\"scale_format\" : \"f32\""));
        String msg = assertThrows(RuntimeException.class, () -> Checkpoints.open(out).close()).getMessage();
        assertTrue(msg.endsWith("tensor model.layers.0.self_attn.q_proj.params is F16, expected F32 for means and scales in scale_format f32 "
                + "as the manifest's grid says"), msg);
    }
}
