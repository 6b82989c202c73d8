package lowbit.cli;

import java.util.Set;
import lowbit.cuda.Device;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.awq.Awq;
import lowbit.quant.gptq.Gptq;
import lowbit.quant.observer.ObserverSpec;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

/** --quant and the method and calibration options, shared by ppl and quantize. */
final class QuantOptions {
    @Option(names = "--quant", paramLabel = "SPEC",
            description = "quantize before evaluating: " + QuantSpec.GRAMMAR)
    String quant;

    @Mixin
    CalibrationOptions calibration;

    @Option(names = "--act-order", description = "GPTQ: quantize columns in order of decreasing Hessian diagonal (desc_act)")
    boolean actOrder;

    @Option(names = "--static-groups", description = "GPTQ: fit group grids before the act-order permutation")
    boolean staticGroups;

    @Option(names = "--true-sequential", description = "GPTQ: calibrate q/k/v, o, up/gate, down one after another inside each block")
    boolean trueSequential;

    @Option(names = "--percdamp", defaultValue = "0.01", paramLabel = "P",
            description = "GPTQ and BiLLM: dampening, fraction of mean diag(H) (default: ${DEFAULT-VALUE}; raised automatically if Cholesky fails)")
    double percdamp;

    @Option(names = "--gptq-block-size", defaultValue = "128", paramLabel = "B", description = "GPTQ: lazy-batch width (default: ${DEFAULT-VALUE})")
    int blockSize;

    @Option(names = "--mse-clip", description = "search the grid's range for the least error (GPTQ's quantizer mse option)")
    boolean mseClip;

    @Option(names = "--alpha", defaultValue = "0.5", paramLabel = "A", description = "SmoothQuant migration strength in [0, 1] (default: ${DEFAULT-VALUE})")
    double alpha;

    @Option(names = "--act-static", description = "aA terms: per-tensor static activation scales from calibration (default: per-token dynamic)")
    boolean actStatic;

    @Option(names = "--observer", paramLabel = "OBS",
            description = "with --act-static: the observer that sets each linear input's static range, " + ObserverSpec.GRAMMAR + " (default: minmax)")
    String observer;

    @Option(names = "--kv-key-bits", defaultValue = "0", paramLabel = "B", description = "KV cache: key bits, overriding kvB (16: float keys)")
    int kvKeyBits;

    @Option(names = "--kv-value-bits", defaultValue = "0", paramLabel = "B", description = "KV cache: value bits, overriding kvB (16: float values)")
    int kvValueBits;

    @Option(names = "--kv-group", defaultValue = "0", paramLabel = "G", description = "KV cache: group size along the head dimension (default: the whole head)")
    int kvGroup;

    @Option(names = "--duo-scaling", description = "AWQ: AutoAWQ's duo scaling, s = x^a / w^(1-a)")
    boolean duoScaling;

    @Option(names = "--no-clip", description = "AWQ: skip the clip search")
    boolean noClip;

    @Option(names = "--bits-map", paramLabel = "FILE",
            description = "per-linear bit widths (a lowbit-bits-map JSON, e.g. from ./lowbit allocate); rtn, gptq and awq")
    java.nio.file.Path bitsMap;

    @Option(names = "--scale-format", defaultValue = "f16", paramLabel = "f16|f32", description = "precision of stored scales (default: ${DEFAULT-VALUE})")
    String scaleFormat;

    @Option(names = "--rotation-seed", defaultValue = "0", paramLabel = "S",
            description = "quarot: seed of the random signs of the Hadamard rotation (default: ${DEFAULT-VALUE})")
    long rotationSeed;

    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    @Spec
    CommandSpec self;

    /** --quant parsed, or null when it is not given. */
    QuantSpec spec() {
        return quant == null ? null : QuantSpec.parse(quant);
    }

    /**
     * The recipe for {@code spec}, or for --quant when spec is null; null when neither is given, and then any
     * method or calibration option on the command line is refused, since it would apply to nothing.
     */
    QuantizationRecipe recipe(QuantSpec spec, Integer seqlenOverride) {
        QuantSpec s = spec != null ? spec : spec();
        if (s == null) {
            refuseOptionsWithoutSpec(Set.of());
            return null;
        }
        QuantConfig.ScaleFormat fmt = switch (scaleFormat.toLowerCase()) {
            case "f16" -> QuantConfig.ScaleFormat.F16;
            case "f32" -> QuantConfig.ScaleFormat.F32;
            default -> throw new IllegalArgumentException("--scale-format must be f16 or f32, got '" + scaleFormat + "'");
        };
        QuantizationRecipe.Calibration draw = calibration.calibration(seqlenOverride);
        if (!s.rotates() && matched("--rotation-seed"))
            throw new IllegalArgumentException("--rotation-seed applies only to a rotated spec (quarot+..., e.g. quarot+rtn:w4a4); --quant "
                    + s + " has no quarot term");
        return QuantizationRecipe.of(s)
                .withWeights(new QuantizationRecipe.WeightOptions(mseClip, fmt, bitsMap == null ? null : BitsMap.read(bitsMap)))
                .withGptq(new QuantizationRecipe.GptqOptions(new Gptq.Options(percdamp, blockSize, actOrder, staticGroups), trueSequential))
                .withAwq(Awq.Options.defaults().withDuoScaling(duoScaling).withClip(!noClip))
                .withSmoothQuant(new QuantizationRecipe.SmoothQuantOptions(alpha))
                .withRuntime(new QuantizationRecipe.RuntimeOptions(actStatic, kvKeyBits, kvValueBits, kvGroup,
                        observer == null ? null : ObserverSpec.parse(observer)))
                .withCalibration(draw)
                .withRotation(new QuantizationRecipe.RotationOptions(rotationSeed));
    }

    /**
     * The device {@code recipe} quantizes on for the command's --device: an explicit cuda with a step that has no GPU path
     * is refused in one line; auto runs such a recipe on the CPU.
     */
    static Device device(ModelOptions model, QuantizationRecipe recipe) {
        Device chosen = model.device();
        String option = model.deviceOption == null ? "auto" : model.deviceOption.strip().toLowerCase(java.util.Locale.ROOT);
        return recipe.device(chosen, option.equals("cuda") || option.equals("gpu"));
    }

    private boolean matched(String option) {
        if (command == null || command.commandLine() == null) return false;
        ParseResult parsed = command.commandLine().getParseResult();
        return parsed != null && parsed.hasMatchedOption(option);
    }

    /**
     * Method and calibration options only mean something with a spec; given alone they are a mistake, not a no-op.
     * {@code allowed}: options the command itself reads without a spec (export gguf's --bits-map chooses GGUF types).
     */
    void refuseOptionsWithoutSpec(Set<String> allowed) {
        if (command == null || self == null || command.commandLine() == null) return;
        ParseResult parsed = command.commandLine().getParseResult();
        if (parsed == null) return;
        for (OptionSpec o : self.options()) {
            if (o.longestName().equals("--quant") || allowed.contains(o.longestName()) || !parsed.hasMatchedOption(o.longestName())) continue;
            throw new IllegalArgumentException(o.longestName() + " applies only to quantization and no --quant SPEC was given "
                    + "(e.g. --quant kv4 for the KV cache, --quant gptq:w4g128 for the weights)");
        }
    }
}
