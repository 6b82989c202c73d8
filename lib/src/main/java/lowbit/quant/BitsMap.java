package lowbit.quant;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lowbit.io.FormatException;
import lowbit.quant.activation.KvWidths;

/**
 * A per-layer bit-width map, the file {@code lowbit quantize --bits-map FILE} reads:
 *
 * <pre>{@code
 * {"format": "lowbit-bits-map", "version": 1,
 *  "default": {"bits": 4, "symmetric": false, "granularity": "group", "group_size": 128,
 *              "zero_point": "integer", "scale_format": "f16", "mse_clip": false},
 *  "layers": {"model.layers.0.self_attn.q_proj": {"bits": 3}, ...},
 *  "kv": {"group_size": 0, "layers": {"0": {"key_bits": 8, "value_bits": 4}, ...}},
 *  "summary": {"bits_per_weight": 3.5, "predicted_loss": 0.12, "storage_bits": 123456},
 *  "provenance": {...}}
 * }</pre>
 *
 * "default" uses the keys of {@link QuantConfig#describe()} (the quantized model manifest's "grid"); only
 * "bits" is required, the rest default to {@link QuantConfig#group(int, int)}'s asymmetric integer grid with
 * fp16 scales, group_size 128 when neither granularity nor group_size is given, and a group_size alone
 * meaning granularity "group". A layer listed under "layers" gets its own bits with every other setting of
 * the default; a layer not listed gets the default. The optional "kv" object sets the KV cache's widths per
 * attention layer (a further dimension of the allocation): keys and values of every layer 0..L-1, each 2..8 or 16
 * (float), on groups of "group_size" head dimensions (0: the whole head); it lists every layer, since a missing one
 * has no default to fall back on. "summary" and "provenance" are informational and not interpreted. Unknown keys
 * anywhere are errors, so a misspelt setting is never silently ignored.
 *
 * @param source     the file it was read from, or null when built in memory
 * @param layers     bits per layer, in file order
 * @param kv         the KV cache's widths per layer, or null when the map sets none
 */
public record BitsMap(Path source, QuantConfig defaultConfig, Map<String, Integer> layers, Kv kv, Map<String, Object> provenance) {
    public static final String FORMAT = "lowbit-bits-map";
    public static final int VERSION = 1;

    private static final Set<String> TOP_KEYS = Set.of("format", "version", "default", "layers", "kv", "summary", "provenance");
    private static final Set<String> KV_KEYS = Set.of("group_size", "layers");
    private static final Set<String> KV_LAYER_KEYS = Set.of("key_bits", "value_bits");

    /**
     * The KV cache's widths per attention layer.
     *
     * @param groupSize head dimensions per group, 0 for the whole head
     * @param widths    one (key, value) pair per layer 0..L-1, 16 meaning float
     */
    public record Kv(int groupSize, KvWidths widths) {
        public Kv {
            if (groupSize < 0) throw new IllegalArgumentException("KV group size must be >= 0 (0: the whole head), got " + groupSize);
            if (widths == null) throw new IllegalArgumentException("KV widths are required");
        }

        /** Layers listed. */
        public int layers() {
            return widths.layers();
        }
    }
    private static final Set<String> DEFAULT_KEYS = Set.of("bits", "symmetric", "granularity", "group_size", "zero_point",
            "scale_format", "mse_clip");

    /** Per-linear widths and what they cost: what {@link #write} records (a bit allocator's result). */
    public interface Assignment {
        Map<String, Integer> bits();

        double bitsPerWeight();

        double predictedLoss();

        long storageBits();
    }
    private static final Set<String> LAYER_KEYS = Set.of("bits");

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** A map without KV widths. */
    public BitsMap(Path source, QuantConfig defaultConfig, Map<String, Integer> layers, Map<String, Object> provenance) {
        this(source, defaultConfig, layers, null, provenance);
    }

    public BitsMap {
        if (defaultConfig == null) throw new IllegalArgumentException("default config is required");
        layers = Collections.unmodifiableMap(new LinkedHashMap<>(layers));
        for (var e : layers.entrySet())
            if (e.getValue() == null || e.getValue() < 2 || e.getValue() > 8)
                throw new IllegalArgumentException("layer " + e.getKey() + ": bits must be 2..8, got " + e.getValue());
        provenance = provenance == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(provenance));
    }

    /** The grid for {@code layerName}: its own bits if listed, every other setting from the default. */
    public QuantConfig configFor(String layerName) {
        Integer bits = layers.get(layerName);
        return bits == null ? defaultConfig : defaultConfig.withBits(bits);
    }

    /**
     * Checks that every listed layer is one of {@code linears} (the model's quantizable linears), so that a
     * misspelt or foreign layer name fails instead of silently leaving that linear at the default width.
     */
    public void checkLayers(Collection<String> linears) {
        Set<String> known = Set.copyOf(linears);
        List<String> unknown = new ArrayList<>();
        for (String l : layers.keySet()) if (!known.contains(l)) unknown.add(l);
        if (unknown.isEmpty()) return;
        String msg = unknown.size() + " layer(s) not in the model: " + String.join(", ", unknown.subList(0, Math.min(5, unknown.size())))
                + (unknown.size() > 5 ? ", ..." : "");
        if (source != null) throw new FormatException(source, msg);
        throw new IllegalArgumentException("bits map: " + msg);
    }

    /**
     * Checks that a map an allocation made (its provenance names the model's sha256) is used on that model: an allocation
     * is measured on one model's weights and means nothing for another, even one with the same layer names.
     */
    public void checkModel(String modelSha256, int linears) {
        Object made = provenance.get("model_sha256");
        if (!(made instanceof String sha) || modelSha256 == null || sha.equals(modelSha256)) return;
        String msg = String.format(java.util.Locale.ROOT, "was allocated for the model with sha256 %s (%d linears listed); this model's is %s"
                + " (%d block linears): allocate again for this model, or remove provenance.model_sha256 to use it anyway",
                abbreviate(sha), layers.size(), abbreviate(modelSha256), linears);
        if (source != null) throw new FormatException(source, msg);
        throw new IllegalArgumentException("bits map " + msg);
    }

    private static String abbreviate(String sha) {
        return sha.length() > 12 ? sha.substring(0, 12) + "..." : sha;
    }

    /**
     * Checks that the "kv" object lists exactly the layers 0..numLayers-1 of the model, so that a map made for another
     * model fails instead of leaving layers unquantized or quantizing layers it does not have. No "kv": nothing to check.
     */
    public void checkKvLayers(int numLayers) {
        if (kv == null || kv.layers() == numLayers) return;
        String msg = "\"kv\" lists layers 0.." + (kv.layers() - 1) + ", the model has " + numLayers + " (0.." + (numLayers - 1) + ")";
        if (source != null) throw new FormatException(source, msg);
        throw new IllegalArgumentException("bits map: " + msg);
    }

    /** As {@link #write(Path, Assignment, QuantConfig, Kv, Map)} without KV widths. */
    public static void write(Path file, Assignment allocation, QuantConfig base, Map<String, Object> provenance) {
        write(file, allocation, base, null, provenance);
    }

    /**
     * Writes {@code allocation} as a bits map with {@code base} as the default grid (its bits are the default
     * width; every allocated layer is listed explicitly). Written to a temporary file and moved into place, so a
     * reader never sees half a file. With {@code kv} the KV cache's per-layer widths are written too; a null
     * {@code allocation} lists no layer (every linear at the default), for a map that allocates only the KV cache.
     */
    public static void write(Path file, Assignment allocation, QuantConfig base, Kv kv, Map<String, Object> provenance) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        root.put("version", VERSION);
        root.set("default", JSON.valueToTree(base.describe()));
        ObjectNode layers = root.putObject("layers");
        if (allocation != null) for (var e : allocation.bits().entrySet()) layers.putObject(e.getKey()).put("bits", e.getValue());
        if (kv != null) {
            ObjectNode k = root.putObject("kv");
            k.put("group_size", kv.groupSize());
            k.set("layers", JSON.valueToTree(kv.widths().describeLayers()));
        }
        ObjectNode summary = root.putObject("summary");
        if (allocation != null) {
            summary.put("bits_per_weight", allocation.bitsPerWeight());
            summary.put("predicted_loss", allocation.predictedLoss());
            summary.put("storage_bits", allocation.storageBits());
        }
        try {
            root.set("provenance", JSON.valueToTree(provenance == null ? Map.of() : provenance));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("provenance cannot be written as JSON: " + e.getMessage(), e);
        }
        try {
            Path dir = file.toAbsolutePath().getParent();
            Files.createDirectories(dir);
            Path tmp = Files.createTempFile(dir, file.getFileName() + ".", ".tmp",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-r--r--")));  // 0644 as every output
            try {
                Files.writeString(tmp, JSON.writeValueAsString(root) + "\n", StandardCharsets.UTF_8);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } finally {
                Files.deleteIfExists(tmp);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write bits map " + file, e);
        }
    }

    /** Reads and validates a bits map; any problem is a FormatException naming the file and the entry. */
    public static BitsMap read(Path file) {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
        } catch (JsonProcessingException e) {
            throw new FormatException(file, "is not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read bits map " + file, e);
        }
        if (root == null || root.isMissingNode()) throw new FormatException(file, "is empty (expected a " + FORMAT + " JSON object)");
        if (!root.isObject()) throw new FormatException(file, "is not a JSON object (expected a " + FORMAT + " file)");
        unknownKeys(file, root, TOP_KEYS, "top level");
        if (!FORMAT.equals(root.path("format").asText(null)))
            throw new FormatException(file, "\"format\" is " + root.get("format") + ", expected \"" + FORMAT + "\"");
        JsonNode version = root.get("version");
        if (version == null || !version.isIntegralNumber() || version.asInt() != VERSION)
            throw new FormatException(file, "\"version\" is " + version + ", this reader understands " + VERSION);

        JsonNode def = root.get("default");
        if (def == null || !def.isObject()) throw new FormatException(file, "\"default\" must be an object with at least \"bits\"");
        QuantConfig defaultConfig = parseDefault(file, def);

        Map<String, Integer> layers = new LinkedHashMap<>();
        JsonNode ls = root.get("layers");
        if (ls == null || !ls.isObject()) throw new FormatException(file, "\"layers\" must be an object of layer name -> {\"bits\": B}");
        for (var it = ls.fields(); it.hasNext(); ) {
            var e = it.next();
            String where = "layer " + e.getKey();
            if (e.getKey().isBlank()) throw new FormatException(file, "a layer has an empty name");
            if (!e.getValue().isObject()) throw new FormatException(file, where + ": expected {\"bits\": B}, got " + e.getValue());
            unknownKeys(file, e.getValue(), LAYER_KEYS, where);
            layers.put(e.getKey(), bits(file, e.getValue().get("bits"), where));
        }
        Kv kv = root.has("kv") ? parseKv(file, root.get("kv")) : null;
        for (String k : List.of("summary", "provenance"))
            if (root.has(k) && !root.get(k).isObject()) throw new FormatException(file, "\"" + k + "\" must be an object");
        Map<String, Object> provenance = root.has("provenance")
                ? JSON.convertValue(root.get("provenance"), JSON.getTypeFactory().constructMapType(LinkedHashMap.class, String.class, Object.class))
                : Map.of();
        return new BitsMap(file, defaultConfig, layers, kv, provenance);
    }

    /** "kv": {"group_size": G, "layers": {"0": {"key_bits": K, "value_bits": V}, ...}}, layers 0..L-1 each once. */
    private static Kv parseKv(Path file, JsonNode kv) {
        if (!kv.isObject())
            throw new FormatException(file, "\"kv\" must be an object {\"group_size\": G, \"layers\": {\"0\": {\"key_bits\": K, \"value_bits\": V}, ...}}");
        unknownKeys(file, kv, KV_KEYS, "kv");
        JsonNode gs = kv.get("group_size");
        if (gs == null) throw new FormatException(file, "kv: \"group_size\" is missing (0: the whole head)");
        if (!gs.isIntegralNumber() || gs.asLong() < 0 || gs.asLong() > Integer.MAX_VALUE)
            throw new FormatException(file, "kv: \"group_size\" must be an integer >= 0 (0: the whole head), got " + gs);
        JsonNode ls = kv.get("layers");
        if (ls == null || !ls.isObject() || ls.isEmpty())
            throw new FormatException(file, "kv: \"layers\" must be a non-empty object of layer index -> {\"key_bits\": K, \"value_bits\": V}");
        Map<Integer, int[]> byLayer = new java.util.TreeMap<>();
        for (var it = ls.fields(); it.hasNext(); ) {
            var e = it.next();
            String where = "kv layer " + e.getKey();
            if (!e.getKey().matches("0|[1-9][0-9]{0,8}"))
                throw new FormatException(file, where + ": the layer must be an index 0, 1, ..., got \"" + e.getKey() + "\"");
            if (!e.getValue().isObject())
                throw new FormatException(file, where + ": expected {\"key_bits\": K, \"value_bits\": V}, got " + e.getValue());
            unknownKeys(file, e.getValue(), KV_LAYER_KEYS, where);
            byLayer.put(Integer.parseInt(e.getKey()), new int[] {kvBits(file, e.getValue(), "key_bits", where), kvBits(file, e.getValue(), "value_bits", where)});
        }
        int n = byLayer.size();
        int[] k = new int[n], v = new int[n];
        int expected = 0;
        for (var e : byLayer.entrySet()) {
            if (e.getKey() != expected)
                throw new FormatException(file, "kv: layer " + expected + " is missing (layers must be 0.." + (byLayer.size() - 1)
                        + " with none left out; got up to " + ((java.util.TreeMap<Integer, int[]>) byLayer).lastKey() + ")");
            k[expected] = e.getValue()[0];
            v[expected] = e.getValue()[1];
            expected++;
        }
        return new Kv(gs.asInt(), KvWidths.perLayer(k, v));
    }

    private static int kvBits(Path file, JsonNode layer, String key, String where) {
        JsonNode n = layer.get(key);
        if (n == null) throw new FormatException(file, where + ": \"" + key + "\" is missing");
        if (!n.isIntegralNumber() || !(n.asLong() == 16 || (n.asLong() >= 2 && n.asLong() <= 8)))
            throw new FormatException(file, where + ": \"" + key + "\" must be an integer 2..8, or 16 for float, got " + n);
        return n.asInt();
    }

    private static QuantConfig parseDefault(Path file, JsonNode def) {
        unknownKeys(file, def, DEFAULT_KEYS, "default");
        int bits = bits(file, def.get("bits"), "default");
        boolean symmetric = bool(file, def, "symmetric", false);
        boolean mse = bool(file, def, "mse_clip", false);
        String gran = text(file, def, "granularity", null);
        JsonNode gs = def.get("group_size");
        if (gs != null && !gs.isNull() && (!gs.isIntegralNumber() || gs.asLong() < 1 || gs.asLong() > Integer.MAX_VALUE))
            throw new FormatException(file, "default: \"group_size\" must be a positive integer, got " + gs);
        boolean hasGroup = gs != null && !gs.isNull();
        int groupSize;
        if (gran == null) groupSize = hasGroup ? gs.asInt() : 128;
        else groupSize = switch (gran) {
            case "group" -> {
                if (!hasGroup) throw new FormatException(file, "default: granularity \"group\" needs a \"group_size\"");
                yield gs.asInt();
            }
            case "per-channel", "per-tensor" -> {
                if (hasGroup) throw new FormatException(file, "default: granularity \"" + gran + "\" takes no \"group_size\", got " + gs);
                yield gran.equals("per-channel") ? QuantConfig.PER_CHANNEL : QuantConfig.PER_TENSOR;
            }
            default -> throw new FormatException(file, "default: \"granularity\" must be group, per-channel or per-tensor, got \"" + gran + "\"");
        };
        QuantConfig.ZeroPoint zero = enumValue(file, QuantConfig.ZeroPoint.class, text(file, def, "zero_point", "integer"), "zero_point");
        QuantConfig.ScaleFormat scale = enumValue(file, QuantConfig.ScaleFormat.class, text(file, def, "scale_format", "f16"), "scale_format");
        try {
            return new QuantConfig(bits, symmetric, groupSize, zero, scale, mse);
        } catch (IllegalArgumentException e) {
            throw new FormatException(file, "default: " + e.getMessage(), e);
        }
    }

    private static int bits(Path file, JsonNode n, String where) {
        if (n == null) throw new FormatException(file, where + ": \"bits\" is missing");
        if (!n.isIntegralNumber() || n.asLong() < 2 || n.asLong() > 8)
            throw new FormatException(file, where + ": \"bits\" must be an integer 2..8, got " + n);
        return n.asInt();
    }

    private static boolean bool(Path file, JsonNode def, String key, boolean absent) {
        JsonNode n = def.get(key);
        if (n == null) return absent;
        if (!n.isBoolean()) throw new FormatException(file, "default: \"" + key + "\" must be true or false, got " + n);
        return n.asBoolean();
    }

    private static String text(Path file, JsonNode def, String key, String absent) {
        JsonNode n = def.get(key);
        if (n == null || n.isNull()) return absent;
        if (!n.isTextual()) throw new FormatException(file, "default: \"" + key + "\" must be a string, got " + n);
        return n.asText();
    }

    private static <E extends Enum<E>> E enumValue(Path file, Class<E> type, String text, String key) {
        for (E e : type.getEnumConstants()) if (e.name().equalsIgnoreCase(text)) return e;
        List<String> names = new ArrayList<>();
        for (E e : type.getEnumConstants()) names.add(e.name().toLowerCase());
        throw new FormatException(file, "default: \"" + key + "\" must be one of " + names + ", got \"" + text + "\"");
    }

    private static void unknownKeys(Path file, JsonNode node, Set<String> allowed, String where) {
        for (var it = node.fieldNames(); it.hasNext(); ) {
            String k = it.next();
            if (!allowed.contains(k))
                throw new FormatException(file, where + ": unknown key \"" + k + "\" (allowed: " + String.join(", ", allowed.stream().sorted().toList()) + ")");
        }
    }
}
