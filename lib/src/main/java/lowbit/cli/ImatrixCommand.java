package lowbit.cli;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.calibration.ImportanceMatrix;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.AtomicOutput;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "imatrix", mixinStandardHelpOptions = true,
        description = "llama.cpp's importance matrix: per linear of the blocks, the mean of x^2 of each input column over the "
                + "calibration tokens, written in llama-imatrix's GGUF format (for export gguf --imatrix, or llama-quantize --imatrix).")
final class ImatrixCommand implements Callable<Integer> {
    /** llama-imatrix's default context (-c 512): each window is one of its chunks. */
    static final int DEFAULT_SEQLEN = 512;

    @Mixin
    ModelOptions modelOptions;

    @Mixin
    CalibrationOptions calibrationOptions;

    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "new imatrix file")
    Path out;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("imatrix");
        modelOptions.requireFp32Weights("imatrix (it measures the float model that export quantizes)");
        AtomicOutput.checkFile(out);
        QuantizationRecipe.Calibration c = calibrationOptions.calibration(null);
        int seqlen = c.seqlen() == 0 ? DEFAULT_SEQLEN : c.seqlen();
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            CalibrationSet draw = CalibrationSampler.of(Checkpoints.tokenizer(ckpt)).source(c.source()).nsamples(c.nsamples())
                    .seqlen(seqlen).seed(c.seed()).mode(c.mode()).sample();
            ImportanceMatrix m = ImportanceMatrix.compute(model, draw.windows(), List.of(draw.source()), Progress.terminal());
            Map<String, Object> provenance = new LinkedHashMap<>();
            provenance.put("model", ckpt.source());
            provenance.put("model_sha256", ckpt.sha256());
            provenance.put("calibration", draw.provenance());
            provenance.put("code_version", CodeVersion.current().toString());
            Path written = m.write(out, provenance);
            System.out.printf(Locale.ROOT, "wrote %s: %d tensors, %d chunks of %d tokens from %s (%s), %.1f s%n", written,
                    m.entries().size(), m.chunkCount(), m.chunkSize(), draw.source(), draw.mode(), (System.nanoTime() - t0) / 1e9);
        }
        return 0;
    }
}
