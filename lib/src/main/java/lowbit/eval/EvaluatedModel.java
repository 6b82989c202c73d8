package lowbit.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.cuda.Device;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.RuntimeQuantization;
import lowbit.quant.rotation.QuaRot;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;

/**
 * A model as every evaluation sees it: the checkpoint, its transformer (quantized by a recipe, or with a
 * quantized checkpoint's runtime quantization re-attached), its tokenizer, the key that separates it from any
 * other configuration in journals and caches, and its provenance. The CLI, studies and notebooks all build one
 * of these, so a quantized checkpoint evaluates the same way wherever it is loaded.
 */
public final class EvaluatedModel implements AutoCloseable {
    private final Checkpoint checkpoint;
    private final Transformer transformer;
    private final Tokenizer tokenizer;
    private final boolean owned;
    private QuantizationRecipe.Outcome outcome;
    private Map<String, Object> quantization;

    private EvaluatedModel(Checkpoint checkpoint, Transformer transformer, Tokenizer tokenizer, boolean owned) {
        this.checkpoint = checkpoint;
        this.transformer = transformer;
        this.tokenizer = tokenizer;
        this.owned = owned;
        if (checkpoint instanceof QuantizedCheckpoint qc) {
            var q = qc.manifest().path("quantization");
            // the stored weights are rotated: the online Hadamards they expect are part of the model's function
            QuaRot.Applied.restore(transformer, q.path("rotation"));
            RuntimeQuantization.fromJson(q.path("runtime")).attach(transformer);
            @SuppressWarnings("unchecked")
            Map<String, Object> m = new ObjectMapper().convertValue(q, LinkedHashMap.class);
            quantization = m;
        }
    }

    /** Opens and loads {@code checkpoint} with float32 weights; this object closes both. */
    public static EvaluatedModel load(Checkpoint checkpoint, int threads) {
        return load(checkpoint, threads, WeightFormat.FP32);
    }

    /** {@link #load(Checkpoint, int)} with the linears held in {@code weights} (bf16: float checkpoints only). */
    public static EvaluatedModel load(Checkpoint checkpoint, int threads, WeightFormat weights) {
        try {
            Transformer t = Checkpoints.load(checkpoint, threads, weights);
            try {
                return new EvaluatedModel(checkpoint, t, Checkpoints.tokenizer(checkpoint), true);
            } catch (RuntimeException e) {
                t.close();
                throw e;
            }
        } catch (RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    /** A view of a model someone else owns (a notebook's); closing this view closes nothing. */
    public static EvaluatedModel of(Checkpoint checkpoint, Transformer transformer, Tokenizer tokenizer,
                                    QuantizationRecipe.Outcome outcome) {
        EvaluatedModel m = new EvaluatedModel(checkpoint, transformer, tokenizer, false);
        if (outcome != null) m.quantized(outcome);
        return m;
    }

    /** Quantizes the transformer in place by {@code recipe} (calibrating as the recipe says) on the CPU and records it. */
    public QuantizationRecipe.Outcome quantize(QuantizationRecipe recipe, Progress progress) {
        return quantize(recipe, progress, Device.CPU);
    }

    /** As {@link #quantize(QuantizationRecipe, Progress)}, the recipe's per-layer work on {@code device}. */
    public QuantizationRecipe.Outcome quantize(QuantizationRecipe recipe, Progress progress, Device device) {
        if (outcome != null || quantization != null)
            throw new IllegalStateException(checkpoint.source() + " is already quantized; load it again to quantize it another way");
        if (transformer.weightFormat() != WeightFormat.FP32)
            throw new IllegalStateException(checkpoint.source() + " is loaded with " + transformer.weightFormat().label() + " weights, which hold"
                    + " float weights for evaluation; quantizing needs it loaded in fp32 (a quantizer's grid values are not exact in bf16)");
        QuantizationRecipe.Outcome o = recipe.apply(transformer, tokenizer, progress, device);
        quantized(o);
        return o;
    }

    private void quantized(QuantizationRecipe.Outcome o) {
        outcome = o;
        quantization = o.provenance();
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    public Transformer transformer() {
        return transformer;
    }

    public Tokenizer tokenizer() {
        return tokenizer;
    }

    /** The recipe's outcome when this object quantized the model; null for float models and quantized checkpoints. */
    public QuantizationRecipe.Outcome outcome() {
        return outcome;
    }

    /** Whether the weights or the runtime differ from the checkpoint's float model. */
    public boolean quantized() {
        return quantization != null;
    }

    /** The quantization's provenance (spec, grid, options, bits, calibration draw, runtime), or null for a float model. */
    public Map<String, Object> quantization() {
        return quantization;
    }

    /** Bits per weight of the evaluated weights: 32 for a float model, 16 when its linears are held in bf16. */
    public double bitsPerWeight() {
        if (quantization == null) return 8.0 * transformer.weightFormat().bytes;
        return quantization.get("bits_per_weight") instanceof Number n ? n.doubleValue() : 32.0;
    }

    /**
     * What separates this configuration from every other in a journal or cache: the checkpoint's sha256, plus the
     * recipe and calibration draw when quantized here, or the stored quantization when the checkpoint is quantized, plus
     * "|bf16" when the weights are held in bf16 (float32 keys stay as they were before bf16 existed). The device is the
     * evaluation's, not the model's: {@link lowbit.results.Backend#key} adds it.
     */
    public String key() {
        String k = checkpoint.sha256();
        if (outcome != null)
            k += "|" + outcome.recipe() + "|" + (outcome.calibration() == null ? "" : outcome.calibration().windowsSha256());
        WeightFormat w = transformer.weightFormat();
        return w == WeightFormat.FP32 ? k : k + "|" + w.label();
    }

    /** model, model_sha256, model_type, threads, bits_per_weight, quantization: the fields every result row carries. */
    public Map<String, Object> provenance() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model", checkpoint.source());
        m.put("model_sha256", checkpoint.sha256());
        m.put("model_type", checkpoint.config().modelType());
        m.put("threads", transformer.threads());
        m.put("bits_per_weight", bitsPerWeight());
        m.put("quantization", quantization);
        return m;
    }

    @Override
    public void close() {
        if (!owned) return;
        try {
            transformer.close();
        } finally {
            checkpoint.close();
        }
    }
}
