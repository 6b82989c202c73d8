package lowbit.results;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;

/**
 * The JSON side of the store: the two mappers and the value model rows are restricted to.
 *
 * <p>Values are normalized when they enter a {@link Row} so that what is read back from disk equals what was
 * written: every integral number becomes a {@code Long}, every other number a {@code Double}, text a
 * {@code String}, maps {@code Map<String,Object>} (insertion order kept) and collections or arrays
 * {@code List<Object>}. Non-finite doubles are written as the bare tokens {@code NaN}, {@code Infinity} and
 * {@code -Infinity} (what Python's {@code json} module writes and reads) rather than as strings, so a diverged
 * perplexity stays a number.
 */
final class Json {
    private Json() {}

    /** Writes store lines: no indentation, so one object is one line; map order as inserted. */
    static final ObjectMapper LINE = JsonMapper.builder()
            .disable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(DeserializationFeature.USE_LONG_FOR_INTS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .build();

    /** Canonical form for hashing: map keys sorted at every level. */
    static final ObjectMapper CANONICAL = JsonMapper.builder()
            .disable(JsonWriteFeature.WRITE_NAN_AS_STRINGS)
            .enable(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS)
            .build();

    static String write(ObjectMapper mapper, Object value) {
        try {
            return mapper.writeValueAsString(value);
        } catch (JsonProcessingException e) {
            // Only normalized values reach here, and those always serialize.
            throw new IllegalStateException("cannot serialize " + value, e);
        }
    }

    /** The value in the store's value model, or IllegalArgumentException naming {@code where} it was found. */
    static Object normalize(Object v, String where) {
        if (v == null || v instanceof String || v instanceof Boolean || v instanceof Long || v instanceof Double) return v;
        if (v instanceof Integer || v instanceof Short || v instanceof Byte) return ((Number) v).longValue();
        if (v instanceof Float f) return f.doubleValue();
        if (v instanceof BigInteger b) {
            if (b.bitLength() < 64) return b.longValue();
            throw new IllegalArgumentException(where + ": integer " + b + " does not fit in a long");
        }
        if (v instanceof BigDecimal d) return d.doubleValue();
        if (v instanceof Number n) return n.doubleValue(); // AtomicLong, DoubleAdder, ...: their value now
        if (v instanceof CharSequence || v instanceof Character || v instanceof Path || v instanceof UUID) return v.toString();
        if (v instanceof Enum<?> e) return e.name();
        if (v instanceof Map<?, ?> m) {
            Map<String, Object> out = new LinkedHashMap<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                if (!(e.getKey() instanceof String k))
                    throw new IllegalArgumentException(where + ": map key " + e.getKey() + " is not a string");
                out.put(k, normalize(e.getValue(), where + "." + k));
            }
            return Collections.unmodifiableMap(out);
        }
        if (v instanceof Iterable<?> it) {
            List<Object> out = new ArrayList<>();
            int i = 0;
            for (Object o : it) out.add(normalize(o, where + "[" + i++ + "]"));
            return Collections.unmodifiableList(out);
        }
        if (v.getClass().isArray()) {
            int n = java.lang.reflect.Array.getLength(v);
            List<Object> out = new ArrayList<>(n);
            for (int i = 0; i < n; i++) out.add(normalize(java.lang.reflect.Array.get(v, i), where + "[" + i + "]"));
            return Collections.unmodifiableList(out);
        }
        throw new IllegalArgumentException(where + ": cannot store a " + v.getClass().getName()
                + " (allowed: numbers, strings, booleans, null, enums, maps with string keys, lists, arrays)");
    }
}
