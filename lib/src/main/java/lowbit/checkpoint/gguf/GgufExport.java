package lowbit.checkpoint.gguf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Supplier;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.io.gguf.GgufValue;
import lowbit.io.gguf.GgufWriter;
import lowbit.io.gguf.Quantize;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.RuntimeQuantization;

/**
 * A model written as the GGUF file llama.cpp runs: llama.cpp's tensor names and dims, the llama architecture's
 * q/k rows in its permuted order, the metadata of the source GGUF (or of the GGUF a quantized directory was made
 * from) with general.file_type and general.quantization_version set as llama-quantize sets them, and each tensor
 * in the type {@link GgufTypePlan} chooses, computed by {@link Quantize} (llama.cpp's routines) one tensor at a
 * time while the file is written.
 *
 * <p>Three things are not re-quantized: a GGUF source tensor whose type is already the chosen one is copied
 * byte for byte (as llama-quantize copies it); and a linear quantized by lowbit on a grid that is exactly a
 * GGUF type ({@link #exactType}) is packed from its codes and scales, so nothing is rounded twice.
 */
public final class GgufExport {
    /** general.quantization_version that llama-quantize writes (ggml.h's GGML_QNT_VERSION). */
    public static final int QUANTIZATION_VERSION = 2;
    /** The metadata key of lowbit's provenance of an exported file. */
    public static final String PROVENANCE = "lowbit.provenance";

    /**
     * @param preset      --type (llama-quantize's file type), or null when none is given: then the tensors that no
     *                    explicit type or exact grid covers are Q8_0 (by the Q8_0 rules), a grid that is no GGUF type
     *                    is refused rather than re-quantized, and general.file_type is what llama.cpp's loader would
     *                    guess from the most common type
     * @param overrides   --tensor-type patterns, first match wins
     * @param explicit    per-tensor types by GGUF name (from a bits map), below the patterns
     * @param importance  per-column importance by GGUF tensor name (an imatrix), null for none
     */
    public record Options(GgufPreset preset, List<GgufTypePlan.TypeOverride> overrides, Map<String, GgmlType> explicit,
                          Function<String, float[]> importance) {
        public Options {
            overrides = List.copyOf(overrides);
            explicit = Map.copyOf(explicit);
        }

        public static Options of(GgufPreset preset) {
            return new Options(preset, List.of(), Map.of(), null);
        }

        GgufPreset rules() {
            return preset != null ? preset : GgufPreset.Q8_0;
        }
    }

    /** A tensor as the source holds it, in GGUF naming and order. */
    private record Item(String name, long[] dims, GgmlType sourceType, Supplier<float[]> floats, Supplier<byte[]> raw,
                        QuantizedWeight quantized) {}

    /**
     * What was planned and written: the tensors packed from lowbit's codes ({@code exact}), copied from the source
     * GGUF ({@code copied}), and re-quantized from a source type that was already quantized ({@code requantized},
     * which llama-quantize does only with --allow-requantize).
     */
    public record Result(Path file, GgufTypePlan plan, List<String> exact, List<String> copied, List<String> requantized,
                         long bytes, double seconds) {}

    private final ModelConfig config;
    private final Map<String, GgufValue> metadata;
    private final Map<String, Item> items = new LinkedHashMap<>();
    private final GgufTypePlan plan;
    private final Function<String, float[]> importance;
    private final GgufPreset preset;

    private GgufExport(ModelConfig config, Map<String, GgufValue> metadata, List<Item> items, Options options) {
        if (!GgufCheckpoint.ARCHITECTURES.contains(config.modelType()))
            throw new IllegalArgumentException("export gguf writes the llama, qwen2 and qwen3 architectures, not '" + config.modelType() + "'");
        this.config = config;
        this.metadata = metadata;
        this.preset = options.preset();
        this.importance = options.importance();
        for (Item i : items) this.items.put(i.name(), i);
        Map<String, GgmlType> explicit = new LinkedHashMap<>(options.explicit());
        for (Item i : items)
            if (i.quantized() != null && !explicit.containsKey(i.name())) {
                GgmlType exact = exactType(i.quantized());
                if (exact == null && options.preset() != null) continue;
                if (exact == null)
                    throw new IllegalArgumentException(i.name() + ": lowbit's grid " + i.quantized().config().label()
                            + " (" + describe(i.quantized()) + ") is no GGUF type; give --type to re-quantize its weights "
                            + "(exact grids: w4g32fmin = Q4_1, w5g32fmin = Q5_1, w4g32sym = Q4_0, w5g32sym = Q5_0, w8g32sym = Q8_0)");
                explicit.put(i.name(), exact);
            }
        List<GgufTypePlan.Tensor> tensors = items.stream()
                .map(i -> new GgufTypePlan.Tensor(i.name(), i.dims(), i.sourceType() != null ? i.sourceType() : GgmlType.F32)).toList();
        GgufTypePlan.Model model = new GgufTypePlan.Model(config.modelType(), config.numLayers(), config.numHeads(), config.numKvHeads());
        this.plan = GgufTypePlan.of(options.rules(), model, tensors, options.overrides(), explicit, importance != null);
    }

    /** Exports a checkpoint as it is: a GGUF file, or lowbit's quantized directory of one (see {@link GgufMetadata#of}). */
    public static GgufExport of(Checkpoint ckpt, Options options) {
        if (ckpt instanceof GgufCheckpoint g) {
            GgufFile f = g.gguf();
            List<Item> items = new ArrayList<>();
            for (GgufTensor t : f.tensors())
                items.add(new Item(t.name(), t.dims(), t.type(), () -> f.dequantize(t.name()), () -> bytes(f, t.name()), null));
            return new GgufExport(g.config(), f.typedMetadata(), items, options);
        }
        Map<String, QuantizedTensor> quantized = Map.of();
        if (ckpt instanceof QuantizedCheckpoint q) {
            JsonNode quant = q.manifest().path("quantization");
            refuseRuntime(q.source(), !quant.path("rotation").isMissingNode() && !quant.path("rotation").isNull(),
                    RuntimeQuantization.fromJson(quant.path("runtime")));
            quantized = q.quantizedWeights();
        }
        return fromModel(ckpt, ckpt::floats, quantized, options);
    }

    /**
     * Exports a model that lowbit's method has just quantized ({@code outcome} of {@code model}, loaded from
     * {@code ckpt}): the linears from their codes where the grid is a GGUF type, every other tensor as the
     * method left it (AWQ's scales folded into the norms included).
     */
    public static GgufExport of(Checkpoint ckpt, Transformer model, QuantizationRecipe.Outcome outcome, Options options) {
        refuseRuntime(outcome.recipe().spec().text(), outcome.rotation() != null, outcome.runtime());
        Map<String, ? extends QuantizedTensor> weights = outcome.model() == null ? Map.of() : outcome.model().weights();
        return fromModel(ckpt, hf -> {
            float[] x = model.tensor(hf);
            if (x == null) throw new IllegalStateException("the model has no tensor " + hf);
            return x;
        }, weights, options);
    }

    private static GgufExport fromModel(Checkpoint ckpt, Function<String, float[]> floats,
                                        Map<String, ? extends QuantizedTensor> quantized, Options options) {
        ModelConfig cfg = ckpt.config();
        List<Item> items = new ArrayList<>();
        for (TensorInfo info : ckpt.tensors().values()) {
            String hf = info.name();
            String name = GgufCheckpoint.toGgufName(hf);
            if (name == null) throw new IllegalArgumentException(ckpt.source() + ": tensor " + hf + " has no llama.cpp name");
            long[] shape = info.shape();
            long[] dims = new long[shape.length];
            for (int d = 0; d < shape.length; d++) dims[d] = shape[shape.length - 1 - d];
            int heads = GgufCheckpoint.permutedHeads(cfg, name);
            int rows = (int) shape[0];
            Supplier<float[]> f = heads == 0 ? () -> floats.apply(hf)
                    : () -> { float[] x = floats.apply(hf); return GgufCheckpoint.permute(x, rows, x.length / rows, heads); };
            QuantizedTensor q = hf.endsWith(".weight") ? quantized.get(hf.substring(0, hf.length() - ".weight".length())) : null;
            if (q != null && !(q instanceof QuantizedWeight))
                throw new IllegalArgumentException(hf + ": " + q.describe() + " is not a uniform grid; no GGUF type holds it");
            items.add(new Item(name, dims, null, f, null, (QuantizedWeight) q));
        }
        return new GgufExport(cfg, GgufMetadata.of(ckpt), items, options);
    }

    /**
     * The type of each linear a bits map assigns, by GGUF name; {@code columns} are the model's block linears (module
     * name to input columns). 2, 3, 4, 5, 6, 8 bits are Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_0; for a row the 256-block does
     * not divide, the 32-block type of the same width where there is one (4 bits Q4_0, 5 bits Q5_0), since the bits
     * map chose a width under a budget and llama.cpp's fallback (Q4_K to Q5_0) would add a bit; 2 and 3 bits have no
     * 32-block type and take Q4_0 and 6 bits Q8_0, as llama.cpp's fallback does.
     */
    public static Map<String, GgmlType> bitsMapTypes(BitsMap map, Map<String, Integer> columns) {
        map.checkLayers(List.copyOf(columns.keySet()));
        Map<String, GgmlType> out = new LinkedHashMap<>();
        for (var e : columns.entrySet()) {
            String l = e.getKey();
            int bits = map.configFor(l).bits();
            GgmlType k = switch (bits) {
                case 2 -> GgmlType.Q2_K;
                case 3 -> GgmlType.Q3_K;
                case 4 -> GgmlType.Q4_K;
                case 5 -> GgmlType.Q5_K;
                case 6 -> GgmlType.Q6_K;
                case 8 -> GgmlType.Q8_0;
                default -> throw new IllegalArgumentException("bits map " + map.source() + ": " + l + " has " + bits
                        + " bits, which no GGUF type has (2, 3, 4, 5, 6 and 8 map to Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_0)");
            };
            GgmlType t = Quantize.fits(k, e.getValue()) ? k : switch (bits) {
                case 4 -> GgmlType.Q4_0;
                case 5 -> GgmlType.Q5_0;
                case 6, 8 -> GgmlType.Q8_0;
                default -> GgmlType.Q4_0;
            };
            out.put(GgufCheckpoint.toGgufName(l + ".weight"), t);
        }
        return out;
    }

    /** The input columns (ne0) of each tensor llama-quantize may quantize, by GGUF name: what an imatrix is checked against. */
    public static Map<String, Integer> quantizableColumns(Checkpoint ckpt) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (TensorInfo t : ckpt.tensors().values()) {
            String name = GgufCheckpoint.toGgufName(t.name());
            long[] s = t.shape();
            if (name != null && GgufTypePlan.quantizable(new GgufTypePlan.Tensor(name, s, GgmlType.F32)))
                out.put(name, (int) s[s.length - 1]);
        }
        return out;
    }

    /** The block linears of a checkpoint by module name (what a bits map lists). */
    public static Map<String, Integer> linears(Checkpoint ckpt) {
        Map<String, Integer> out = new LinkedHashMap<>();
        for (TensorInfo t : ckpt.tensors().values())
            if (t.shape().length == 2 && t.name().startsWith("model.layers.") && t.name().endsWith(".weight"))
                out.put(t.name().substring(0, t.name().length() - ".weight".length()), (int) t.shape()[1]);
        return out;
    }

    private static void refuseRuntime(String what, boolean rotated, RuntimeQuantization runtime) {
        if (rotated)
            throw new IllegalArgumentException(what + ": a rotated model needs online Hadamard transforms that llama.cpp's graph does not run; "
                    + "export the weights of an unrotated spec");
        if (runtime.any())
            throw new IllegalArgumentException(what + ": activation and KV-cache quantization happen at run time and a GGUF file holds "
                    + "weights only (llama.cpp has its own --cache-type-k/-v); export the weight-only spec");
    }

    /**
     * The GGUF type that stores this grid exactly, or null: groups of 32 along the row, fp16 scales, contiguous
     * groups, and ggml's dequantization of the codes equal to lowbit's (float-min x = d*q + m is Q4_1/Q5_1;
     * the symmetric grid x = d*(q - 2^(b-1)) is Q4_0, Q5_0 and, with q - 128 as int8, Q8_0).
     */
    public static GgmlType exactType(QuantConfig c, int columns) {
        if (c.groupSize() != 32 || columns % 32 != 0 || c.scaleFormat() != QuantConfig.ScaleFormat.F16) return null;
        if (c.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN)
            return c.bits() == 4 ? GgmlType.Q4_1 : c.bits() == 5 ? GgmlType.Q5_1 : null;
        if (c.symmetric())
            return c.bits() == 4 ? GgmlType.Q4_0 : c.bits() == 5 ? GgmlType.Q5_0 : c.bits() == 8 ? GgmlType.Q8_0 : null;
        return null;
    }

    /** {@link #exactType(QuantConfig, int)} of a quantized weight; none when its groups are not contiguous (act-order's g_idx). */
    static GgmlType exactType(QuantizedWeight q) {
        return q.groupIndex() == null ? exactType(q.config(), q.columns()) : null;
    }

    private static String describe(QuantizedWeight q) {
        QuantConfig c = q.config();
        String zero = switch (c.zeroPoint()) {
            case FLOAT_MIN -> "float min";
            case INTEGER -> c.symmetric() ? "symmetric" : "integer zero point";
            case ABSMAX -> "symmetric absmax";
            case AWQ -> "AWQ's integer zero point";
        };
        String group = c.grouped() ? "groups of " + c.groupSize() : c.groupSize() == QuantConfig.PER_TENSOR ? "per tensor" : "per channel";
        return c.bits() + "-bit, " + zero + ", " + group + ", " + c.scaleFormat() + " scales"
                + (q.groupIndex() != null ? ", act-order group index" : "");
    }

    public GgufTypePlan plan() {
        return plan;
    }

    /** The writer, whose tensors are produced one at a time as it writes (each a step of {@code task}). */
    public GgufWriter writer(Progress.Task task, List<String> exact, List<String> copied) {
        GgufWriter w = new GgufWriter();
        w.putAll(metadata);
        w.put("general.file_type", new GgufValue(GgufValue.Type.UINT32, null, (long) (preset != null ? preset.fileType : guessedFileType())));
        w.put("general.quantization_version", new GgufValue(GgufValue.Type.UINT32, null, (long) QUANTIZATION_VERSION));
        for (GgufTypePlan.Entry e : plan.entries()) {
            Item item = items.get(e.name());
            if (item.raw() != null && item.sourceType() == e.type()) copied.add(e.name());
            else if (item.quantized() != null && exactType(item.quantized()) == e.type()) exact.add(e.name());
            w.add(new GgufWriter.Tensor(e.name(), e.type(), e.dims(), () -> {
                byte[] b = data(item, e);
                task.step(1);
                return b;
            }));
        }
        return w;
    }

    /** llama_model_loader's guess: the file type of the type most tensors have (the first to reach the largest count). */
    int guessedFileType() {
        Map<GgmlType, Integer> counts = new LinkedHashMap<>();
        GgmlType max = GgmlType.F32;
        int n = 0;
        for (GgufTypePlan.Entry e : plan.entries()) {
            int c = counts.merge(e.type(), 1, Integer::sum);
            if (c > n) {
                n = c;
                max = e.type();
            }
        }
        return switch (max) {
            case F16 -> 1;
            case BF16 -> 32;
            case Q4_0 -> 2;
            case Q4_1 -> 3;
            case Q5_0 -> 8;
            case Q5_1 -> 9;
            case Q8_0 -> 7;
            case Q2_K -> 10;
            case Q3_K -> 12;
            case Q4_K -> 15;
            case Q5_K -> 17;
            case Q6_K -> 18;
            default -> 0;
        };
    }

    /** Writes the file at {@code out} (which must not exist; nothing is left there on failure). */
    public Result write(Path out, Progress progress) {
        return write(out, progress, Map.of());
    }

    /**
     * As {@link #write(Path, Progress)}, with lowbit's provenance of the export (source and its sha256, type, imatrix,
     * bits map, the method's recipe, code version) as JSON under {@value #PROVENANCE}, which llama.cpp ignores.
     */
    public Result write(Path out, Progress progress, Map<String, Object> provenance) {
        long t0 = System.nanoTime();
        List<String> exact = new ArrayList<>(), copied = new ArrayList<>();
        Path file;
        try (Progress.Task task = progress.start("export gguf", plan.entries().size(), "tensor")) {
            GgufWriter w = writer(task, exact, copied);
            if (!provenance.isEmpty()) {
                try {
                    w.put(PROVENANCE, GgufValue.string(new ObjectMapper().writeValueAsString(provenance)));
                } catch (JsonProcessingException e) {
                    throw new IllegalArgumentException("the export's provenance cannot be written as JSON: " + e.getMessage(), e);
                }
            }
            file = w.write(out);
        }
        List<String> requantized = new ArrayList<>();
        for (GgufTypePlan.Entry e : plan.entries()) {
            Item i = items.get(e.name());
            if (i.sourceType() != null && i.sourceType().blockSize > 1 && i.sourceType() != e.type()) requantized.add(e.name());
        }
        return new Result(file, plan, exact, copied, requantized, file.toFile().length(), (System.nanoTime() - t0) / 1e9);
    }

    private byte[] data(Item item, GgufTypePlan.Entry e) {
        if (item.raw() != null && item.sourceType() == e.type()) return item.raw().get();
        int columns = (int) e.dims()[0];
        long elements = 1;
        for (long d : e.dims()) elements *= d;
        int rows = (int) (elements / columns);
        if (item.quantized() != null && exactType(item.quantized()) == e.type()) {
            byte[] b = pack(item.quantized(), e.type());
            int heads = GgufCheckpoint.permutedHeads(config, e.name());
            return heads == 0 ? b : GgufCheckpoint.permute(b, rows, b.length / rows, heads);
        }
        return Quantize.quantize(e.type(), item.floats().get(), rows, columns, importance(e, columns));
    }

    /** llama-quantize's imatrix lookup: the tensor's vector when its length is the row length, none when absent. */
    private float[] importance(GgufTypePlan.Entry e, int columns) {
        if (importance == null || e.type().blockSize == 1) return null;
        float[] v = importance.apply(e.name());
        if (v == null) return null;
        if (v.length != columns) {
            // llama.cpp skips token_embd (its imatrix entry, if any, is not per column of a matmul) and refuses the rest
            if (e.name().equals("token_embd.weight")) return null;
            throw new IllegalArgumentException("imatrix entry " + e.name() + " has " + v.length + " values, the tensor has rows of " + columns);
        }
        return v;
    }

    /** Codes and group parameters of a grid that is exactly {@code type}, as ggml's blocks (ggml-common.h). */
    static byte[] pack(QuantizedWeight q, GgmlType type) {
        int rows = q.rows(), cols = q.columns(), groups = cols / 32;
        byte[] codes = q.codes();
        float[] scales = q.scales(), mins = q.zeros();
        byte[] out = new byte[(int) type.byteSize((long) rows * cols)];
        int o = 0;
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < groups; g++) {
                int p = r * groups + g, c0 = r * cols + g * 32;
                o = half(out, o, scales[p]);
                if (type == GgmlType.Q4_1 || type == GgmlType.Q5_1) o = half(out, o, mins[p]);
                if (type == GgmlType.Q8_0) {
                    for (int j = 0; j < 32; j++) out[o++] = (byte) ((codes[c0 + j] & 0xFF) - 128);
                    continue;
                }
                if (type == GgmlType.Q5_0 || type == GgmlType.Q5_1) {
                    int qh = 0;
                    for (int j = 0; j < 32; j++) qh |= ((codes[c0 + j] >> 4) & 1) << j;
                    for (int k = 0; k < 4; k++) out[o++] = (byte) (qh >>> (8 * k));
                }
                for (int j = 0; j < 16; j++) out[o++] = (byte) ((codes[c0 + j] & 0x0F) | (codes[c0 + j + 16] & 0x0F) << 4);
            }
        return out;
    }

    private static int half(byte[] out, int o, float v) {
        short h = Float.floatToFloat16(v);
        if (Float.float16ToFloat(h) != v && !Float.isNaN(v))
            throw new IllegalStateException("scale " + v + " is not an fp16 value; the grid is not stored in F16");
        out[o] = (byte) h;
        out[o + 1] = (byte) (h >> 8);
        return o + 2;
    }

    private static byte[] bytes(GgufFile f, String name) {
        var b = f.raw(name);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }
}
