package lowbit.checkpoint.quantized;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;

/** Reads a directory written by {@link QuantizedModelFiles}; quantized linears come back dequantized, exactly. */
public final class QuantizedCheckpoint implements Checkpoint {
    private final Path dir;
    private final JsonNode manifest;
    private final ModelConfig config;
    private final SafetensorsFile file;
    private final Map<String, QuantizedWeight> quantized = new LinkedHashMap<>();
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
        try {
            config = json.treeToValue(manifest.get("config"), ModelConfig.class);
        } catch (IOException | IllegalArgumentException | NullPointerException e) {
            throw new FormatException(m, "has no readable \"config\": " + e.getMessage(), e);
        }
        Path weights = dir.resolve(QuantizedModelFiles.WEIGHTS);
        if (!Files.isRegularFile(weights))
            throw new FormatException(dir, "has a manifest but no " + QuantizedModelFiles.WEIGHTS + " (an incomplete copy?)");
        file = SafetensorsFile.open(weights);
        var linears = manifest.path("linears").fields();
        while (linears.hasNext()) {
            var e = linears.next();
            quantized.put(e.getKey(), readLinear(e.getKey(), e.getValue(), weights));
        }
        for (var e : file.tensors().entrySet()) {
            String name = e.getKey();
            String owner = name.substring(0, Math.max(0, name.lastIndexOf('.')));
            if (quantized.containsKey(owner)) continue;
            tensors.put(name, e.getValue());
        }
        for (var e : quantized.entrySet())
            tensors.put(e.getKey() + ".weight", new TensorInfo(e.getKey() + ".weight", "F32",
                    new long[] {e.getValue().rows(), e.getValue().columns()}));
    }

    private QuantizedWeight readLinear(String name, JsonNode node, Path weights) {
        JsonNode g = node.path("grid");
        QuantConfig cfg;
        try {
            String gran = g.path("granularity").asText();
            int groupSize = switch (gran) {
                case "group" -> g.path("group_size").asInt();
                case "per-channel" -> QuantConfig.PER_CHANNEL;
                case "per-tensor" -> QuantConfig.PER_TENSOR;
                default -> throw new IllegalArgumentException("granularity '" + gran + "'");
            };
            cfg = new QuantConfig(g.path("bits").asInt(), g.path("symmetric").asBoolean(), groupSize,
                    QuantConfig.ZeroPoint.valueOf(g.path("zero_point").asText().toUpperCase()),
                    QuantConfig.ScaleFormat.valueOf(g.path("scale_format").asText().toUpperCase()), g.path("mse_clip").asBoolean());
        } catch (IllegalArgumentException e) {
            throw new FormatException(dir.resolve(QuantizedModelFiles.MANIFEST), "linear " + name + " has a bad grid: " + e.getMessage(), e);
        }
        int rows = node.path("rows").asInt(), cols = node.path("columns").asInt();
        try {
            byte[] codes = bytes(name + ".qweight", weights);
            float[] scales = file.floats(name + ".scales");
            float[] zeros = null;
            if (file.tensors().containsKey(name + ".zeros")) {
                if (cfg.zeroPoint() == QuantConfig.ZeroPoint.INTEGER) {
                    byte[] z = bytes(name + ".zeros", weights);
                    zeros = new float[z.length];
                    for (int i = 0; i < z.length; i++) zeros[i] = z[i] & 0xFF;
                } else zeros = file.floats(name + ".zeros");
            }
            int[] gIdx = null;
            if (file.tensors().containsKey(name + ".g_idx")) {
                ByteBuffer b = file.bytes(name + ".g_idx").order(ByteOrder.LITTLE_ENDIAN);
                gIdx = new int[cols];
                b.asIntBuffer().get(gIdx);
            }
            return new QuantizedWeight(rows, cols, cfg, codes, scales, zeros, gIdx);
        } catch (IllegalArgumentException e) {
            throw new FormatException(weights, "linear " + name + ": " + e.getMessage(), e);
        }
    }

    private byte[] bytes(String tensor, Path weights) {
        if (!file.tensors().containsKey(tensor)) throw new FormatException(weights, "tensor " + tensor + " is missing");
        ByteBuffer b = file.bytes(tensor);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** The quantized linears by module name, as stored. */
    public Map<String, QuantizedWeight> quantizedWeights() {
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
            QuantizedWeight q = quantized.get(name.substring(0, name.length() - ".weight".length()));
            if (q != null) return q.dequantize();
        }
        if (!tensors.containsKey(name)) throw new IllegalArgumentException(dir + ": no tensor " + name);
        return file.floats(name);
    }

    @Override
    public Tokenizer tokenizer() {
        if (manifest.path("tokenizer").asText().equals("files")) return Tokenizers.fromDirectory(dir);
        JsonNode base = manifest.path("base_model");
        String spec = base.path("spec").asText();
        try (Checkpoint b = Checkpoints.open(spec, null)) {
            if (!b.sha256().equals(base.path("sha256").asText()))
                throw new FormatException(dir.resolve(QuantizedModelFiles.MANIFEST), "takes its tokenizer from the base model " + spec
                        + ", but that file's sha256 " + b.sha256() + " is not the recorded " + base.path("sha256").asText());
            return b.tokenizer();
        } catch (FormatException | IllegalArgumentException e) {
            throw new FormatException(dir.resolve(QuantizedModelFiles.MANIFEST), "takes its tokenizer from the base model '" + spec
                    + "', which cannot be opened: " + e.getMessage(), e);
        }
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
