package lowbit.quant;

import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.gptq.Gptq;
import lowbit.quant.gptq.GptqQuantizer;
import lowbit.tokenizer.Tokenizer;

/**
 * Everything that decides a quantized model: the --quant spec, the method's options and the calibration
 * draw. {@code QuantizationRecipe.of("gptq:w4g128").apply(model, tokenizer, progress)} quantizes a loaded
 * model in place and returns what it did, with the provenance a result row needs.
 */
public record QuantizationRecipe(QuantSpec spec, Gptq.Options gptq, boolean trueSequential, boolean mseClip,
                                 QuantConfig.ScaleFormat scaleFormat, Calibration calibration) {

    /** Calibration draw: source ("c4" or a file), windows, their length, seed, and how documents are cut. */
    public record Calibration(String source, int nsamples, int seqlen, long seed, CalibrationSampler.Mode mode) {
        public static Calibration defaults() {
            return new Calibration("c4", CalibrationSampler.DEFAULT_NSAMPLES, CalibrationSampler.DEFAULT_SEQLEN,
                    CalibrationSampler.DEFAULT_SEED, CalibrationSampler.Mode.DOCUMENTS);
        }

        public Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("source", source);
            m.put("nsamples", nsamples);
            m.put("seqlen", seqlen);
            m.put("seed", seed);
            m.put("mode", mode.label());
            return m;
        }
    }

    /** What {@link #apply} did. {@code calibration} is null for calibration-free methods. */
    public record Outcome(QuantizationRecipe recipe, QuantizedModel model, CalibrationSet calibration) {
        /** Method, grid, options, bits per weight, calibration draw and timings, for manifests and result rows. */
        public Map<String, Object> provenance() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("spec", recipe.spec().text());
            m.put("method", model.method());
            m.put("grid", model.config().describe());
            m.put("options", model.options());
            m.put("bits_per_weight", model.bitsPerWeight());
            m.put("quantized_parameters", model.parameters());
            m.put("calibration", calibration == null ? null : calibration.provenance());
            m.put("timings", model.timings());
            return m;
        }
    }

    public static QuantizationRecipe of(String spec) {
        return new QuantizationRecipe(QuantSpec.parse(spec), Gptq.Options.defaults(), false, false,
                QuantConfig.ScaleFormat.F16, Calibration.defaults());
    }

    public QuantizationRecipe withGptq(Gptq.Options o) {
        return new QuantizationRecipe(spec, o, trueSequential, mseClip, scaleFormat, calibration);
    }

    public QuantizationRecipe withTrueSequential(boolean t) {
        return new QuantizationRecipe(spec, gptq, t, mseClip, scaleFormat, calibration);
    }

    public QuantizationRecipe withMseClip(boolean m) {
        return new QuantizationRecipe(spec, gptq, trueSequential, m, scaleFormat, calibration);
    }

    public QuantizationRecipe withScaleFormat(QuantConfig.ScaleFormat f) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, f, calibration);
    }

    public QuantizationRecipe withCalibration(Calibration c) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, c);
    }

    /** The weight grid: the spec's bits, group and symmetry with this recipe's scale format and clip search. */
    public QuantConfig weightConfig() {
        return spec.weightConfig().withScaleFormat(scaleFormat).withMseClip(mseClip);
    }

    /** Checks what this build can run before any work starts, naming the offending part of the spec. */
    public void validate(Transformer model) {
        if (spec.activationBits() != 0)
            throw new IllegalArgumentException("--quant " + spec + ": activation quantization (a" + spec.activationBits()
                    + ") is not implemented yet; quantize weights only (e.g. " + spec.method() + ":w" + spec.weightBits() + ")");
        if (spec.kvBits() != 0)
            throw new IllegalArgumentException("--quant " + spec + ": KV-cache quantization (kv" + spec.kvBits()
                    + ") is not implemented yet; drop the kv term");
        if (!spec.quantizesWeights()) throw new IllegalArgumentException("--quant " + spec + " quantizes nothing");
        QuantConfig cfg = weightConfig();
        if (cfg.grouped()) {
            int narrowest = Integer.MAX_VALUE;
            for (int l = 0; l < model.config().numLayers(); l++)
                for (var lin : model.blockLinears(l)) narrowest = Math.min(narrowest, lin.inFeatures());
            if (cfg.groupSize() > narrowest)
                throw new IllegalArgumentException("--quant " + spec + ": group size " + cfg.groupSize() + " is wider than the narrowest"
                        + " linear input (" + narrowest + " columns); use a smaller g or per-channel (no g)");
        }
        if (gptq.staticGroups() && !cfg.grouped())
            throw new IllegalArgumentException("--static-groups needs a group size (wBgG)");
    }

    /** Quantizes {@code model} in place; the tokenizer is needed only by methods that calibrate. */
    public Outcome apply(Transformer model, Tokenizer tokenizer, Progress progress) {
        validate(model);
        QuantConfig cfg = weightConfig();
        return switch (spec.method()) {
            case "rtn" -> new Outcome(this, QuantizedModel.rtn(model, cfg), null);
            case "gptq" -> {
                CalibrationSet calib = CalibrationSampler.of(tokenizer).source(calibration.source())
                        .nsamples(calibration.nsamples()).seqlen(calibration.seqlen()).seed(calibration.seed())
                        .mode(calibration.mode()).sample();
                yield new Outcome(this, new GptqQuantizer(cfg, gptq, trueSequential).quantize(model, calib.windows(), progress), calib);
            }
            default -> throw new IllegalArgumentException("--quant " + spec + ": method " + spec.method() + " has no implementation");
        };
    }
}
