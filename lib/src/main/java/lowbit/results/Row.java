package lowbit.results;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import lowbit.cuda.Device;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;

/**
 * One experiment in a {@link ResultStore}: its key and its fields (parameters, metrics, provenance, timing).
 *
 * <pre>{@code
 * Map<String, Object> params = Map.of("method", "gptq", "bits", 4, "group", 128, "nsamples", 128, "seed", 0);
 * Row row = Row.of(Row.key(params))
 *         .with("params", params)
 *         .with("metrics", Map.of("ppl_wikitext2", 17.42))
 *         .with("seconds", 31.5)
 *         .withProvenance();
 * }</pre>
 *
 * <p>Rows are immutable; {@link #with} returns a new row. Field values are restricted to what JSON can hold
 * without loss and are normalized on the way in (see {@link Json#normalize}): integral numbers become
 * {@code Long}, other numbers {@code Double}, enums and other text {@code String}, arrays and collections
 * {@code List}, maps {@code Map<String,Object>} in insertion order. A row read back from the store therefore
 * {@code equals} the row that was appended. Anything else is refused with an IllegalArgumentException.
 *
 * @param key    the experiment's identity in the store; use {@link #key(Map)} on the parameters that define it
 * @param fields field name to value, in insertion order; "key" itself is reserved
 */
public record Row(String key, Map<String, Object> fields) {
    public Row {
        Objects.requireNonNull(key, "key");
        if (key.isBlank()) throw new IllegalArgumentException("row key is blank");
        Objects.requireNonNull(fields, "fields");
        Map<String, Object> copy = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : fields.entrySet()) {
            String name = e.getKey();
            checkName(name);
            copy.put(name, Json.normalize(e.getValue(), name));
        }
        fields = Collections.unmodifiableMap(copy);
    }

    public static Row of(String key) {
        return new Row(key, Map.of());
    }

    /** This row with {@code name} set to {@code value} (replacing an earlier value of that field). */
    public Row with(String name, Object value) {
        checkName(name);
        Map<String, Object> copy = new LinkedHashMap<>(fields);
        copy.put(name, value);
        return new Row(key, copy);
    }

    /** This row with every entry of {@code more} set, in {@code more}'s iteration order. */
    public Row withAll(Map<String, ?> more) {
        Map<String, Object> copy = new LinkedHashMap<>(fields);
        copy.putAll(more);
        return new Row(key, copy);
    }

    /**
     * This row with the standard provenance fields of a result computed on the CPU with float32 weights; the threads
     * in the backend's description are the row's {@code threads} field when it has one (a model's provenance), else
     * the default. See {@link #withProvenance(Backend)}.
     */
    public Row withProvenance() {
        int threads = get("threads") instanceof Long n && n >= 1 && n <= Integer.MAX_VALUE ? n.intValue() : Parallel.defaultThreads();
        return withProvenance(Backend.of(Device.CPU, WeightFormat.FP32, threads));
    }

    /**
     * This row with the standard provenance fields: {@code code_version} ({@code {commit, dirty}} from
     * {@link CodeVersion#current()}), {@code java_version}, the backend's {@code backend} ("cpu-java-vector" on the CPU,
     * as before the GPU path), {@code device}, {@code weights} and {@code device_description} ({@link Backend#provenance()}),
     * and {@code timestamp} (UTC, ISO-8601, millisecond precision). No host name: stores are shared and committed.
     */
    public Row withProvenance(Backend backend) {
        CodeVersion cv = CodeVersion.current();
        Map<String, Object> code = new LinkedHashMap<>();
        code.put("commit", cv.commit());
        code.put("dirty", cv.dirty());
        return with("code_version", code)
                .with("java_version", Runtime.version().toString())
                .withAll(backend.provenance())
                .with("timestamp", Instant.now().truncatedTo(ChronoUnit.MILLIS).toString());
    }

    /** The value of a top-level field, or null when absent (or stored as null). */
    public Object get(String name) {
        return fields.get(name);
    }

    /**
     * The value at a dotted path through nested maps ("quant.grid.bits"), or null when any step is missing.
     * A top-level field whose own name contains dots is found too.
     */
    public Object at(String path) {
        if (fields.containsKey(path)) return fields.get(path);
        Object cur = fields;
        for (String step : path.split("\\.", -1)) {
            if (!(cur instanceof Map<?, ?> m)) return null;
            cur = m.get(step);
        }
        return cur;
    }

    /**
     * The key for an experiment defined by {@code parameters}: the lowercase hex SHA-256 of their canonical JSON
     * (map keys sorted at every level, no whitespace, values normalized as in a row). Equal parameter maps give
     * equal keys regardless of map order or of int versus long; {@code 4} and {@code 4.0} are different values
     * and give different keys, so pass each parameter with one type throughout a study.
     */
    public static String key(Map<String, ?> parameters) {
        return hash(parameters);
    }

    /**
     * SHA-256 (hex) of the canonical JSON of any storable value: for fields too big to keep in every row (a
     * calibration draw's token windows), store this hash plus where the full value is written.
     */
    public static String hash(Object value) {
        String json = canonicalJson(value);
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(json.getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is required of every Java platform", e);
        }
    }

    /** The canonical JSON text {@link #hash} digests: sorted keys, no whitespace. */
    public static String canonicalJson(Object value) {
        return Json.write(Json.CANONICAL, Json.normalize(value, "value"));
    }

    private static void checkName(String name) {
        Objects.requireNonNull(name, "field name");
        if (name.isEmpty()) throw new IllegalArgumentException("empty field name");
        if (name.equals(ResultStore.KEY_FIELD))
            throw new IllegalArgumentException("field name \"" + ResultStore.KEY_FIELD + "\" is reserved for the row key");
    }
}
