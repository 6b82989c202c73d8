package lowbit.checkpoint.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.quant.QuantizedWeight;
import lowbit.tokenizer.Tokenizer;

/**
 * A Hugging Face directory whose config.json carries a quantization_config of GPTQ, AWQ (GEMM) or compressed-tensors
 * (pack-quantized): each quantized linear's packed tensors are read through its {@link QuantLayout} and seen as one
 * F32 {@code NAME.weight}, dequantized exactly (w = scale (q - zero), one float rounding); every other tensor passes
 * through as {@link HfCheckpoint} reads it.
 */
public final class HfQuantizedCheckpoint implements Checkpoint {
    /** config.json's key, written by export hf when the tokenizer lives in the base model's file (a GGUF): its spec and sha256. */
    public static final String BASE_MODEL = "lowbit_base_model";

    private final HfCheckpoint base;
    private final QuantLayout layout;
    private final JsonNode config;
    private final Map<String, String> quantized = new LinkedHashMap<>();   // NAME.weight -> module
    private final Map<String, TensorInfo> tensors;
    private final QuantLayout.Tensors stored;

    /** True when {@code dir}'s config.json has a quantization_config. */
    public static boolean isQuantized(Path dir) {
        Path c = dir.resolve("config.json");
        if (!Files.isRegularFile(c)) return false;
        try {
            JsonNode root = new ObjectMapper().readTree(c.toFile());
            return root != null && root.path("quantization_config").isObject();
        } catch (IOException e) {
            return false;   // HfCheckpoint reports the unreadable config.json
        }
    }

    public static HfQuantizedCheckpoint open(Path dir) {
        HfCheckpoint base = HfCheckpoint.open(dir);
        try {
            return new HfQuantizedCheckpoint(base);
        } catch (RuntimeException e) {
            base.close();
            throw e;
        }
    }

    private HfQuantizedCheckpoint(HfCheckpoint base) {
        this.base = base;
        Path configFile = base.directory().resolve("config.json");
        try {
            config = new ObjectMapper().readTree(configFile.toFile());
        } catch (IOException e) {
            throw new FormatException(configFile, "cannot be read: " + e.getMessage(), e);
        }
        layout = QuantLayout.of(config.path("quantization_config"), configFile);
        Path file = base.weightFiles().get(0);
        stored = new QuantLayout.Tensors() {
            @Override
            public Path file() {
                return file;
            }

            @Override
            public TensorInfo info(String name) {
                return base.tensors().get(name);
            }

            @Override
            public ByteBuffer bytes(String name) {
                return base.bytes(name);
            }

            @Override
            public float[] floats(String name) {
                return base.floats(name);
            }
        };
        String suffix = "." + layout.packedSuffix();
        for (String name : base.tensors().keySet())
            if (name.endsWith(suffix)) quantized.put(name.substring(0, name.length() - suffix.length()) + ".weight",
                    name.substring(0, name.length() - suffix.length()));
        if (quantized.isEmpty())
            throw new FormatException(file, "holds no *" + suffix + " tensor, though config.json's quantization_config says "
                    + layout.method());
        Map<String, TensorInfo> t = new LinkedHashMap<>();
        for (var e : base.tensors().entrySet()) {
            String name = e.getKey();
            int dot = name.lastIndexOf('.');
            String owner = dot < 0 ? "" : name.substring(0, dot);
            if (quantized.containsValue(owner) && layout.parts().contains(name.substring(dot + 1))) continue;
            if (quantized.containsKey(name))
                throw new FormatException(file, "holds both " + name + " and the quantized " + owner + suffix);
            t.put(name, e.getValue());
        }
        for (var e : quantized.entrySet()) t.put(e.getKey(), new TensorInfo(e.getKey(), "F32", layout.shape(stored, e.getValue())));
        tensors = Collections.unmodifiableMap(t);
    }

    /** The quantized linear {@code module} (without ".weight") as stored: codes, scales, zeros and group index. */
    public QuantizedWeight quantizedWeight(String module) {
        if (!quantized.containsValue(module)) throw new IllegalArgumentException(base.source() + ": no quantized linear " + module);
        return layout.read(stored, module);
    }

    public QuantLayout layout() {
        return layout;
    }

    @Override
    public ModelConfig config() {
        return base.config();
    }

    @Override
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    @Override
    public float[] floats(String name) {
        String module = quantized.get(name);
        if (module == null) return base.floats(name);
        QuantizedWeight q = layout.read(stored, module);
        long[] shape = tensors.get(name).shape();
        if (q.rows() != shape[0] || q.columns() != shape[1])
            throw new FormatException(stored.file(), module + " unpacks to " + q.rows() + "x" + q.columns() + ", not its stored shape");
        return q.dequantize();
    }

    /**
     * The directory's tokenizer files; an export of a model whose tokenizer lives in a GGUF file names that base
     * model instead (config.json's {@value #BASE_MODEL}), which must still have the recorded sha256.
     */
    @Override
    public Tokenizer tokenizer() {
        JsonNode b = config.path(BASE_MODEL);
        if (!b.isObject() || hasTokenizerFiles(base.directory())) return base.tokenizer();
        return Checkpoints.baseTokenizer(b.path("spec").asText(), b.path("sha256").asText(), base.directory().resolve("config.json"));
    }

    static boolean hasTokenizerFiles(Path dir) {
        return Files.isRegularFile(dir.resolve("tokenizer.json"))
                || Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"));
    }

    @Override
    public String sha256() {
        return base.sha256();
    }

    @Override
    public String source() {
        return base.source();
    }

    @Override
    public void close() {
        base.close();
    }
}
