package lowbit.checkpoint.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;

/**
 * compressed-tensors' pack-quantized layout, as llm-compressor writes it and vLLM serves it: {@code weight_packed} int32
 * [out, ceil(in b / 32)], each row's codes a dense little-endian bit stream (element i at bit i b, a code may straddle
 * two words, the row padded to a word); codes are the signed values q - 2^(b-1) stored offset by 2^(b-1), which are our
 * unsigned codes. {@code weight_scale} [out, groups]; {@code weight_zero_point}, asymmetric only, the signed zeros
 * offset the same way and packed along the output dimension, int32 [ceil(out b / 32), groups]; {@code weight_shape}
 * int64 [2]. w = (q - zp) scale, computed in the scale's dtype: scales are written as float32 (our fp16 scales exactly)
 * so that compressed-tensors' decompression gives our float weights bit for bit.
 *
 * @param groupSize groups of this size ("group"); 0 for one per output row ("channel"), -1 for one per tensor ("tensor")
 */
public record CompressedTensorsLayout(int bits, boolean symmetric, int groupSize, String version) implements QuantLayout {
    public static final String FORMAT = "pack-quantized";
    private static final List<String> PARTS = List.of("weight_packed", "weight_scale", "weight_zero_point", "weight_shape");

    static CompressedTensorsLayout of(JsonNode qc, Path file) {
        String where = "quantization_config";
        for (String runtime : List.of("kv_cache_scheme"))
            if (!qc.path(runtime).isMissingNode() && !qc.path(runtime).isNull())
                throw new FormatException(file, where + "." + runtime + " is set: KV-cache quantization needs a runtime lowbit's import does not model");
        for (String empty : List.of("transform_config", "sparsity_config"))
            if (qc.path(empty).isObject() && !qc.path(empty).isEmpty())
                throw new FormatException(file, where + "." + empty + " is not empty: lowbit reads dense pack-quantized weights only");
        JsonNode groups = qc.path("config_groups");
        if (!groups.isObject() || groups.size() != 1)
            throw new FormatException(file, where + ".config_groups must hold exactly one scheme, found " + groups.size());
        Map.Entry<String, JsonNode> only = groups.fields().next();
        JsonNode scheme = only.getValue();
        String at = where + ".config_groups." + only.getKey();
        String format = scheme.path("format").asText(qc.path("format").asText(""));
        if (!format.equals(FORMAT))
            throw new FormatException(file, at + ": format \"" + format + "\" is not " + FORMAT + " (the one compressed-tensors layout lowbit reads)");
        boolean linear = false;
        for (Iterator<JsonNode> t = scheme.path("targets").elements(); t.hasNext(); ) linear |= t.next().asText().equals("Linear");
        if (!linear) throw new FormatException(file, at + ".targets must include \"Linear\", found " + scheme.path("targets"));
        for (String act : List.of("input_activations", "output_activations"))
            if (!scheme.path(act).isMissingNode() && !scheme.path(act).isNull())
                throw new FormatException(file, at + "." + act + " is set: activation quantization needs a runtime lowbit's import does not model");
        JsonNode w = scheme.path("weights");
        if (!w.path("type").asText().equals("int"))
            throw new FormatException(file, at + ".weights.type \"" + w.path("type").asText() + "\" is not int");
        int bits = w.path("num_bits").asInt(0);
        if (bits < 2 || bits > 8) throw new FormatException(file, at + ".weights.num_bits " + w.path("num_bits") + " is not 2..8");
        String strategy = w.path("strategy").asText();
        int g = switch (strategy) {
            case "group" -> {
                int size = w.path("group_size").asInt(0);
                if (size < 1) throw new FormatException(file, at + ".weights.group_size " + w.path("group_size") + " must be >= 1");
                yield size;
            }
            case "channel" -> 0;
            case "tensor" -> -1;
            default -> throw new FormatException(file, at + ".weights.strategy \"" + strategy + "\" is not group, channel or tensor");
        };
        String actorder = w.path("actorder").isNull() ? "" : w.path("actorder").asText("");
        if (actorder.equals("group"))
            throw new FormatException(file, at + ".weights.actorder \"group\": its weight_g_idx is not read by lowbit (static act-order is)");
        return new CompressedTensorsLayout(bits, w.path("symmetric").asBoolean(true), g, qc.path("version").asText(null));
    }

    @Override
    public String method() {
        return "compressed-tensors";
    }

    @Override
    public String packedSuffix() {
        return "weight_packed";
    }

    @Override
    public List<String> parts() {
        return PARTS;
    }

    @Override
    public String refusal(QuantizedWeight q) {
        if (groupSize > 0 && q.columns() % groupSize != 0)
            return "group size " + groupSize + " does not divide the " + q.columns() + " inputs (compressed-tensors refuses that)";
        if (q.groupIndex() != null)
            return "act-order moved columns between groups (a g_idx), which pack-quantized's decompression does not apply";
        return QuantLayout.Groups.integerZeros(q);
    }

    @Override
    public void write(SafetensorsWriter st, String module, QuantizedWeight q) {
        int out = q.rows(), in = q.columns();
        byte[] codes = q.codes();
        int words = Int32Packing.words(in, bits);
        int[] packed = new int[out * words];
        for (int o = 0; o < out; o++)
            System.arraycopy(Int32Packing.pack(java.util.Arrays.copyOfRange(codes, o * in, (o + 1) * in), bits), 0, packed, o * words, words);
        QuantLayout.Groups g = QuantLayout.Groups.of(q);
        st.i32(module + ".weight_packed", packed, out, words);
        st.f32(module + ".weight_scale", g.scales(), out, g.groups());
        if (!symmetric) {
            int zWords = Int32Packing.words(out, bits);
            int[] zp = new int[zWords * g.groups()];
            byte[] zs = new byte[out];
            for (int j = 0; j < g.groups(); j++) {
                for (int o = 0; o < out; o++) zs[o] = (byte) g.zeros()[o * g.groups() + j];
                int[] column = Int32Packing.pack(zs, bits);
                for (int w = 0; w < zWords; w++) zp[w * g.groups() + j] = column[w];
            }
            st.i32(module + ".weight_zero_point", zp, zWords, g.groups());
        }
        st.i64(module + ".weight_shape", new long[] {out, in}, 2);
    }

    @Override
    public QuantizedWeight read(Tensors in, String module) {
        TensorInfo shapeInfo = in.require(module + ".weight_shape", null, 2);
        if (!shapeInfo.dtype().equals("I64") && !shapeInfo.dtype().equals("I32"))
            throw new FormatException(in.file(), "tensor " + module + ".weight_shape is " + shapeInfo.dtype() + ", expected I64");
        float[] shape = in.floats(module + ".weight_shape");
        int out = (int) shape[0], columns = (int) shape[1];
        if (out < 1 || columns < 1) throw new FormatException(in.file(), module + ".weight_shape [" + out + ", " + columns + "] is not a matrix shape");
        QuantConfig cfg = new QuantConfig(bits, symmetric, groupSize > 0 ? groupSize : groupSize == 0 ? QuantConfig.PER_CHANNEL
                : QuantConfig.PER_TENSOR, QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F32, false);
        if (groupSize > 0 && columns % groupSize != 0)
            throw new FormatException(in.file(), module + ": group_size " + groupSize + " does not divide its " + columns + " inputs");
        int groups = cfg.groupsPerRow(columns), scaleRows = groupSize < 0 ? 1 : out;
        TensorInfo scaleInfo = in.require(module + ".weight_scale", null, (long[]) null);
        if (scaleInfo.elements() != (long) scaleRows * groups)
            throw new FormatException(in.file(), "tensor " + module + ".weight_scale has " + scaleInfo.elements() + " elements, expected "
                    + scaleRows + "x" + groups);
        if (scaleInfo.dtype().equals("F16")) cfg = cfg.withScaleFormat(QuantConfig.ScaleFormat.F16);
        int words = Int32Packing.words(columns, bits);
        int[] packed = in.ints(module + ".weight_packed", out, words);
        byte[] codes = new byte[out * columns];
        for (int o = 0; o < out; o++)
            System.arraycopy(Int32Packing.unpack(java.util.Arrays.copyOfRange(packed, o * words, (o + 1) * words), bits, columns), 0,
                    codes, o * columns, columns);
        float[] scales = in.floats(module + ".weight_scale");
        float[] zeros = null;
        if (!symmetric) {
            zeros = new float[scaleRows * groups];
            TensorInfo zi = in.require(module + ".weight_zero_point", null, (long[]) null);
            if (zi.dtype().equals("I32") && groupSize >= 0) {
                int zWords = Int32Packing.words(out, bits);
                int[] zp = in.ints(module + ".weight_zero_point", zWords, groups);
                int[] column = new int[zWords];
                for (int j = 0; j < groups; j++) {
                    for (int w = 0; w < zWords; w++) column[w] = zp[w * groups + j];
                    byte[] z = Int32Packing.unpack(column, bits, out);
                    for (int o = 0; o < out; o++) zeros[o * groups + j] = z[o] & 0xFF;
                }
            } else if (zi.dtype().equals("I8") && zi.elements() == zeros.length) {
                // unpacked signed zeros (per-tensor, and older writers): offset into our unsigned codes
                ByteBuffer b = in.bytes(module + ".weight_zero_point");
                for (int p = 0; p < zeros.length; p++) zeros[p] = b.get(p) + (1 << (bits - 1));
            } else {
                throw new FormatException(in.file(), "tensor " + module + ".weight_zero_point is " + zi + ", expected I32 packed ["
                        + Int32Packing.words(out, bits) + ", " + groups + "]");
            }
        }
        return new QuantizedWeight(out, columns, cfg, BitPacking.pack(codes, bits), scales, zeros, null);
    }

    @Override
    public long[] shape(Tensors in, String module) {
        in.require(module + ".weight_shape", null, 2);
        float[] s = in.floats(module + ".weight_shape");
        return new long[] {(long) s[0], (long) s[1]};
    }

    @Override
    public ObjectNode quantizationConfig(List<String> ignore) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode c = json.createObjectNode();
        ObjectNode group = c.putObject("config_groups").putObject("group_0");
        group.put("format", FORMAT);
        group.putNull("input_activations");
        group.putNull("output_activations");
        group.putArray("targets").add("Linear");
        ObjectNode w = group.putObject("weights");
        w.putNull("actorder");
        w.putNull("block_structure");
        w.put("dynamic", false);
        if (groupSize > 0) w.put("group_size", groupSize);
        else w.putNull("group_size");
        w.put("num_bits", bits);
        w.put("observer", "minmax");
        w.putObject("observer_kwargs");
        w.put("strategy", groupSize > 0 ? "group" : groupSize == 0 ? "channel" : "tensor");
        w.put("symmetric", symmetric);
        w.put("type", "int");
        c.put("format", FORMAT);
        c.putNull("global_compression_ratio");
        var ig = c.putArray("ignore");
        ignore.forEach(ig::add);
        c.putNull("kv_cache_scheme");
        c.put("quant_method", "compressed-tensors");
        c.put("quantization_status", "compressed");
        c.putObject("sparsity_config");
        c.putObject("transform_config");
        if (version != null) c.put("version", version);
        return c;
    }
}
