package lowbit.quant;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.cuda.Device;
import lowbit.io.FormatException;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.activation.ActivationQuantizer;
import lowbit.quant.activation.KvWidths;
import lowbit.quant.awq.Awq;
import lowbit.quant.billm.Billm;
import lowbit.quant.billm.BillmQuantizer;
import lowbit.quant.gptq.Gptq;
import lowbit.quant.gptq.GptqQuantizer;
import lowbit.quant.observer.ObserverSpec;
import lowbit.quant.rotation.QuaRot;
import lowbit.quant.smoothquant.SmoothQuant;
import lowbit.tokenizer.Tokenizer;

/**
 * Everything that decides a quantized model: the --quant spec, each method's options and the calibration
 * draw. {@code QuantizationRecipe.of("gptq:w4g128").apply(model, tokenizer, progress)} quantizes a loaded
 * model in place, attaches the activation and KV-cache hooks the spec asks for, and returns what it did
 * with the provenance a result row needs. Options are grouped by what they belong to (the weight grid, GPTQ,
 * AWQ, SmoothQuant, runtime activations and KV cache, calibration), one record each, so that changing one
 * option rebuilds one record.
 */
public record QuantizationRecipe(QuantSpec spec, WeightOptions weights, GptqOptions gptq, Awq.Options awq,
                                 SmoothQuantOptions smoothQuant, RuntimeOptions runtime, Calibration calibration,
                                 RotationOptions rotation) {

    /** The rotation a spec's quarot term applies: the seed of its random Hadamard signs. */
    public record RotationOptions(long seed) {
        public static RotationOptions defaults() {
            return new RotationOptions(0);
        }
    }

    /**
     * The weight grid beyond the spec, for every method.
     *
     * @param mseClip      search the grid's range for the least error (GPTQ's quantizer mse option)
     * @param scaleFormat  precision the scales are stored in
     * @param bitsMap      per-linear grids (mixed precision: rtn, gptq and awq) and optionally per-layer KV-cache widths,
     *                     or null for the spec's grid everywhere
     */
    public record WeightOptions(boolean mseClip, QuantConfig.ScaleFormat scaleFormat, BitsMap bitsMap) {
        public WeightOptions {
            if (scaleFormat == null) throw new IllegalArgumentException("a scale format is required");
        }

        public static WeightOptions defaults() {
            return new WeightOptions(false, QuantConfig.ScaleFormat.F16, null);
        }

        public WeightOptions withBitsMap(BitsMap map) {
            return new WeightOptions(mseClip, scaleFormat, map);
        }
    }

    /** GPTQ: the per-layer algorithm's options, and whether q/k/v, o, up/gate, down are calibrated one after another. */
    public record GptqOptions(Gptq.Options layer, boolean trueSequential) {
        public GptqOptions {
            if (layer == null) throw new IllegalArgumentException("GPTQ layer options are required");
        }

        public static GptqOptions defaults() {
            return new GptqOptions(Gptq.Options.defaults(), false);
        }
    }

    /** SmoothQuant: the migration strength alpha in [0, 1]. */
    public record SmoothQuantOptions(double alpha) {
        public SmoothQuantOptions {
            if (!(alpha >= 0 && alpha <= 1)) throw new IllegalArgumentException("--alpha must be in [0, 1], got " + alpha);
        }

        public static SmoothQuantOptions defaults() {
            return new SmoothQuantOptions(0.5);
        }
    }

    /**
     * What runs quantized at inference beyond the spec's aA and kvB terms.
     *
     * @param staticActivations  aA terms use per-tensor static scales from calibration instead of per-token dynamic
     * @param kvKeyBits          overrides the kvB term for keys (0: as the spec says); likewise values
     * @param kvGroupSize        KV groups along the head dimension (0: the whole head)
     * @param observer           the observer that sets the static scales (null: not chosen, min/max)
     */
    public record RuntimeOptions(boolean staticActivations, int kvKeyBits, int kvValueBits, int kvGroupSize, ObserverSpec observer) {
        public RuntimeOptions(boolean staticActivations, int kvKeyBits, int kvValueBits, int kvGroupSize) {
            this(staticActivations, kvKeyBits, kvValueBits, kvGroupSize, null);
        }

        public static RuntimeOptions defaults() {
            return new RuntimeOptions(false, 0, 0, 0);
        }

        /** The observer static scales come from: the chosen one, else min/max (the reference's absmax). */
        public ObserverSpec observerOrDefault() {
            return observer == null ? ObserverSpec.MINMAX : observer;
        }
    }

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

    /**
     * What {@link #apply} did. {@code calibration} is null for calibration-free recipes, {@code model} when no weights changed,
     * {@code rotation} when the spec has no quarot term.
     */
    public record Outcome(QuantizationRecipe recipe, QuantizedModel model, CalibrationSet calibration, RuntimeQuantization runtime,
                          Map<String, Object> runtimeDescription, QuaRot.Applied rotation, Device device) {

        /** Method, grid, options, bits per weight, calibration draw, runtime quantization and timings. */
        public Map<String, Object> provenance() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("spec", recipe.spec().text());
            m.put("method", model == null ? null : model.method());
            m.put("grid", model == null ? null : model.grid());
            m.put("options", model == null ? Map.of() : model.options());
            m.put("bits_per_weight", model == null ? 32.0 : model.bitsPerWeight());
            if (model != null && model.options().get("bits_per_weight_paper") instanceof Double paper) m.put("bits_per_weight_paper", paper);
            m.put("quantized_parameters", model == null ? 0 : model.parameters());
            m.put("calibration", calibration == null ? null : calibration.provenance());
            BitsMap map = recipe.weights().bitsMap();
            if (map != null) {
                Map<String, Object> b = new LinkedHashMap<>();
                b.put("file", String.valueOf(map.source()));
                b.put("layers", map.layers());
                if (map.kv() != null) b.put("kv_layers", map.kv().widths().describeLayers());
                m.put("bits_map", b);
            }
            m.put("runtime", runtimeDescription);
            if (rotation != null) m.put("rotation", rotation.describe());
            m.put("timings", model == null ? Map.of() : model.timings());
            m.put("device", device.label());
            return m;
        }
    }

    public static QuantizationRecipe of(String spec) {
        return of(QuantSpec.parse(spec));
    }

    /** Every option at its default (the references' settings). */
    public static QuantizationRecipe of(QuantSpec spec) {
        return new QuantizationRecipe(spec, WeightOptions.defaults(), GptqOptions.defaults(), Awq.Options.defaults(),
                SmoothQuantOptions.defaults(), RuntimeOptions.defaults(), Calibration.defaults(), RotationOptions.defaults());
    }

    public QuantizationRecipe withSpec(QuantSpec s) {
        return new QuantizationRecipe(s, weights, gptq, awq, smoothQuant, runtime, calibration, rotation);
    }

    public QuantizationRecipe withWeights(WeightOptions w) {
        return new QuantizationRecipe(spec, w, gptq, awq, smoothQuant, runtime, calibration, rotation);
    }

    /** {@link #withWeights} with only the bits map changed. */
    public QuantizationRecipe withBitsMap(BitsMap map) {
        return withWeights(weights.withBitsMap(map));
    }

    public QuantizationRecipe withGptq(GptqOptions g) {
        return new QuantizationRecipe(spec, weights, g, awq, smoothQuant, runtime, calibration, rotation);
    }

    public QuantizationRecipe withAwq(Awq.Options a) {
        return new QuantizationRecipe(spec, weights, gptq, a, smoothQuant, runtime, calibration, rotation);
    }

    public QuantizationRecipe withSmoothQuant(SmoothQuantOptions o) {
        return new QuantizationRecipe(spec, weights, gptq, awq, o, runtime, calibration, rotation);
    }

    public QuantizationRecipe withRuntime(RuntimeOptions r) {
        return new QuantizationRecipe(spec, weights, gptq, awq, smoothQuant, r, calibration, rotation);
    }

    public QuantizationRecipe withCalibration(Calibration c) {
        return new QuantizationRecipe(spec, weights, gptq, awq, smoothQuant, runtime, c, rotation);
    }

    public QuantizationRecipe withRotation(RotationOptions r) {
        return new QuantizationRecipe(spec, weights, gptq, awq, smoothQuant, runtime, calibration, r);
    }

    /** The grid of one linear: the bits map's entry (with this recipe's scale format and clip search), else the spec's. */
    public QuantConfig weightConfig(String linear) {
        BitsMap map = weights.bitsMap();
        return map == null ? weightConfig() : map.configFor(linear).withScaleFormat(weights.scaleFormat()).withMseClip(weights.mseClip());
    }

    /** The weight grid: the spec's with this recipe's scale format and clip search. */
    public QuantConfig weightConfig() {
        return spec.weightConfig().withScaleFormat(weights.scaleFormat()).withMseClip(weights.mseClip());
    }

    /** BiLLM's options: the spec's g as its block size, GPTQ's --percdamp, the recipe's scale format. */
    public Billm.Options billmOptions() {
        return new Billm.Options(gptq.layer().percdamp(), spec.groupSize(), weights.scaleFormat());
    }

    /** Whether {@link #apply} draws calibration windows: every weight method but RTN does, and static activation scales. */
    public boolean calibrates() {
        return spec.method() != null && !spec.method().equals("rtn") || (spec.activationBits() != 0 && runtime.staticActivations());
    }

    /** The calibration this recipe draws, with the method's default length filled in. */
    public Calibration resolvedCalibration() {
        return calibration.resolved(spec.method());
    }

    private int keyBits() {
        return runtime.kvKeyBits() != 0 ? runtime.kvKeyBits() : spec.kvBits();
    }

    private int valueBits() {
        return runtime.kvValueBits() != 0 ? runtime.kvValueBits() : spec.kvBits();
    }

    /** Checks what this build can run before any work starts, naming the offending option or layer. */
    public void validate(Transformer model) {
        if (runtime.observer() != null) {
            if (spec.activationBits() == 0)
                throw new IllegalArgumentException("--observer " + runtime.observer() + " sets static activation scales and --quant " + spec
                        + " quantizes no activations (weights and the KV cache take no observer); give an aA term, e.g. rtn:w8a8 or smoothquant:w8a8");
            if (!runtime.staticActivations())
                throw new IllegalArgumentException("--observer " + runtime.observer() + " chooses static activation scales; add --act-static "
                        + "(without it the aA terms are quantized per token, dynamically)");
        }
        if (!spec.quantizesWeights() && !spec.rotates() && spec.kvBits() == 0 && runtime.kvKeyBits() == 0 && runtime.kvValueBits() == 0)
            throw new IllegalArgumentException("--quant " + spec + " quantizes nothing");
        if (spec.rotates()) {
            try {
                QuaRot.check(model.config());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("--quant " + spec + ": " + e.getMessage(), e);
            }
        }
        if (spec.method() != null && spec.method().equals("smoothquant") && spec.activationBits() == 0)
            throw new IllegalArgumentException("--quant " + spec + ": SmoothQuant smooths activations for their quantization; give aA (e.g. smoothquant:w8a8)");
        if ((spec.method() != null && (spec.method().equals("awq") || spec.method().equals("smoothquant"))) && !model.config().normBefore())
            throw new IllegalArgumentException("--quant " + spec + ": " + spec.method() + " folds scales into the norm in front of each "
                    + "sub-layer and this post-norm model (OPT do_layer_norm_before=false) has none: no matching scaling group");
        BitsMap bitsMap = weights.bitsMap();
        if (bitsMap != null && bitsMap.kv() != null) {
            List<String> clash = new ArrayList<>();
            if (spec.kvBits() != 0) clash.add("the kv" + spec.kvBits() + " term of --quant " + spec);
            if (runtime.kvKeyBits() != 0) clash.add("--kv-key-bits");
            if (runtime.kvValueBits() != 0) clash.add("--kv-value-bits");
            if (runtime.kvGroupSize() != 0) clash.add("--kv-group");
            if (!clash.isEmpty())
                throw new IllegalArgumentException("--bits-map " + bitsMap.source() + " sets the KV cache per layer (\"kv\"); drop "
                        + String.join(", ", clash));
            bitsMap.checkKvLayers(model.config().numLayers());
            try {
                runtimeQuantization(null).hooks(model.config());
            } catch (IllegalArgumentException e) {
                if (bitsMap.source() == null) throw new IllegalArgumentException("bits map kv: " + e.getMessage(), e);
                throw new FormatException(bitsMap.source(), "kv: " + e.getMessage(), e);
            }
        }
        runtimeQuantization(null).hooks(model.config());
        if (QuantSpec.BILLM.equals(spec.method())) {
            BillmQuantizer.checkFits(model, spec.groupSize(), "--quant " + spec + ": ");
        } else if (spec.quantizesWeights()) {
            QuantConfig cfg = weightConfig();
            if (cfg.grouped()) {
                int narrowest = Integer.MAX_VALUE;
                for (int l = 0; l < model.config().numLayers(); l++)
                    for (var lin : model.blockLinears(l)) narrowest = Math.min(narrowest, lin.inFeatures());
                if (cfg.groupSize() > narrowest)
                    throw new IllegalArgumentException("--quant " + spec + ": group size " + cfg.groupSize() + " is wider than the narrowest"
                            + " linear input (" + narrowest + " columns); use a smaller g or per-channel (no g)");
            }
            if (gptq.layer().staticGroups() && !cfg.grouped())
                throw new IllegalArgumentException("--static-groups needs a group size (wBgG)");
        }
        if (bitsMap != null) {
            if (!List.of("rtn", "gptq", "awq").contains(String.valueOf(spec.method())))
                throw new IllegalArgumentException("--bits-map works with rtn, gptq and awq, not " + spec.method());
            List<String> names = new ArrayList<>();
            for (int l = 0; l < model.config().numLayers(); l++)
                for (var lin : model.blockLinears(l)) names.add(lin.name());
            bitsMap.checkLayers(names);
            bitsMap.checkModel(model.sha256(), names.size());
        }
    }

    /** Weight methods whose costly part runs on the GPU: GPTQ ({@link lowbit.quant.gptq.DeviceGptq}) and AWQ's search ({@link lowbit.quant.awq.DeviceAwq}). */
    static final List<String> GPU_METHODS = List.of("gptq", "awq");

    /**
     * Whether this recipe has work for a GPU: a GPU weight method, and no step that has none (QuaRot's rotation, BiLLM,
     * SmoothQuant, the static activation scales' calibration). RTN and runtime-only specs (kvB, aA) fit no calibration and
     * count as able: their few host-side steps run wherever the model is evaluated.
     */
    public String cpuOnlyStep() {
        if (spec.rotates()) return "the quarot rotation";
        String method = spec.method();
        if (method != null && !method.equals("rtn") && !GPU_METHODS.contains(method)) return "method " + method;
        if (spec.activationBits() != 0 && runtime.staticActivations()) return "--act-static's calibration of activation scales";
        return null;
    }

    /**
     * The device this recipe quantizes on for the --device choice: the CPU for a CPU choice, and for a GPU chosen by
     * "auto" when a step has no GPU path; a GPU asked for explicitly ({@code explicit}) with such a step is refused in one
     * line naming the step.
     */
    public Device device(Device chosen, boolean explicit) {
        if (chosen != Device.CUDA) return Device.CPU;
        String step = cpuOnlyStep();
        if (step == null) return Device.CUDA;
        if (explicit)
            throw new IllegalArgumentException("--device cuda: --quant " + spec + " has no GPU path (" + step + " runs on the CPU only); "
                    + "use --device cpu, or --device auto to run it on the CPU");
        return Device.CPU;
    }

    /** Quantizes {@code model} in place on the CPU and attaches its runtime hooks; the tokenizer is needed by methods that calibrate. */
    public Outcome apply(Transformer model, Tokenizer tokenizer, Progress progress) {
        return apply(model, tokenizer, progress, Device.CPU);
    }

    /**
     * {@link #apply(Transformer, Tokenizer, Progress)} with GPTQ's Hessians and column loops, and AWQ's scale-search losses, on
     * {@code device} (resolve it with {@link #device(Device, boolean)}; a step without a GPU path is refused here too).
     */
    public Outcome apply(Transformer model, Tokenizer tokenizer, Progress progress, Device device) {
        if (device == Device.CUDA && cpuOnlyStep() != null) device(device, true);
        validate(model);
        RuntimeQuantization hooks = runtimeQuantization(null);
        // first: calibration and the weight method must see the rotated model, whose weights they quantize
        QuaRot.Applied rotated = spec.rotates() ? QuaRot.rotate(model, rotation.seed(), hooks.quantizesKv(), progress) : null;
        String method = spec.method();
        CalibrationSet calib = calibrates() ? sample(tokenizer) : null;
        QuantizedModel qm = null;
        if (QuantSpec.BILLM.equals(method)) {
            qm = new BillmQuantizer(billmOptions()).quantize(model, calib.windows(), progress);
        } else if (method != null) {
            QuantConfig cfg = weightConfig();
            qm = switch (method) {
                case "rtn" -> QuantizedModel.rtn(model, cfg, this::weightConfig);
                case "gptq" -> new GptqQuantizer(cfg, this::weightConfig, gptq.layer(), gptq.trueSequential(), device)
                        .quantize(model, calib.windows(), progress);
                case "awq" -> new Awq(cfg, this::weightConfig, awq, device).quantize(model, calib.windows(), progress);
                case "smoothquant" -> SmoothQuant.quantize(model, SmoothQuant.activationMaxima(model, calib.windows(), progress), smoothQuant.alpha(), cfg);
                default -> throw new IllegalArgumentException("--quant " + spec + ": method " + method + " has no implementation");
            };
        }
        Map<String, Float> scales = spec.activationBits() != 0 && runtime.staticActivations()
                ? ActivationQuantizer.calibrate(model, calib.windows(), spec.activationBits(), runtime.observerOrDefault(), progress) : null;
        hooks = runtimeQuantization(scales);
        hooks.attach(model);
        return new Outcome(this, qm, calib, hooks, hooks.describe(model.config()), rotated, device);
    }

    /** The KV widths are the bits map's per layer when it has them (validate refuses them with any other KV option), else the spec's. */
    private RuntimeQuantization runtimeQuantization(Map<String, Float> scales) {
        BitsMap map = weights.bitsMap();
        if (map != null && map.kv() != null)
            return new RuntimeQuantization(spec.activationBits(), scales, map.kv().widths(), map.kv().groupSize(), observerText(scales));
        return new RuntimeQuantization(spec.activationBits(), scales, KvWidths.uniform(keyBits(), valueBits()), runtime.kvGroupSize(),
                observerText(scales));
    }

    private String observerText(Map<String, Float> scales) {
        return scales == null ? null : runtime.observerOrDefault().text();
    }

    private CalibrationSet sample(Tokenizer tokenizer) {
        Calibration c = resolvedCalibration();
        return CalibrationSampler.of(tokenizer).source(c.source()).nsamples(c.nsamples()).seqlen(c.seqlen()).seed(c.seed())
                .mode(c.mode()).sample();
    }
}
