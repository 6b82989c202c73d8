package lowbit.checkpoint.quantized;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.exc.ValueInstantiationException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.billm.BillmWeight;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;

/** Reads a directory written by {@link QuantizedModelFiles}; quantized linears come back dequantized, exactly. */
public final class QuantizedCheckpoint implements Checkpoint {
    /** The manifest's config key (ModelConfig's component) for each config.json key ModelConfig names in its messages. */
    private static final Map<String, String> MANIFEST_KEYS = Map.ofEntries(
            Map.entry("model_type", "modelType"), Map.entry("vocab_size", "vocabSize"), Map.entry("hidden_size", "hiddenSize"),
            Map.entry("intermediate_size", "intermediateSize"), Map.entry("ffn_dim", "intermediateSize"),
            Map.entry("num_hidden_layers", "numLayers"), Map.entry("num_attention_heads", "numHeads"),
            Map.entry("num_key_value_heads", "numKvHeads"), Map.entry("head_dim", "headDim"),
            Map.entry("max_position_embeddings", "maxPositions"), Map.entry("word_embed_proj_dim", "wordEmbedProjDim"),
            Map.entry("rope_theta", "ropeTheta"), Map.entry("rms_norm_eps", "normEps"), Map.entry("layer_norm_eps", "normEps"),
            Map.entry("hidden_act", "hiddenAct"), Map.entry("activation_function", "hiddenAct"));
    private static final List<String> QUANTIZED_PARTS = List.of("qweight", "scales", "zeros", "g_idx");
    private static final List<String> BILLM_PARTS = List.of("salient", "signs", "residual_signs", "sparse", "params");

    private final Path dir;
    private final JsonNode manifest;
    private final ModelConfig config;
    private final SafetensorsFile file;
    private final Map<String, QuantizedTensor> quantized = new LinkedHashMap<>();
    private final Map<String, TensorInfo> tensors = new LinkedHashMap<>();
    private String sha256;

    public static boolean isQuantizedDirectory(Path dir) {
        return Files.isRegularFile(dir.resolve(QuantizedModelFiles.MANIFEST));
    }

    public static QuantizedCheckpoint open(Path dir) {
        return new QuantizedCheckpoint(dir);
    }

    private QuantizedCheckpoint(Path dir) {
        this.dir = dir;
        Path m = dir.resolve(QuantizedModelFiles.MANIFEST);
        ObjectMapper json = new ObjectMapper();
        try {
            manifest = json.readTree(m.toFile());
        } catch (IOException e) {
            throw new FormatException(m, "is not valid JSON: " + e.getMessage(), e);
        }
        if (!QuantizedModelFiles.FORMAT.equals(manifest.path("format").asText()))
            throw new FormatException(m, "\"format\" is not \"" + QuantizedModelFiles.FORMAT + "\"");
        JsonNode version = manifest.get("version");
        if (version == null || !version.isInt() || version.intValue() != QuantizedModelFiles.VERSION)
            throw new FormatException(m, "\"version\" is " + version + "; this lowbit reads version " + QuantizedModelFiles.VERSION
                    + " (written by a different lowbit?)");
        JsonNode configNode = manifest.get("config");
        if (configNode == null || !configNode.isObject())
            throw new FormatException(m, "has no \"config\" object (the model's hyper-parameters); was it written by lowbit quantize?");
        try {
            config = json.treeToValue(configNode, ModelConfig.class);
        } catch (ValueInstantiationException e) {
            // the record's own check refused a value; its message names config.json's key, the manifest's is the record's
            String problem = e.getCause() != null ? e.getCause().getMessage() : e.getOriginalMessage();
            String field = MANIFEST_KEYS.get(problem.split(" ", 2)[0]);
            throw new FormatException(m, "\"config\": " + problem + (field != null ? " (key config." + field + ")" : ""), e);
        } catch (JsonProcessingException e) {
            throw new FormatException(m, "\"config\" is not readable: " + e.getOriginalMessage(), e);
        }
        Path weights = dir.resolve(QuantizedModelFiles.WEIGHTS);
        if (!Files.isRegularFile(weights))
            throw new FormatException(dir, "has a manifest but no " + QuantizedModelFiles.WEIGHTS + " (an incomplete copy?)");
        file = SafetensorsFile.open(weights);
        var linears = manifest.path("linears").fields();
        while (linears.hasNext()) {
            var e = linears.next();
            quantized.put(e.getKey(), e.getValue().has("billm") ? readBillm(e.getKey(), e.getValue(), weights)
                    : readLinear(e.getKey(), e.getValue(), weights));
        }
        for (var e : file.tensors().entrySet()) {
            String name = e.getKey();
            String owner = name.substring(0, Math.max(0, name.lastIndexOf('.')));
            if (quantized.containsKey(owner)) {
                String part = name.substring(owner.length() + 1);
                List<String> parts = quantized.get(owner) instanceof BillmWeight ? BILLM_PARTS : QUANTIZED_PARTS;
                if (!parts.contains(part))
                    throw new FormatException(weights, "tensor " + name + " is no part of the quantized linear " + owner
                            + " (expected " + String.join(", ", parts) + ")");
                continue;
            }
            tensors.put(name, e.getValue());
        }
        for (var e : quantized.entrySet())
            tensors.put(e.getKey() + ".weight", new TensorInfo(e.getKey() + ".weight", "F32",
                    new long[] {e.getValue().rows(), e.getValue().columns()}));
    }

    private QuantizedWeight readLinear(String name, JsonNode node, Path weights) {
        Path m = dir.resolve(QuantizedModelFiles.MANIFEST);
        JsonNode g = node.path("grid");
        QuantConfig cfg;
        try {
            String gran = g.path("granularity").asText();
            int groupSize = switch (gran) {
                case "group" -> {
                    JsonNode size = g.path("group_size");
                    if (!size.isInt() || size.intValue() < 1)
                        throw new IllegalArgumentException("group size must be >= 1 for granularity group, found "
                                + (size.isMissingNode() ? "none" : size.toString()) + " (key grid.group_size)");
                    yield size.intValue();
                }
                case "per-channel" -> QuantConfig.PER_CHANNEL;
                case "per-tensor" -> QuantConfig.PER_TENSOR;
                default -> throw new IllegalArgumentException("granularity '" + gran + "'");
            };
            cfg = new QuantConfig(g.path("bits").asInt(), g.path("symmetric").asBoolean(), groupSize,
                    QuantConfig.ZeroPoint.valueOf(g.path("zero_point").asText().toUpperCase()),
                    QuantConfig.ScaleFormat.valueOf(g.path("scale_format").asText().toUpperCase()), g.path("mse_clip").asBoolean());
        } catch (IllegalArgumentException e) {
            throw new FormatException(m, "linear " + name + " has a bad grid: " + e.getMessage(), e);
        }
        int rows = node.path("rows").asInt(), cols = node.path("columns").asInt();
        if (rows < 1 || cols < 1)
            throw new FormatException(m, "linear " + name + ": rows and columns must be >= 1, found " + node.path("rows")
                    + " and " + node.path("columns"));
        // the writer's dtypes: codes U8, scales in the scale format, integer zeros U8 and float zeros (mins) in the scale format
        String scaleType = cfg.scaleFormat().name();
        checkDtype(weights, name + ".qweight", "U8", "packed codes");
        checkDtype(weights, name + ".scales", scaleType, "scales in scale_format " + scaleType.toLowerCase());
        boolean integerZeros = cfg.zeroPoint() == QuantConfig.ZeroPoint.INTEGER;
        if (file.tensors().containsKey(name + ".zeros"))
            checkDtype(weights, name + ".zeros", integerZeros ? "U8" : scaleType,
                    "zeros of zero_point " + cfg.zeroPoint().name().toLowerCase());
        if (file.tensors().containsKey(name + ".g_idx")) checkDtype(weights, name + ".g_idx", "I32", "a group index");
        try {
            byte[] codes = bytes(name + ".qweight", weights);
            float[] scales = finite(weights, name + ".scales", file.floats(name + ".scales"));
            float[] zeros = null;
            if (file.tensors().containsKey(name + ".zeros")) {
                if (integerZeros) {
                    byte[] z = bytes(name + ".zeros", weights);
                    zeros = new float[z.length];
                    for (int i = 0; i < z.length; i++) zeros[i] = z[i] & 0xFF;
                } else zeros = finite(weights, name + ".zeros", file.floats(name + ".zeros"));
            }
            int[] gIdx = null;
            if (file.tensors().containsKey(name + ".g_idx")) {
                ByteBuffer b = file.bytes(name + ".g_idx").order(ByteOrder.LITTLE_ENDIAN);
                if (b.remaining() != 4L * cols)
                    throw new IllegalArgumentException("g_idx has " + b.remaining() / 4 + " entries, expected " + cols);
                gIdx = new int[cols];
                b.asIntBuffer().get(gIdx);
            }
            return new QuantizedWeight(rows, cols, cfg, codes, scales, zeros, gIdx);
        } catch (IllegalArgumentException e) {
            throw new FormatException(weights, "linear " + name + ": " + e.getMessage(), e);
        }
    }

    /** A BiLLM linear: its "billm" entry (block size, scale format) and the parts QuantizedModelFiles writes. */
    private BillmWeight readBillm(String name, JsonNode node, Path weights) {
        Path m = dir.resolve(QuantizedModelFiles.MANIFEST);
        JsonNode b = node.path("billm");
        int rows = node.path("rows").asInt(), cols = node.path("columns").asInt(), blockSize = b.path("block_size").asInt();
        if (rows < 1 || cols < 1 || blockSize < 1)
            throw new FormatException(m, "linear " + name + ": rows, columns and billm.block_size must be >= 1, found " + node.path("rows")
                    + ", " + node.path("columns") + " and " + b.path("block_size"));
        QuantConfig.ScaleFormat fmt;
        try {
            fmt = QuantConfig.ScaleFormat.valueOf(b.path("scale_format").asText().toUpperCase());
        } catch (IllegalArgumentException e) {
            throw new FormatException(m, "linear " + name + ": billm.scale_format '" + b.path("scale_format").asText() + "' is not f16 or f32", e);
        }
        for (String part : List.of("salient", "signs", "residual_signs", "sparse")) checkDtype(weights, name + "." + part, "U8", "a packed bitmap");
        checkDtype(weights, name + ".params", fmt.name(), "means and scales in scale_format " + fmt.name().toLowerCase());
        try {
            return new BillmWeight(rows, cols, blockSize, fmt, bytes(name + ".salient", weights), bytes(name + ".signs", weights),
                    bytes(name + ".residual_signs", weights), bytes(name + ".sparse", weights), file.floats(name + ".params"));
        } catch (IllegalArgumentException e) {
            throw new FormatException(weights, "linear " + name + ": " + e.getMessage(), e);
        }
    }

    private void checkDtype(Path weights, String tensor, String expected, String what) {
        TensorInfo info = file.tensors().get(tensor);
        if (info == null) throw new FormatException(weights, "tensor " + tensor + " is missing");
        if (!info.dtype().equals(expected))
            throw new FormatException(weights, "tensor " + tensor + " is " + info.dtype() + ", expected " + expected + " for " + what
                    + " as the manifest's grid says");
    }

    /** Non-finite scales or mins would turn the whole linear into NaN; refused here, where the tensor can be named. */
    private static float[] finite(Path weights, String tensor, float[] values) {
        for (int i = 0; i < values.length; i++)
            if (!Float.isFinite(values[i]))
                throw new FormatException(weights, "tensor " + tensor + " holds " + values[i] + " at element " + i
                        + "; scales and zeros must be finite");
        return values;
    }

    private byte[] bytes(String tensor, Path weights) {
        if (!file.tensors().containsKey(tensor)) throw new FormatException(weights, "tensor " + tensor + " is missing");
        ByteBuffer b = file.bytes(tensor);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** The quantized linears by module name, as stored. */
    public Map<String, QuantizedTensor> quantizedWeights() {
        return quantized;
    }

    public JsonNode manifest() {
        return manifest;
    }

    @Override
    public ModelConfig config() {
        return config;
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public float[] floats(String name) {
        if (name.endsWith(".weight")) {
            QuantizedTensor q = quantized.get(name.substring(0, name.length() - ".weight".length()));
            if (q != null) return q.dequantize();
        }
        if (!tensors.containsKey(name)) throw new IllegalArgumentException(dir + ": no tensor " + name);
        return file.floats(name);
    }

    @Override
    public Tokenizer tokenizer() {
        if (manifest.path("tokenizer").asText().equals("files")) return Tokenizers.fromDirectory(dir);
        JsonNode base = manifest.path("base_model");
        return Checkpoints.baseTokenizer(base.path("spec").asText(), base.path("sha256").asText(), dir.resolve(QuantizedModelFiles.MANIFEST));
    }

    @Override
    public synchronized String sha256() {
        if (sha256 == null) sha256 = Hashing.sha256(dir.resolve(QuantizedModelFiles.WEIGHTS));
        return sha256;
    }

    @Override
    public String source() {
        return dir.toString();
    }

    @Override
    public void close() {
        file.close();
    }
}
