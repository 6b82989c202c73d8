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
import lowbit.cuda.Device;
import lowbit.io.AtomicOutput;
import lowbit.memory.MemoryEstimate;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "quantize", mixinStandardHelpOptions = true,
        description = "Quantize a model's linear weights and write it as a lowbit model directory (load it with --model DIR).")
final class QuantizeCommand implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--method", paramLabel = "rtn|gptq", description = "weight method (or give --quant SPEC)")
    String method;

    @Option(names = "--bits", paramLabel = "B", description = "weight bits 2..8")
    Integer bits;

    @Option(names = "--group", paramLabel = "G", description = "input columns per group (default: per output channel)")
    Integer group;

    @Option(names = "--per-channel", description = "one grid per output channel (the default without --group)")
    boolean perChannel;

    @Option(names = "--sym", description = "symmetric grid")
    boolean sym;

    @Option(names = "--seqlen", paramLabel = "L", description = "calibration window length (same as --calib-seqlen)")
    Integer seqlen;

    @Option(names = "--out", required = true, paramLabel = "DIR", description = "new directory for the quantized model")
    Path out;

    @Option(names = "--json", description = "print one JSON object instead of text")
    boolean json;

    @Override
    public Integer call() {
        modelOptions.requireFp32Weights("quantize");
        AtomicOutput.checkDirectory(out);
        QuantizationRecipe recipe = quantOptions.recipe(spec(), seqlen);
        Device device = QuantOptions.device(modelOptions, recipe);
        long t0 = System.nanoTime();
        try (Checkpoint ckpt = modelOptions.open(); Transformer model = modelOptions.load(ckpt)) {
            recipe.validate(model);
            QuantizationRecipe.Outcome outcome = recipe.apply(model, Checkpoints.tokenizer(ckpt), Progress.terminal(), device);
            Map<String, Object> provenance = new LinkedHashMap<>(outcome.provenance());
            Path dir = modelOptions.writeQuantized(out, ckpt, model, outcome.model(), provenance, t0);
            if (json) {
                ObjectNode o = new ObjectMapper().createObjectNode();
                o.put("out", dir.toString());
                o.put("model", ckpt.source());
                o.put("model_sha256", ckpt.sha256());
                o.set("quantization", new ObjectMapper().valueToTree(provenance));
                System.out.println(o.toPrettyString());
            } else {
                System.out.printf(Locale.ROOT, "wrote %s: %s, %d linears, %.3f bits/weight, %.1f s%n", dir, recipe.spec(),
                        outcome.model() == null ? 0 : outcome.model().weights().size(),
                        outcome.model() == null ? 32.0 : outcome.model().bitsPerWeight(), (System.nanoTime() - t0) / 1e9);
            }
        }
        return 0;
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return MemoryEstimate.of("quantize", ckpt.config(), quantOptions.recipe(spec(), seqlen), 0);
        }
    }

    /** --quant, or the spec the --method/--bits/--group/--sym flags name. */
    private QuantSpec spec() {
        boolean flags = method != null || bits != null || group != null || perChannel || sym;
        if (quantOptions.quant != null) {
            if (flags) throw new IllegalArgumentException("give either --quant SPEC or --method/--bits/--group/--sym, not both");
            return quantOptions.spec();
        }
        if (group != null && perChannel) throw new IllegalArgumentException("--group and --per-channel exclude each other");
        if (method == null) throw new IllegalArgumentException("quantize needs --method rtn|gptq and --bits B (or --quant SPEC)");
        Integer b = bits;
        Integer g = group;
        boolean symmetric = sym;
        if (b == null && quantOptions.bitsMap != null) {
            // the map's default grid names the bits of layers it does not list
            QuantConfig d = BitsMap.read(quantOptions.bitsMap).defaultConfig();
            b = d.bits();
            if (g == null && !perChannel && d.grouped()) g = d.groupSize();
            symmetric = symmetric || d.symmetric();
        }
        if (b == null) throw new IllegalArgumentException("quantize needs --method rtn|gptq and --bits B (or --quant SPEC)");
        try {
            return new QuantSpec(method, b, g == null ? QuantConfig.PER_CHANNEL : g, symmetric, 0, 0);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("quantize --method " + method + " --bits " + b + (g != null ? " --group " + g : "") + ": " + e.getMessage());
        }
    }
}
