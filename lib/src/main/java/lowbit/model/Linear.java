package lowbit.model;

import lowbit.tensor.PackedMatrix;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;

/**
 * One linear layer y = x W^T + b of a loaded model, addressed by its Hugging Face module name
 * ("model.layers.3.self_attn.q_proj"). Quantizers read {@link #weight()} and write back with
 * {@link #setWeight(float[])}; the model is not reloaded.
 *
 * <p>The weight is held in the model's {@link WeightFormat}. A bf16 linear is for evaluating float weights: setting a
 * weight keeps it exact or refuses it, so a quantizer's grid values (rarely bf16 values) are never rounded behind its back.
 */
public final class Linear {
    private final String name;
    private final int layer;
    private final String module;
    private final int out;
    private final int in;
    private PackedMatrix packed;
    private final float[] bias;

    Linear(String name, int layer, String module, float[] weight, int out, int in, float[] bias, WeightFormat format) {
        this.name = name;
        this.layer = layer;
        this.module = module;
        this.out = out;
        this.in = in;
        if (bias != null && bias.length != out)
            throw new IllegalArgumentException(name + ".bias has " + bias.length + " elements, expected " + out);
        this.bias = bias;
        try {
            this.packed = PackedMatrix.pack(weight, out, in, format);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
        }
    }

    /** Full module name, e.g. model.layers.3.mlp.down_proj. */
    public String name() {
        return name;
    }

    /** Transformer block index, -1 for layers outside the blocks (lm_head, OPT's project_in/out). */
    public int layer() {
        return layer;
    }

    /** Short module name: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (OPT: out_proj, fc1, fc2), lm_head. */
    public String module() {
        return module;
    }

    /**
     * Which activation this linear reads: attn_in (q/k/v), attn_out (o_proj, OPT's out_proj), mlp_in
     * (gate/up, OPT's fc1) or mlp_act (down_proj, fc2); linears outside that set read their own input, named
     * after their module. Linears with the same input in one block see the same activations, so calibration
     * keeps one Hessian (or one set of statistics) per input, not per linear.
     */
    public String input() {
        return switch (module) {
            case "q_proj", "k_proj", "v_proj" -> "attn_in";
            case "o_proj", "out_proj" -> "attn_out";
            case "gate_proj", "up_proj", "fc1" -> "mlp_in";
            case "down_proj", "fc2" -> "mlp_act";
            default -> module;
        };
    }

    public int outFeatures() {
        return out;
    }

    public int inFeatures() {
        return in;
    }

    /** How W is held: float32, or bf16 (rounded to nearest even when loaded). */
    public WeightFormat format() {
        return packed.format();
    }

    /** A copy of W, row-major [out][in] (a bf16 linear's values, exactly, as floats). */
    public float[] weight() {
        return packed.unpack();
    }

    /** The bias (live array, may be null). */
    public float[] bias() {
        return bias;
    }

    /**
     * Replaces W in place; the next forward pass uses it. A bf16 linear takes only bf16 values (kept exactly) and
     * refuses any other with an IllegalStateException naming it: rounding a quantizer's or a rotation's result would
     * change the model it describes without a word.
     */
    public void setWeight(float[] weight) {
        if (weight.length != out * in)
            throw new IllegalArgumentException(name + ": new weight has " + weight.length + " elements, expected "
                    + out + "x" + in);
        WeightFormat format = packed.format();
        for (int i = 0; i < weight.length; i++) {
            float v = weight[i];
            if (!Float.isFinite(v)) throw new IllegalArgumentException(name + ": new weight contains " + v);
            if (format.round(v) != v)
                throw new IllegalStateException(name + " holds bf16 weights and the new weight's element " + i + " (" + v
                        + ") is not a bf16 value; changing weights (quantizing, rotating, folding scales) needs the model"
                        + " loaded with --weights fp32");
        }
        packed = PackedMatrix.pack(weight, out, in, format);
    }

    /** W[:, j] *= s[j]: the input side of a scale fold (the producer of this linear's input is divided by s). */
    public void scaleInputs(float[] s) {
        if (s.length != in) throw new IllegalArgumentException(name + ": " + s.length + " input scales for " + in + " columns");
        float[] w = weight();
        for (int i = 0; i < out; i++)
            for (int j = 0; j < in; j++) w[i * in + j] *= s[j];
        setWeight(w);
    }

    /** W[i, :] /= s[i] and bias[i] /= s[i]: the output side of a scale fold into a preceding linear. */
    public void divideOutputs(float[] s) {
        if (s.length != out) throw new IllegalArgumentException(name + ": " + s.length + " output scales for " + out + " rows");
        float[] w = weight();
        for (int i = 0; i < out; i++) {
            for (int j = 0; j < in; j++) w[i * in + j] /= s[i];
            if (bias != null) bias[i] /= s[i];
        }
        setWeight(w);
    }

    void apply(float[] x, int rows, float[] y, Parallel par) {
        packed.multiply(x, rows, y, bias, par);
    }

    @Override
    public String toString() {
        return name + " [" + out + "x" + in + "]";
    }
}
