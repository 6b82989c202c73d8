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
 * AutoGPTQ's layout, as GPTQModel writes it and transformers loads it: {@code qweight} int32 [in b / 32, out], each
 * output's codes along the inputs as one dense bit stream, least significant first (for 2, 4 and 8 bits 32 / b codes
 * per word; for 3 bits AutoGPTQ's 32 codes in 3 words, a code straddling two); {@code qzeros} int32
 * [groups, out b / 32], each group's zeros along the outputs packed the same way and stored minus one (the v1
 * "checkpoint_format gptq" convention every loader adds back; v2 stores them as they are); {@code scales} fp16
 * [groups, out]; {@code g_idx} int32 [in], the group of each input column (act-order moves columns between groups,
 * desc_act says so). w = scale[g_idx[i], o] * (q - zero). AutoGPTQ sizes its buffers as n / 32 * b: in and out are
 * multiples of 32.
 *
 * @param groupSize {@link #PER_CHANNEL} (-1, the format's own marker) for one group per output row
 */
public record GptqLayout(int bits, int groupSize, boolean symmetric, boolean descAct, boolean v1Zeros) implements QuantLayout {
    public static final int PER_CHANNEL = -1;
    private static final List<String> PARTS = List.of("qweight", "qzeros", "scales", "g_idx");
    private static final List<Integer> WIDTHS = List.of(2, 3, 4, 8);

    public GptqLayout(int bits, int groupSize, boolean symmetric, boolean descAct) {
        this(bits, groupSize, symmetric, descAct, true);
    }

    static GptqLayout of(JsonNode qc, Path file) {
        int bits = qc.path("bits").asInt(0);
        if (!WIDTHS.contains(bits))
            throw new FormatException(file, "quantization_config.bits " + qc.path("bits") + ": GPTQ's packing holds 2, 3, 4 or 8 bits");
        int g = qc.path("group_size").asInt(PER_CHANNEL);
        if (g < 1 && g != PER_CHANNEL) throw new FormatException(file, "quantization_config.group_size " + g + " is neither -1 nor >= 1");
        String fmt = qc.path("checkpoint_format").asText("gptq");
        if (!fmt.equals("gptq") && !fmt.equals("gptq_v2"))
            throw new FormatException(file, "quantization_config.checkpoint_format \"" + fmt + "\" is not gptq or gptq_v2");
        return new GptqLayout(bits, g, qc.path("sym").asBoolean(true), qc.path("desc_act").asBoolean(false), fmt.equals("gptq"));
    }

    /** int32 words of {@code n} codes, n a multiple of 32. */
    private int words(int n) {
        return n / 32 * bits;
    }

    /** Codes {@code codes[at + i * stride]}, i < n, packed into {@code dst[dstAt + j * dstStride]}. */
    private void pack(byte[] codes, int at, int stride, int n, int[] dst, int dstAt, int dstStride) {
        byte[] run = new byte[n];
        for (int i = 0; i < n; i++) run[i] = codes[at + i * stride];
        int[] w = Int32Packing.pack(run, bits);
        for (int j = 0; j < w.length; j++) dst[dstAt + j * dstStride] = w[j];
    }

    /** The inverse of {@link #pack}: n codes from the words {@code src[srcAt + j * srcStride]}. */
    private byte[] unpack(int[] src, int srcAt, int srcStride, int n) {
        int[] w = new int[words(n)];
        for (int j = 0; j < w.length; j++) w[j] = src[srcAt + j * srcStride];
        return Int32Packing.unpack(w, bits, n);
    }

    @Override
    public String method() {
        return "gptq";
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
        if (!WIDTHS.contains(bits)) return "GPTQ's packing holds 2, 3, 4 or 8 bits per code, not " + bits;
        if (q.columns() % 32 != 0 || q.rows() % 32 != 0)   // AutoGPTQ sizes qweight and qzeros as n / 32 * bits
            return "its shape " + q.rows() + "x" + q.columns() + " is not a multiple of 32, which GPTQ's packed shapes assume";
        String z = QuantLayout.Groups.integerZeros(q);
        if (z != null) return z;
        if (v1Zeros && q.zeros() != null)
            for (float v : q.zeros())
                if (v == 0) return "a zero point is 0, which GPTQ's v1 layout stores as -1 and every loader reads back as " + (1 << bits);
        return QuantLayout.Groups.halfScales(q);
    }

    @Override
    public void write(SafetensorsWriter st, String module, QuantizedWeight q) {
        int in = q.columns(), out = q.rows();
        byte[] codes = q.codes();
        int[] qweight = new int[words(in) * out];
        for (int o = 0; o < out; o++) pack(codes, o * in, 1, in, qweight, o, out);
        QuantLayout.Groups g = QuantLayout.Groups.of(q);
        int groups = g.groups();
        float[] scales = new float[groups * out];
        byte[] zeros = new byte[groups * out];   // [groups][out], v1 minus one in b bits
        for (int o = 0; o < out; o++)
            for (int j = 0; j < groups; j++) {
                scales[j * out + o] = g.scales()[o * groups + j];
                zeros[j * out + o] = (byte) ((g.zeros()[o * groups + j] - (v1Zeros ? 1 : 0)) & ((1 << bits) - 1));
            }
        int[] qzeros = new int[groups * words(out)];
        for (int j = 0; j < groups; j++) pack(zeros, j * out, 1, out, qzeros, j * words(out), 1);
        int[] gIdx = new int[in];
        for (int i = 0; i < in; i++) gIdx[i] = q.group(i);
        st.i32(module + ".qweight", qweight, words(in), out);
        st.i32(module + ".qzeros", qzeros, groups, words(out));
        st.f16(module + ".scales", scales, groups, out);
        st.i32(module + ".g_idx", gIdx, in);
    }

    @Override
    public QuantizedWeight read(Tensors in, String module) {
        long[] sShape = in.require(module + ".scales", "F16", (long[]) null).shape();
        long[] wShape = in.require(module + ".qweight", "I32", (long[]) null).shape();
        if (sShape.length != 2 || wShape.length != 2 || wShape[1] != sShape[1] || wShape[0] % bits != 0 || sShape[1] % 32 != 0)
            throw new FormatException(in.file(), module + ": qweight " + java.util.Arrays.toString(wShape) + " and scales "
                    + java.util.Arrays.toString(sShape) + " are not a GPTQ pair of " + bits + "-bit codes (in b / 32 words by out, out a multiple of 32)");
        int out = (int) sShape[1], columns = (int) (wShape[0] / bits * 32), groups = (int) sShape[0];
        QuantConfig cfg = new QuantConfig(bits, false, groupSize == PER_CHANNEL ? QuantConfig.PER_CHANNEL : groupSize,
                QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F16, false);
        if (cfg.groupsPerRow(columns) != groups)
            throw new FormatException(in.file(), module + ": scales hold " + groups + " groups, group_size " + groupSize + " over "
                    + columns + " inputs gives " + cfg.groupsPerRow(columns));
        int[] qweight = in.ints(module + ".qweight", wShape);
        int[] qzeros = in.ints(module + ".qzeros", groups, words(out));
        float[] s = in.floats(module + ".scales");
        int[] gIdx = in.info(module + ".g_idx") != null ? in.ints(module + ".g_idx", columns) : null;
        boolean contiguous = true;
        if (gIdx != null)
            for (int i = 0; i < columns; i++) {
                if (gIdx[i] < 0 || gIdx[i] >= groups)
                    throw new FormatException(in.file(), module + ".g_idx[" + i + "] is " + gIdx[i] + ", not a group 0.." + (groups - 1));
                contiguous &= gIdx[i] == (cfg.grouped() ? i / cfg.groupSize() : 0);
            }
        byte[] codes = new byte[out * columns];
        for (int o = 0; o < out; o++) System.arraycopy(unpack(qweight, o, out, columns), 0, codes, o * columns, columns);
        float[] scales = new float[out * groups], zeros = new float[out * groups];
        for (int j = 0; j < groups; j++) {
            byte[] z = unpack(qzeros, j * words(out), 1, out);
            for (int o = 0; o < out; o++) {
                scales[o * groups + j] = s[j * out + o];
                zeros[o * groups + j] = (z[o] & 0xFF) + (v1Zeros ? 1 : 0);
            }
        }
        return new QuantizedWeight(out, columns, cfg, BitPacking.pack(codes, bits), scales, zeros, contiguous ? null : gIdx);
    }

    @Override
    public long[] shape(Tensors in, String module) {
        long[] w = in.require(module + ".qweight", "I32", (long[]) null).shape();
        long[] s = in.require(module + ".scales", "F16", (long[]) null).shape();
        if (w.length != 2 || s.length != 2) throw new FormatException(in.file(), module + ": qweight and scales must be 2-D");
        return new long[] {s[1], w[0] / bits * 32};
    }

    @Override
    public ObjectNode quantizationConfig(List<String> ignore) {
        ObjectNode c = new ObjectMapper().createObjectNode();
        c.put("quant_method", "gptq");
        c.put("bits", bits);
        c.put("group_size", groupSize);
        c.put("desc_act", descAct);
        c.put("sym", symmetric);
        c.put("static_groups", false);
        c.put("true_sequential", true);
        c.put("checkpoint_format", v1Zeros ? "gptq" : "gptq_v2");
        c.put("lm_head", false);
        return c;
    }
}
