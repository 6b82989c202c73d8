package lowbit.checkpoint.hf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import lowbit.checkpoint.Checkpoint;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.model.ModelConfig;
import lowbit.tokenizer.Tokenizer;
import lowbit.tokenizer.Tokenizers;

/**
 * A Hugging Face model directory: config.json plus model.safetensors, or model.safetensors.index.json
 * and its shards. Tensors keep their Hugging Face names, except that OPT checkpoints saved without the
 * {@code model.} prefix ({@code decoder.*}) are renamed to the {@code model.decoder.*} names the rest
 * of the checkpoints use. Tensor data stays in the memory mapping until {@link #floats} converts it.
 */
public final class HfCheckpoint implements Checkpoint {
    public static final String SINGLE = "model.safetensors";
    public static final String INDEX = "model.safetensors.index.json";

    private static final ObjectMapper JSON = new ObjectMapper();

    private record Source(SafetensorsFile file, String storedName) {}

    private final Path dir;
    private final ModelConfig config;
    private final Map<String, SafetensorsFile> shards; // by file name, sorted
    private final Map<String, Source> sources;
    private final Map<String, TensorInfo> tensors;
    private String sha256;
    private Tokenizer tokenizer;

    private HfCheckpoint(Path dir, ModelConfig config, Map<String, SafetensorsFile> shards, Map<String, Source> sources) {
        this.dir = dir;
        this.config = config;
        this.shards = shards;
        this.sources = sources;
        Map<String, TensorInfo> t = new LinkedHashMap<>();
        sources.forEach((name, s) -> {
            TensorInfo stored = s.file().tensors().get(s.storedName());
            t.put(name, new TensorInfo(name, stored.dtype(), stored.shape()));
        });
        this.tensors = Collections.unmodifiableMap(t);
    }

    public static HfCheckpoint open(Path dir) {
        if (!Files.isDirectory(dir))
            throw new FormatException(dir, "not a directory; a Hugging Face checkpoint is a directory with config.json and model.safetensors");
        ModelConfig config = HfConfig.read(dir.resolve("config.json"));
        boolean renameOpt = config.family() == ModelConfig.Family.OPT;
        Map<String, SafetensorsFile> shards = new TreeMap<>();
        Map<String, Source> sources = new LinkedHashMap<>();
        if (Files.isRegularFile(dir.resolve(SINGLE))) {
            SafetensorsFile file = SafetensorsFile.open(dir.resolve(SINGLE));
            shards.put(SINGLE, file);
            for (String stored : file.tensors().keySet()) put(sources, file, stored, renameOpt);
        } else if (Files.isRegularFile(dir.resolve(INDEX))) {
            Map<String, String> weightMap = weightMap(dir.resolve(INDEX));
            for (String shard : new TreeSet<>(weightMap.values())) {
                Path p = dir.resolve(shard);
                if (!Files.isRegularFile(p))
                    throw new FormatException(dir.resolve(INDEX), "shard " + shard + " named in weight_map is missing from " + dir);
                shards.put(shard, SafetensorsFile.open(p));
            }
            // file order: shards by name, tensors by position within each shard
            for (SafetensorsFile file : shards.values()) {
                String shard = file.file().getFileName().toString();
                for (String stored : file.tensors().keySet())
                    if (shard.equals(weightMap.get(stored))) put(sources, file, stored, renameOpt);
            }
            for (Map.Entry<String, String> e : weightMap.entrySet())
                if (!shards.get(e.getValue()).tensors().containsKey(e.getKey()))
                    throw new FormatException(dir.resolve(e.getValue()), "tensor " + e.getKey()
                            + " is mapped to this shard by " + INDEX + " but the shard does not hold it");
        } else {
            String hint = Files.exists(dir.resolve("pytorch_model.bin")) || Files.exists(dir.resolve("pytorch_model.bin.index.json"))
                    ? "; pytorch_model.bin is not supported, convert it with: python -c \"from transformers import AutoModelForCausalLM as M; "
                            + "M.from_pretrained('" + dir + "').save_pretrained('" + dir + "', safe_serialization=True)\""
                    : "";
            throw new FormatException(dir, "no " + SINGLE + " or " + INDEX + " in " + dir + hint);
        }
        return new HfCheckpoint(dir, config, Collections.unmodifiableMap(shards), sources);
    }

    private static void put(Map<String, Source> sources, SafetensorsFile file, String stored, boolean renameOpt) {
        String name = renameOpt && stored.startsWith("decoder.") ? "model." + stored : stored;
        if (sources.containsKey(name))
            throw new FormatException(file.file(), "tensor " + stored + " appears twice as " + name + " in the checkpoint");
        sources.put(name, new Source(file, stored));
    }

    private static Map<String, String> weightMap(Path index) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(index));
        } catch (JsonProcessingException e) {
            throw new FormatException(index, "not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new FormatException(index, "cannot read: " + e, e);
        }
        JsonNode map = root == null ? null : root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty())
            throw new FormatException(index, "no weight_map object naming the shard of each tensor");
        Map<String, String> weightMap = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            String shard = e.getValue().asText();
            // shards live beside the index; anything else would let an index point outside the model directory
            if (!e.getValue().isTextual() || shard.isEmpty() || shard.contains("/") || shard.contains("\\") || shard.startsWith("."))
                throw new FormatException(index, "tensor " + e.getKey() + " maps to " + e.getValue() + ", not a shard file name");
            weightMap.put(e.getKey(), shard);
        }
        return weightMap;
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
        Source s = sources.get(name);
        if (s == null) throw new FormatException(dir, "no tensor named " + name + " in the checkpoint");
        return s.file().floats(s.storedName());
    }

    /** The raw little-endian bytes of a tensor: the packed integers of a quantized checkpoint (HfQuantizedCheckpoint). */
    public ByteBuffer bytes(String name) {
        Source s = sources.get(name);
        if (s == null) throw new FormatException(dir, "no tensor named " + name + " in the checkpoint");
        return s.file().bytes(s.storedName());
    }

    /** The weight files, sorted by name. */
    public List<Path> weightFiles() {
        List<Path> files = new ArrayList<>();
        for (SafetensorsFile f : shards.values()) files.add(f.file());
        return files;
    }

    /**
     * For a single model.safetensors, the sha256 of that file (what {@code sha256sum} and the Hub's LFS
     * object id give). For shards, the sha256 of the concatenated lowercase hex digests of the shard
     * files, in file-name order, as ASCII. Computed on first use.
     */
    @Override
    public synchronized String sha256() {
        if (sha256 == null) {
            List<String> digests = new ArrayList<>();
            for (Path p : weightFiles()) digests.add(Hashing.sha256(p));
            sha256 = digests.size() == 1 ? digests.get(0)
                    : Hashing.sha256(String.join("", digests).getBytes(StandardCharsets.US_ASCII));
        }
        return sha256;
    }

    @Override
    public synchronized Tokenizer tokenizer() {
        if (tokenizer == null) tokenizer = Tokenizers.fromDirectory(dir);
        return tokenizer;
    }

    @Override
    public String source() {
        return dir.toString();
    }

    public Path directory() {
        return dir;
    }

    @Override
    public void close() {
        for (SafetensorsFile f : shards.values()) f.close();
    }
}
