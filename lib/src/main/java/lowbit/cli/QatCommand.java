package lowbit.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.AtomicOutput;
import lowbit.memory.MemoryEstimate;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantSpec;
import lowbit.quant.qat.Qat;
import lowbit.quant.qat.QatHook;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "qat", mixinStandardHelpOptions = true,
        description = "Quantization-aware training from an RTN spec on the C4 slice (LLM-QAT's recipe), written as a lowbit model directory "
                + "(load it with --model DIR). Checkpoints into --run-dir as it goes; the same command again resumes there.")
final class QatCommand implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--quant", required = true, paramLabel = "SPEC",
            description = "the RTN grid to train for: rtn:wB[gG][aA][sym] (e.g. rtn:w4a8, rtn:w3g128, rtn:w4g128sym)")
    String quant;

    @Option(names = "--lsq", description = "learn each group's step size (LSQ), starting from the RTN scale; default: min-max scales refit every step")
    boolean lsq;

    @Option(names = "--pact", description = "learn a clip per linear input (PACT), used as a static activation scale; needs an aA term")
    boolean pact;

    @Option(names = "--distill", description = "loss: KL divergence to the float model's next-token distributions (LLM-QAT); default: next-token cross-entropy")
    boolean distill;

    @Option(names = "--steps", required = true, paramLabel = "N", description = "optimizer steps")
    int steps;

    @Option(names = "--lr", defaultValue = "2e-5", paramLabel = "X", description = "peak learning rate in (0, 1] (default: ${DEFAULT-VALUE}, LLM-QAT's)")
    double lr;

    @Option(names = "--warmup", defaultValue = "0", paramLabel = "N", description = "linear warm-up steps, at most --steps (default: ${DEFAULT-VALUE})")
    int warmup;

    @Option(names = "--min-lr", defaultValue = "0", paramLabel = "X", description = "learning rate the cosine ends at (default: ${DEFAULT-VALUE})")
    double minLr;

    @Option(names = "--weight-decay", defaultValue = "0", paramLabel = "X", description = "AdamW weight decay on matrices (default: ${DEFAULT-VALUE})")
    double weightDecay;

    @Option(names = "--batch", defaultValue = "1", paramLabel = "N", description = "windows per step, gradients accumulated over them (default: ${DEFAULT-VALUE})")
    int batch;

    @Option(names = "--seqlen", defaultValue = "512", paramLabel = "L", description = "tokens per training window (default: ${DEFAULT-VALUE})")
    int seqlen;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "seed of the training-window draw (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--calib-source", defaultValue = "c4", paramLabel = "c4|FILE",
            description = "training text: the shipped C4 train slice, or a .jsonl with \"text\" fields or a plain text file; windows drawn "
                    + "as calibration draws them (default: ${DEFAULT-VALUE})")
    String source;

    @Option(names = "--checkpoint-every", defaultValue = "50", paramLabel = "N", description = "steps between checkpoints in --run-dir (default: ${DEFAULT-VALUE})")
    int checkpointEvery;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "new directory for the trained quantized model")
    Path out;

    @Option(names = "--run-dir", paramLabel = "DIR", description = "checkpoints and loss.csv (default: DIR.qat-run beside --out)")
    Path runDir;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("qat");
        modelOptions.requireFp32Weights("qat");
        Qat.Options options = new Qat.Options(steps, lr, warmup, minLr, weightDecay, batch, seqlen, seed, lsq, pact, distill, checkpointEvery);
        QuantSpec spec = QuantSpec.parse(quant);
        QatHook.check(spec, lsq, pact);
        Path target = AtomicOutput.checkDirectory(out);
        Path run = runDir != null ? runDir.toAbsolutePath().normalize() : target.resolveSibling(target.getFileName() + ".qat-run");
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            // the runtime model stays float until training ends (the trainable model is a copy), so it is the teacher
            Qat.Result r = Qat.train(model, model, spec, options, () -> Qat.Data.sample(Checkpoints.tokenizer(ckpt), source, options), run,
                    Progress.terminal());
            Map<String, Object> provenance = new LinkedHashMap<>(r.provenance());
            Path dir = modelOptions.writeQuantized(target, ckpt, model, r.model(), provenance, t0);
            double loss = r.log().isEmpty() ? Double.NaN : r.log().get(r.log().size() - 1).loss();
            if (json) {
                ObjectNode o = new ObjectMapper().createObjectNode();
                o.put("out", dir.toString());
                o.put("run_dir", run.toString());
                o.put("model", ckpt.source());
                o.put("model_sha256", ckpt.sha256());
                o.set("quantization", new ObjectMapper().valueToTree(provenance));
                System.out.println(o.toPrettyString());
            } else {
                System.out.printf(Locale.ROOT, "wrote %s: qat %s, %d steps, final loss %.4f, %.3f bits/weight, %.1f s; loss log %s%n", dir, spec,
                        steps, loss, r.model().bitsPerWeight(), (System.nanoTime() - t0) / 1e9, run.resolve("loss.csv"));
            }
        }
        return 0;
    }

    /**
     * The runtime model, its trainable copy with gradients and AdamW's two moments (float32 each), one step's effective
     * weights packed for the forward and the backward pass with their gradient (block linears and lm_head), every block's
     * activations of one window while they fit 1 GiB (TrainableModel's rule), else the block inputs plus one recomputed block, and logits with
     * their gradient (twice with --distill: the teacher's). Checked against the default model at seqlen 512 with --lsq
     * --distill: it ran out of a 5.7 GB heap and ran in 7 GB.
     */
    @Override
    public MemoryEstimate memoryEstimate() {
        try (var ckpt = modelOptions.open()) {
            ModelConfig c = ckpt.config();
            long h = c.hiddenSize(), inter = c.intermediateSize(), layers = c.numLayers(), vocab = c.vocabSize(), t = seqlen;
            long block = h * c.qDim() + 2 * h * c.kvDim() + c.qDim() * h + 3 * h * inter;
            long linears = layers * block + vocab * h;
            long params = linears + (c.tieWordEmbeddings() ? 0 : vocab * h);
            Map<String, Long> parts = new LinkedHashMap<>();
            parts.put("runtime model", 4 * params);
            parts.put("trainable weights, gradients and AdamW moments", 4 * 4 * params);
            parts.put("effective weights for one step", 4 * 4 * linears);
            long perBlock = t * (8 * h + 2 * c.qDim() + 2 * c.kvDim() + 4 * inter) + (long) c.numHeads() * t * 2;
            // TrainableModel keeps every block's activations while they fit 1 GiB (and a quarter of the heap), else recomputes
            long kept = Math.min(4 * layers * perBlock, 1L << 30);
            parts.put("activations", Math.max(kept, 4 * (layers * t * h + perBlock)));
            parts.put("logits", 4 * 2 * t * vocab * (distill ? 2 : 1));
            parts.put("runtime", 96L << 20);
            return new MemoryEstimate("qat", parts, "a smaller --seqlen");
        }
    }
}
