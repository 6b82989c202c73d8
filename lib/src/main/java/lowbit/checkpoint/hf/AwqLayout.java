package lowbit.checkpoint.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import lowbit.io.FormatException;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;

/**
 * llm-awq's GEMM layout (AutoAWQ's WQLinear_GEMM, version "gemm", as transformers loads it): {@code qweight} int32
 * [in, out / 8], the 4-bit codes of eight consecutive outputs per word in AWQ's interleaved order (output 8c + ORDER[k]
 * in bits 4k..4k+3, the order its GEMM kernel unpacks); {@code qzeros} int32 [groups, out / 8], packed the same way and
 * stored as they are; {@code scales} fp16 [groups, out]. w = scale * (q - zero). 4 bits only, groups of equal size.
 */
public record AwqLayout(int bits, int groupSize) implements QuantLayout {
    static final int[] ORDER = {0, 2, 4, 6, 1, 3, 5, 7};
    private static final int PER = 8;
    private static final List<String> PARTS = List.of("qweight", "qzeros", "scales");

    static AwqLayout of(JsonNode qc, Path file) {
        int bits = qc.path("bits").asInt(qc.path("w_bit").asInt(0));
        if (bits != 4) throw new FormatException(file, "quantization_config.bits " + bits + ": AWQ's GEMM layout is 4-bit only");
        String version = qc.path("version").asText("gemm").toLowerCase();
        if (!version.equals("gemm"))
            throw new FormatException(file, "quantization_config.version \"" + version + "\": lowbit reads AWQ's gemm layout only");
        if (!qc.path("zero_point").asBoolean(true))
            throw new FormatException(file, "quantization_config.zero_point false: lowbit reads AWQ's zero-point layout only");
        int g = qc.path("group_size").asInt(qc.path("q_group_size").asInt(0));
        if (g < 1) throw new FormatException(file, "quantization_config.group_size " + g + " must be >= 1");
        return new AwqLayout(bits, g);
    }

    @Override
    public String method() {
        return "awq";
    }

    @Override
    public String packedSuffix() {
        return "qweight";
    }

    @Override
    public List<String> parts() {
        return PARTS;
    }

    @Override
    public String refusal(QuantizedWeight q) {
        if (bits != 4) return "AWQ's GEMM layout holds 4-bit codes only, not " + bits;
        if (groupSize < 1) return "AWQ's GEMM layout needs groups (one group size in its config); this grid is per-channel or per-tensor";
        if (q.columns() % groupSize != 0)
            return "group size " + groupSize + " does not divide the " + q.columns() + " inputs (AWQ's groups are all equal)";
        if (q.rows() % PER != 0) return q.rows() + " outputs are not a multiple of 8 codes per int32";
        if (q.groupIndex() != null) return "AWQ's layout has no group index for act-order's moved columns";
        String z = QuantLayout.Groups.integerZeros(q);
        return z != null ? z : QuantLayout.Groups.halfScales(q);
    }

    @Override
    public void write(SafetensorsWriter st, String module, QuantizedWeight q) {
        int in = q.columns(), out = q.rows(), words = out / PER;
        byte[] codes = q.codes();
        int[] qweight = new int[in * words];
        for (int i = 0; i < in; i++)
            for (int c = 0; c < words; c++)
                for (int k = 0; k < PER; k++)
                    qweight[i * words + c] |= (codes[(c * PER + ORDER[k]) * in + i] & 0xF) << (4 * k);
        QuantLayout.Groups g = QuantLayout.Groups.of(q);
        float[] scales = new float[g.groups() * out];
        int[] qzeros = new int[g.groups() * words];
        for (int j = 0; j < g.groups(); j++) {
            for (int o = 0; o < out; o++) scales[j * out + o] = g.scales()[o * g.groups() + j];
            for (int c = 0; c < words; c++)
                for (int k = 0; k < PER; k++)
                    qzeros[j * words + c] |= (g.zeros()[(c * PER + ORDER[k]) * g.groups() + j] & 0xF) << (4 * k);
        }
        st.i32(module + ".qweight", qweight, in, words);
        st.i32(module + ".qzeros", qzeros, g.groups(), words);
        st.f16(module + ".scales", scales, g.groups(), out);
    }

    @Override
    public QuantizedWeight read(Tensors in, String module) {
        long[] wShape = in.require(module + ".qweight", "I32", (long[]) null).shape();
        long[] sShape = in.require(module + ".scales", "F16", (long[]) null).shape();
        if (wShape.length != 2 || sShape.length != 2 || sShape[1] != wShape[1] * PER)
            throw new FormatException(in.file(), module + ": qweight " + java.util.Arrays.toString(wShape) + " and scales "
                    + java.util.Arrays.toString(sShape) + " do not agree on the output size");
        int columns = (int) wShape[0], words = (int) wShape[1], out = words * PER, groups = (int) sShape[0];
        if (columns % groupSize != 0 || columns / groupSize != groups)
            throw new FormatException(in.file(), module + ": scales hold " + groups + " groups, group_size " + groupSize + " over "
                    + columns + " inputs needs " + (double) columns / groupSize);
        int[] qweight = in.ints(module + ".qweight", wShape);
        int[] qzeros = in.ints(module + ".qzeros", groups, words);
        float[] s = in.floats(module + ".scales");
        byte[] codes = new byte[out * columns];
        for (int i = 0; i < columns; i++)
            for (int c = 0; c < words; c++)
                for (int k = 0; k < PER; k++)
                    codes[(c * PER + ORDER[k]) * columns + i] = (byte) ((qweight[i * words + c] >>> (4 * k)) & 0xF);
        float[] scales = new float[out * groups], zeros = new float[out * groups];
        for (int j = 0; j < groups; j++) {
            for (int o = 0; o < out; o++) scales[o * groups + j] = s[j * out + o];
            for (int c = 0; c < words; c++)
                for (int k = 0; k < PER; k++)
                    zeros[(c * PER + ORDER[k]) * groups + j] = (qzeros[j * words + c] >>> (4 * k)) & 0xF;
        }
        QuantConfig cfg = new QuantConfig(4, false, groupSize, QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F16, false);
        return new QuantizedWeight(out, columns, cfg, BitPacking.pack(codes, 4), scales, zeros, null);
    }

    @Override
    public long[] shape(Tensors in, String module) {
        long[] w = in.require(module + ".qweight", "I32", (long[]) null).shape();
        if (w.length != 2) throw new FormatException(in.file(), module + ".qweight must be 2-D");
        return new long[] {w[1] * PER, w[0]};
    }

    @Override
    public ObjectNode quantizationConfig(List<String> ignore) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("quant_method", "awq");
        c.put("bits", bits);
        c.put("group_size", groupSize);
        c.put("zero_point", true);
        c.put("version", "gemm");
        c.putNull("modules_to_not_convert");
        return c;
    }
}
