package lowbit.checkpoint.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;

/**
 * How one Hugging Face quantization format stores a quantized linear: the tensors {@link #write} produces from our
 * codes and group parameters and {@link #read} turns back into them, so export and import share one packing. An
 * instance holds the format's per-model settings (its quantization_config), all linears share them.
 */
public sealed interface QuantLayout permits GptqLayout, AwqLayout, CompressedTensorsLayout {

    /** The quant_method of config.json's quantization_config. */
    String method();

    /** The tensor that marks a linear as quantized in this format (qweight, weight_packed): NAME.SUFFIX. */
    String packedSuffix();

    /** Every tensor suffix this format stores per quantized linear. */
    List<String> parts();

    /** Why this layout cannot hold {@code q} exactly, or null when it can. */
    String refusal(QuantizedWeight q);

    /** Writes the linear {@code module} (without ".weight"); call only when {@link #refusal} is null. */
    void write(SafetensorsWriter st, String module, QuantizedWeight q);

    /** Reads the linear {@code module} back: codes and group parameters whose dequantization is the format's. */
    QuantizedWeight read(Tensors in, String module);

    /** [out, in] of the linear {@code module}, from the stored shapes alone (no data read). */
    long[] shape(Tensors in, String module);

    /** The quantization_config object, with {@code ignore} the linears left in float (lm_head). */
    ObjectNode quantizationConfig(List<String> ignore);

    /** The stored tensors a layout reads: raw little-endian bytes and float conversion, by name. */
    interface Tensors {
        Path file();

        TensorInfo info(String name);

        ByteBuffer bytes(String name);

        float[] floats(String name);

        /** The tensor's int32 values, refused unless it is I32 of the expected shape. */
        default int[] ints(String name, long... shape) {
            TensorInfo t = require(name, "I32", shape);
            int[] out = new int[(int) t.elements()];
            bytes(name).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
            return out;
        }

        /** Refuses a missing tensor or one of another dtype or shape. */
        default TensorInfo require(String name, String dtype, long... shape) {
            TensorInfo t = info(name);
            if (t == null) throw new FormatException(file(), "tensor " + name + " is missing");
            if (dtype != null && !t.dtype().equals(dtype))
                throw new FormatException(file(), "tensor " + name + " is " + t.dtype() + ", expected " + dtype);
            if (shape != null && !Arrays.equals(t.shape(), shape))
                throw new FormatException(file(), "tensor " + name + " has shape " + Arrays.toString(t.shape()) + ", expected "
                        + Arrays.toString(shape));
            return t;
        }
    }

    /**
     * The layout named by a quantization_config ({@code file} names config.json in messages): gptq, awq or
     * compressed-tensors.
     */
    static QuantLayout of(JsonNode qc, Path file) {
        String method = qc.path("quant_method").asText("");
        return switch (method) {
            case "gptq" -> GptqLayout.of(qc, file);
            case "awq" -> AwqLayout.of(qc, file);
            case "compressed-tensors" -> CompressedTensorsLayout.of(qc, file);
            default -> throw new FormatException(file, "quantization_config.quant_method \"" + method
                    + "\" is not one lowbit reads (gptq, awq, compressed-tensors)");
        };
    }

    /** The layout of {@code format} for linears on {@code grid}, {@code actOrder} when some have a dynamic group index. */
    static QuantLayout forExport(String format, QuantConfig grid, boolean actOrder) {
        return switch (format) {
            case "gptq" -> new GptqLayout(grid.bits(), grid.grouped() ? grid.groupSize() : GptqLayout.PER_CHANNEL,
                    grid.symmetric(), actOrder);
            case "awq" -> new AwqLayout(grid.bits(), grid.grouped() ? grid.groupSize() : 0);
            case "compressed-tensors" -> new CompressedTensorsLayout(grid.bits(), grid.symmetric(),
                    grid.grouped() ? grid.groupSize() : 0, null);
            default -> throw new IllegalArgumentException("--format " + format + " is not one of compressed-tensors, gptq, awq");
        };
    }

    /**
     * A quantized weight's group parameters as [rows][groups], a per-tensor grid broadcast to every row (the
     * same value, so exactly the same weights), and the zero of every group (a symmetric grid's fixed 2^(b-1)).
     */
    record Groups(int rows, int groups, float[] scales, int[] zeros) {
        static Groups of(QuantizedWeight q) {
            QuantConfig c = q.config();
            int g = q.groups();
            boolean perTensor = c.groupSize() == QuantConfig.PER_TENSOR;
            float[] s = new float[q.rows() * g];
            int[] z = new int[q.rows() * g];
            int fixed = (c.maxq() + 1) / 2;
            for (int r = 0; r < q.rows(); r++)
                for (int j = 0; j < g; j++) {
                    int p = (perTensor ? 0 : r) * g + j;
                    s[r * g + j] = q.scales()[p];
                    z[r * g + j] = q.zeros() == null ? fixed : (int) q.zeros()[p];
                }
            return new Groups(q.rows(), g, s, z);
        }

        /** Null, or why a stored zero is no integer in 0..maxq (the integer formats hold nothing else). */
        static String integerZeros(QuantizedWeight q) {
            if (q.zeros() == null) return null;
            for (float z : q.zeros())
                if (z != Math.rint(z) || z < 0 || z > q.config().maxq())
                    return "a zero point " + z + " is not an integer in 0.." + q.config().maxq();
            return null;
        }

        /** Null, or why a scale is not exactly a half-precision value (formats that store fp16 scales). */
        static String halfScales(QuantizedWeight q) {
            if (q.config().scaleFormat() == QuantConfig.ScaleFormat.F16) return null;
            for (float s : q.scales())
                if (Float.float16ToFloat(Float.floatToFloat16(s)) != s)
                    return "scale " + s + " is not exactly representable in fp16, which this format stores";
            return null;
        }
    }
}
