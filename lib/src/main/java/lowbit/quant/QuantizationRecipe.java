package lowbit.quant;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.activation.ActivationQuantizer;
import lowbit.quant.awq.Awq;
import lowbit.quant.gptq.Gptq;
import lowbit.quant.gptq.GptqQuantizer;
import lowbit.quant.smoothquant.SmoothQuant;
import lowbit.tokenizer.Tokenizer;

/**
 * Everything that decides a quantized model: the --quant spec, each method's options and the calibration
 * draw. {@code QuantizationRecipe.of("gptq:w4g128").apply(model, tokenizer, progress)} quantizes a loaded
 * model in place, attaches the activation and KV-cache hooks the spec asks for, and returns what it did
 * with the provenance a result row needs.
 *
 * @param alpha              SmoothQuant's migration strength
 * @param staticActivations  aN terms use per-tensor static scales from calibration instead of per-token dynamic
 * @param kvKeyBits          overrides the kvB term for keys (0: as the spec says); likewise values
 * @param kvGroupSize        KV groups along the head dimension (0: the whole head)
 * @param bitsMap            per-linear grids (mixed precision, rtn and gptq), or null for the spec's grid everywhere
 */
public record QuantizationRecipe(QuantSpec spec, Gptq.Options gptq, boolean trueSequential, boolean mseClip,
                                 QuantConfig.ScaleFormat scaleFormat, Calibration calibration, Awq.Options awq,
                                 double alpha, boolean staticActivations, int kvKeyBits, int kvValueBits, int kvGroupSize,
                                 BitsMap bitsMap) {

    /**
     * Calibration draw: source ("c4" or a file), windows, their length (0: the method's default, 2048 for
     * GPTQ and static activation scales as in the GPTQ protocol, 512 for AWQ and SmoothQuant as their
     * references calibrate; AWQ keeps every linear input of a block in memory), seed, and how documents are cut.
     */
    public record Calibration(String source, int nsamples, int seqlen, long seed, CalibrationSampler.Mode mode) {
        public static Calibration defaults() {
            return new Calibration("c4", CalibrationSampler.DEFAULT_NSAMPLES, 0, CalibrationSampler.DEFAULT_SEED,
                    CalibrationSampler.Mode.DOCUMENTS);
        }

        Calibration resolved(String method) {
            if (seqlen != 0) return this;
            int s = method != null && (method.equals("awq") || method.equals("smoothquant")) ? 512 : CalibrationSampler.DEFAULT_SEQLEN;
            return new Calibration(source, nsamples, s, seed, mode);
        }
    }

    /** What {@link #apply} did. {@code calibration} is null for calibration-free recipes, {@code model} when no weights changed. */
    public record Outcome(QuantizationRecipe recipe, QuantizedModel model, CalibrationSet calibration, RuntimeQuantization runtime,
                          Map<String, Object> runtimeDescription) {
        /** Method, grid, options, bits per weight, calibration draw, runtime quantization and timings. */
        public Map<String, Object> provenance() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("spec", recipe.spec().text());
            m.put("method", model == null ? null : model.method());
            m.put("grid", model == null ? null : model.config().describe());
            m.put("options", model == null ? Map.of() : model.options());
            m.put("bits_per_weight", model == null ? 32.0 : model.bitsPerWeight());
            m.put("quantized_parameters", model == null ? 0 : model.parameters());
            m.put("calibration", calibration == null ? null : calibration.provenance());
            if (recipe.bitsMap() != null)
                m.put("bits_map", Map.of("file", String.valueOf(recipe.bitsMap().source()), "layers", recipe.bitsMap().layers()));
            m.put("runtime", runtimeDescription);
            m.put("timings", model == null ? Map.of() : model.timings());
            return m;
        }
    }

    public static QuantizationRecipe of(String spec) {
        return new QuantizationRecipe(QuantSpec.parse(spec), Gptq.Options.defaults(), false, false,
                QuantConfig.ScaleFormat.F16, Calibration.defaults(), Awq.Options.defaults(), 0.5, false, 0, 0, 0, null);
    }

    public QuantizationRecipe withGptq(Gptq.Options o) {
        return new QuantizationRecipe(spec, o, trueSequential, mseClip, scaleFormat, calibration, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withTrueSequential(boolean t) {
        return new QuantizationRecipe(spec, gptq, t, mseClip, scaleFormat, calibration, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withMseClip(boolean m) {
        return new QuantizationRecipe(spec, gptq, trueSequential, m, scaleFormat, calibration, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withScaleFormat(QuantConfig.ScaleFormat f) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, f, calibration, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withCalibration(Calibration c) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, c, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withAwq(Awq.Options a) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, calibration, a, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withAlpha(double a) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, calibration, awq, a, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withStaticActivations(boolean s) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, calibration, awq, alpha, s, kvKeyBits, kvValueBits, kvGroupSize, bitsMap);
    }

    public QuantizationRecipe withKv(int keyBits, int valueBits, int groupSize) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, calibration, awq, alpha, staticActivations, keyBits, valueBits, groupSize, bitsMap);
    }

    public QuantizationRecipe withBitsMap(BitsMap map) {
        return new QuantizationRecipe(spec, gptq, trueSequential, mseClip, scaleFormat, calibration, awq, alpha, staticActivations, kvKeyBits, kvValueBits, kvGroupSize, map);
    }

    /** The grid of one linear: the bits map's entry (with this recipe's scale format and clip search), else the spec's. */
    public QuantConfig weightConfig(String linear) {
        return bitsMap == null ? weightConfig() : bitsMap.configFor(linear).withScaleFormat(scaleFormat).withMseClip(mseClip);
    }

    /** The weight grid: the spec's with this recipe's scale format and clip search. */
    public QuantConfig weightConfig() {
        return spec.weightConfig().withScaleFormat(scaleFormat).withMseClip(mseClip);
    }

    /** The calibration this recipe draws, with the method's default length filled in. */
    public Calibration resolvedCalibration() {
        return calibration.resolved(spec.method());
    }

    private int keyBits() {
        return kvKeyBits != 0 ? kvKeyBits : spec.kvBits();
    }

    private int valueBits() {
        return kvValueBits != 0 ? kvValueBits : spec.kvBits();
    }

    /** Checks what this build can run before any work starts, naming the offending option or layer. */
    public void validate(Transformer model) {
        if (!(alpha >= 0 && alpha <= 1)) throw new IllegalArgumentException("--alpha must be in [0, 1], got " + alpha);
        if (!spec.quantizesWeights() && spec.kvBits() == 0 && kvKeyBits == 0 && kvValueBits == 0)
            throw new IllegalArgumentException("--quant " + spec + " quantizes nothing");
        if (spec.method() != null && spec.method().equals("smoothquant") && spec.activationBits() == 0)
            throw new IllegalArgumentException("--quant " + spec + ": SmoothQuant smooths activations for their quantization; give aA (e.g. smoothquant:w8a8)");
        if ((spec.method() != null && (spec.method().equals("awq") || spec.method().equals("smoothquant"))) && !model.config().normBefore())
            throw new IllegalArgumentException("--quant " + spec + ": " + spec.method() + " folds scales into the norm in front of each "
                    + "sub-layer and this post-norm model (OPT do_layer_norm_before=false) has none: no matching scaling group");
        new RuntimeQuantization(spec.activationBits(), null, keyBits(), valueBits(), kvGroupSize).hooks(model.config());
        if (spec.quantizesWeights()) {
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
        if (bitsMap != null) {
            if (!List.of("rtn", "gptq").contains(String.valueOf(spec.method())))
                throw new IllegalArgumentException("--bits-map works with rtn and gptq, not " + spec.method());
            List<String> names = new ArrayList<>();
            for (int l = 0; l < model.config().numLayers(); l++)
                for (var lin : model.blockLinears(l)) names.add(lin.name());
            bitsMap.checkLayers(names);
        }
    }

    /** Quantizes {@code model} in place and attaches its runtime hooks; the tokenizer is needed by methods that calibrate. */
    public Outcome apply(Transformer model, Tokenizer tokenizer, Progress progress) {
        validate(model);
        String method = spec.method();
        boolean calibrates = method != null && !method.equals("rtn") || (spec.activationBits() != 0 && staticActivations);
        CalibrationSet calib = calibrates ? sample(tokenizer) : null;
        QuantizedModel qm = null;
        if (method != null) {
            QuantConfig cfg = weightConfig();
            qm = switch (method) {
                case "rtn" -> QuantizedModel.rtn(model, cfg, this::weightConfig);
                case "gptq" -> new GptqQuantizer(cfg, this::weightConfig, gptq, trueSequential).quantize(model, calib.windows(), progress);
                case "awq" -> new Awq(cfg, awq).quantize(model, calib.windows(), progress);
                case "smoothquant" -> SmoothQuant.quantize(model, SmoothQuant.activationMaxima(model, calib.windows(), progress), alpha, cfg);
                default -> throw new IllegalArgumentException("--quant " + spec + ": method " + method + " has no implementation");
            };
        }
        Map<String, Float> scales = spec.activationBits() != 0 && staticActivations
                ? ActivationQuantizer.calibrate(model, calib.windows(), spec.activationBits()) : null;
        RuntimeQuantization runtime = new RuntimeQuantization(spec.activationBits(), scales, keyBits(), valueBits(), kvGroupSize);
        runtime.attach(model);
        return new Outcome(this, qm, calib, runtime, runtime.describe(model.config()));
    }

    private CalibrationSet sample(Tokenizer tokenizer) {
        Calibration c = resolvedCalibration();
        return CalibrationSampler.of(tokenizer).source(c.source()).nsamples(c.nsamples()).seqlen(c.seqlen()).seed(c.seed())
                .mode(c.mode()).sample();
    }
}
