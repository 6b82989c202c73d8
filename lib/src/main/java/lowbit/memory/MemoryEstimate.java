package lowbit.memory;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;
import java.util.ArrayList;
import java.util.List;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizationRecipe;
import lowbit.studies.StudyPlan;
import lowbit.tensor.WeightFormat;

/**
 * The Java heap a job holds at its peak, by part, computed from the model's shape and the job's sizes before
 * anything is loaded, so that a job that cannot fit is refused in a second instead of dying after minutes.
 * Each part follows what the code keeps alive (see the method comments); garbage between passes is not
 * counted: {@link MemoryBudget} adds the collector's headroom on top.
 *
 * @param remedy the options that make this job smaller, for the message when it does not fit
 */
public record MemoryEstimate(String job, Map<String, Long> parts, String remedy) {
    /** Classes, tokenizer tables, the tokenized dataset, result tables: measured at 40-60 MB on the default model. */
    static final long RUNTIME_BYTES = 96L << 20;
    /** Rows of logits the forward pass materializes at once (Transformer.LOGIT_ROWS). */
    static final int LOGIT_ROWS = 256;

    public MemoryEstimate {
        parts = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(parts));
    }

    public long bytes() {
        return parts.values().stream().mapToLong(Long::longValue).sum();
    }

    /** "1.42 GB (weights 0.65 GB, calibration activations 0.60 GB, ...)", the largest parts first. */
    public String describe() {
        StringJoiner j = new StringJoiner(", ", gb(bytes()) + " (", ")");
        parts.entrySet().stream().sorted(Map.Entry.<String, Long>comparingByValue().reversed())
                .forEach(e -> j.add(e.getKey() + " " + gb(e.getValue())));
        return j.toString();
    }

    static String gb(long bytes) {
        return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }

    /**
     * Perplexity on windows of {@code seqlen} tokens (0: no evaluation, as quantize does), of the model quantized
     * first by {@code recipe} when it is not null, with the calibration the recipe draws.
     */
    public static MemoryEstimate of(String job, ModelConfig cfg, QuantizationRecipe recipe, int seqlen) {
        return of(job, cfg, recipe, seqlen, WeightFormat.FP32);
    }

    /** {@link #of(String, ModelConfig, QuantizationRecipe, int)} with the linears held in {@code weights}. */
    public static MemoryEstimate of(String job, ModelConfig cfg, QuantizationRecipe recipe, int seqlen, WeightFormat weights) {
        Builder b = new Builder(job, cfg).models(1, weights);
        if (seqlen > 0) b.forward(seqlen);
        if (recipe == null) return b.build("a smaller --seqlen");
        b.quantization(recipe);
        return b.build(calibrates(recipe) ? "a smaller --nsamples or --calib-seqlen" : "a smaller --seqlen");
    }

    /**
     * A study: its phases run one after another (statistics and sensitivity on the float model, then each
     * method, allocation and ablation cell on a model of its own), so each part is the largest any phase needs.
     */
    public static MemoryEstimate study(ModelConfig cfg, StudyPlan plan) {
        Builder b = new Builder("study", cfg).models(1).forward(plan.evalSeqlen());
        if (!plan.allocationMethods().isEmpty()) {
            // mixed precision (MixedStudy): the float model and a fresh copy per GPTQ width, every candidate width's
            // codes, and at once the probes of the sensitivity and selection windows (while a session is prepared) or of
            // the selection and held-out windows (while it is compared), as in allocation(...)
            var w = plan.allocationWindows();
            long tokens = Math.max((long) (w.sensitivity() + w.selection()) * w.seqlen(),
                    (long) w.selection() * w.seqlen() + (long) plan.heldOutWindows() * plan.heldOutSeqlen());
            b.models(plan.allocationMethods().contains("gptq") ? 2 : 1).forward(w.seqlen()).forward(plan.heldOutSeqlen())
                    .atLeast("candidate codes", (long) plan.candidates().size() * b.linearWeights())
                    .atLeast("float log-probabilities", 4 * tokens * cfg.vocabSize())
                    .atLeast("block inputs", 4 * tokens * cfg.hiddenSize() * cfg.numLayers());
        }
        // layer and Hessian statistics and the proxies: a GPTQ-like pass over the calibration windows
        b.calibration("gptq", plan.calibSamples(), plan.calibSeqlen());
        List<String> methods = new ArrayList<>(plan.allocationMethods());
        for (String spec : plan.methods()) methods.add(QuantSpec.parse(spec).method());
        for (String method : methods)
            b.calibration(method, "awq".equals(method) ? plan.awqSamples() : plan.calibSamples(), plan.calibSeqlen());
        b.forward(plan.calibSeqlen());
        int largestAblation = Math.max(plan.diversitySamples(), plan.ablationSamples().stream().mapToInt(Integer::intValue).max().orElse(0));
        for (String spec : plan.ablationSpecs())
            b.calibration(QuantSpec.parse(spec).method(), largestAblation, plan.calibSeqlen());
        return b.build("the quick plan (no --full), or fewer --eval-windows");
    }

    /**
     * A mixed-precision allocation ({@code lowbit.quant.mixed}): the float model and, for GPTQ's candidates, one fresh
     * copy at a time; the quantized codes of every candidate width (a byte per weight each); and for the probes'
     * {@code windows} of {@code seqlen} tokens the float probabilities and log-probabilities (2 x vocab floats per scored position) and every
     * block's input (hidden floats per token per layer).
     */
    public static MemoryEstimate allocation(ModelConfig cfg, QuantizationRecipe recipe, int widths, int windows, int seqlen) {
        Builder b = new Builder("allocate", cfg).models("gptq".equals(recipe.spec().method()) ? 2 : 1).forward(seqlen).quantization(recipe);
        long tokens = (long) windows * seqlen;
        b.atLeast("candidate codes", (long) widths * b.linearWeights());
        b.atLeast("float log-probabilities", 2 * 4 * tokens * cfg.vocabSize());
        b.atLeast("block inputs", 4 * tokens * cfg.hiddenSize() * cfg.numLayers());
        return b.build("fewer --sensitivity-windows or --selection-windows, or a smaller --window-tokens");
    }

    static boolean calibrates(QuantizationRecipe recipe) {
        String method = recipe.spec().method();
        return method != null && !method.equals("rtn") || recipe.spec().activationBits() != 0 && recipe.runtime().staticActivations();
    }

    /** Parts added one by one; a part given twice (two phases of a study) keeps the larger. */
    static final class Builder {
        private final String job;
        private final ModelConfig cfg;
        private final Map<String, Long> parts = new LinkedHashMap<>();

        Builder(String job, ModelConfig cfg) {
            this.job = job;
            this.cfg = cfg;
            parts.put("runtime", RUNTIME_BYTES);
        }

        /**
         * Float32 weights of {@code copies} loaded models: every linear packed once (PackedMatrix), the token
         * embedding plus lm_head's packed copy of it (tied or not, both live), OPT's position table, the norms.
         */
        Builder models(int copies) {
            return models(copies, WeightFormat.FP32);
        }

        /**
         * {@link #models(int)} with the linears (lm_head's packed copy included) in {@code format}; embeddings, OPT's
         * position table and the norms stay float32 (Transformer keeps them so).
         */
        Builder models(int copies, WeightFormat format) {
            if (format == WeightFormat.FP32) return atLeast("weights (float32)", copies * 4L * modelFloats());
            long linears = linearWeights() + (long) cfg.vocabSize() * embedDim() + opt350Projections();
            long floats = modelFloats() - linears;
            return atLeast("weights (" + format.label() + " linears, float32 embeddings and norms)",
                    copies * (format.bytes * linears + 4L * floats));
        }

        /**
         * The activation buffers of one forward pass over {@code seqlen} tokens: the residual stream, norm, q,
         * k, v, the tiled keys and packed values, attention and MLP outputs, the MLP's two intermediate rows, and
         * LOGIT_ROWS rows of logits.
         */
        Builder forward(int seqlen) {
            long t = seqlen, h = cfg.hiddenSize(), ff = cfg.intermediateSize();
            long tiled = (t + 63) / 64 * 64;
            long floats = t * (4 * h + 2L * cfg.qDim() + 3L * cfg.kvDim() + 2 * ff) + tiled * cfg.kvDim()
                    + LOGIT_ROWS * ((long) cfg.vocabSize() + embedDim());
            return atLeast("forward pass at seqlen " + seqlen, 4 * floats);
        }

        /**
         * What quantizing with {@code method} keeps beyond the weights. Every calibrating method holds the
         * current block's input for every window (SequentialCalibration: nsamples x seqlen x hidden floats);
         * GPTQ (and BiLLM, the same loop) adds one double Hessian per distinct linear input of a block and its per-linear work on the
         * widest linear; AWQ keeps about (4 hidden + 2 intermediate) floats per calibration token
         * (BlockActivations); every weight method keeps the quantized codes (at most a byte per weight).
         */
        Builder calibration(String method, int nsamples, int seqlen) {
            if (method != null) atLeast("quantized codes", linearWeights());
            if (nsamples == 0 || method == null || method.equals("rtn")) return this;
            long tokens = (long) nsamples * seqlen, h = cfg.hiddenSize(), ff = cfg.intermediateSize();
            if (!method.equals("smoothquant")) atLeast("calibration activations", 4 * tokens * h);
            switch (method) {
                case "gptq", "billm" -> {
                    long q = cfg.qDim();
                    atLeast("GPTQ Hessians (float64)", 8 * (2 * h * h + q * q + ff * ff));
                    // the widest linear's weight in doubles twice (working copy and quantized result), its Hessian's
                    // copy and the inverse Cholesky factor
                    long work = 0;
                    for (long[] shape : new long[][] {{q, h}, {h, q}, {ff, h}, {h, ff}})
                        work = Math.max(work, 2 * shape[0] * shape[1] + 2 * shape[1] * shape[1]);
                    atLeast("GPTQ per-linear work", 8 * work);
                }
                case "awq" -> atLeast("AWQ block activations", 4 * tokens * (4 * h + 2 * ff));
                default -> { }
            }
            return this;
        }

        private Builder atLeast(String part, long bytes) {
            parts.merge(part, bytes, Math::max);
            return this;
        }

        /** What {@code recipe} draws and keeps: its method's calibration, or a forward pass for static activation scales. */
        Builder quantization(QuantizationRecipe recipe) {
            QuantizationRecipe.Calibration c = recipe.resolvedCalibration();
            if (!calibrates(recipe)) return calibration(recipe.spec().method(), 0, 0);
            return calibration(recipe.spec().method(), c.nsamples(), c.seqlen()).forward(c.seqlen());
        }

        public MemoryEstimate build(String remedy) {
            return new MemoryEstimate(job, parts, remedy);
        }

        private long embedDim() {
            return cfg.family() == ModelConfig.Family.OPT ? cfg.wordEmbedProjDim() : cfg.hiddenSize();
        }

        private long linearWeights() {
            long h = cfg.hiddenSize(), ff = cfg.intermediateSize(), q = cfg.qDim(), kv = cfg.kvDim();
            boolean gated = cfg.family() == ModelConfig.Family.LLAMA;
            long attention = cfg.family() == ModelConfig.Family.OPT ? 4 * h * h : 2 * h * q + 2 * h * kv;
            return cfg.numLayers() * (attention + (gated ? 3 : 2) * h * ff);
        }

        private long modelFloats() {
            long h = cfg.hiddenSize(), e = embedDim();
            long floats = linearWeights() + 2L * cfg.vocabSize() * e + (long) cfg.numLayers() * 4 * h;
            if (cfg.family() == ModelConfig.Family.OPT) floats += (cfg.maxPositions() + 2L) * h + opt350Projections();
            return floats;
        }

        /** OPT-350m's project_in and project_out, linears between embedDim and hidden. */
        private long opt350Projections() {
            long h = cfg.hiddenSize(), e = embedDim();
            return cfg.family() == ModelConfig.Family.OPT && e != h ? 2 * e * h : 0;
        }
    }
}
