package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.cuda.Cuda;
import lowbit.cuda.CudaException;
import lowbit.cuda.Device;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.Test;

/** The evaluator's device choice where no GPU is needed: the CPU path, and the refusals made before a GPU is touched. */
class EvaluatorDeviceTest {
    @Test
    void optionsDefaultToTheCpuAndWithDeviceKeepsTheRest() {
        Evaluator.Options o = Evaluator.Options.of(Progress.NONE).withKld(Path.of("cache"));
        assertEquals(Device.CPU, o.device());
        assertEquals(WeightFormat.FP32, o.weights());
        Evaluator.Options g = o.withDevice(Device.CUDA, WeightFormat.BF16);
        assertEquals(Device.CUDA, g.device());
        assertEquals(WeightFormat.BF16, g.weights());
        assertEquals(Path.of("cache"), g.kldCache());
        assertEquals(Device.CUDA, g.withKld(null).device(), "withKld keeps the device");
    }

    @Test
    void theCpuPathIsTheTransformersOwnPerplexityAndSaysSo() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup)");
        try (EvaluatedModel m = EvaluatedModel.load(Checkpoints.open(bin.toString(), null), 2)) {
            Evaluator.Request req = new Evaluator.Request("wikitext2", 64, 3);
            Evaluator.Report r = Evaluator.perplexity(m, req, Evaluator.Options.of(Progress.NONE).withDevice(Device.CPU, WeightFormat.FP32));
            int[] ids = Evaluator.tokens(m.checkpoint(), m.tokenizer(), TextDatasets.load("wikitext2"));
            double direct = Perplexity.evaluate(m.transformer(), ids, 64, 3, Progress.NONE).nllSum();
            assertEquals(direct, r.perplexity().nllSum(), 0.0);
            assertEquals("cpu", r.fields().get("device"));
        }
    }

    @Test
    void theGpuPathRefusesOptBeforeOpeningTheGpu() throws Exception {
        Path opt = Path.of(EvaluatorDeviceTest.class.getClassLoader().getResource("tiny/opt").toURI());
        try (Checkpoint c = Checkpoints.open(opt); Transformer t = Checkpoints.load(c, 1)) {
            EvaluatedModel m = EvaluatedModel.of(c, t, null, null);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Evaluator.onGpu(m, WeightFormat.FP32, 16));
            assertEquals(t.source() + " is OPT (opt): the GPU forward pass runs the Llama family (Llama, Mistral, SmolLM, Qwen2, Qwen3);"
                    + " use --device cpu", e.getMessage());
        }
    }

    @Test
    void theGpuPathWithoutAGpuIsTheDriversOneLine() throws Exception {
        String reason = Cuda.unavailableReason();
        assumeTrue(reason != null, "this machine has a GPU: DeviceModelGpuTest covers the GPU path");
        Path llama = Path.of(EvaluatorDeviceTest.class.getClassLoader().getResource("tiny/llama").toURI());
        try (Checkpoint c = Checkpoints.open(llama); Transformer t = Checkpoints.load(c, 1)) {
            EvaluatedModel m = EvaluatedModel.of(c, t, null, null);
            assertEquals(reason, assertThrows(CudaException.class, () -> Evaluator.onGpu(m, WeightFormat.FP32, 16)).getMessage());
        }
    }
}
