package lowbit.io.gguf;

import java.util.List;

/**
 * A GGUF metadata value with its exact wire type, so that a file's metadata (the tokenizer's arrays above all)
 * can be copied into another file type for type.
 *
 * <p>Values are held as {@link GgufFile#metadata()} returns them: uint8, int8, uint16, int16, int32 as Integer;
 * uint32, int64, uint64 as Long; float32 as Float, float64 as Double, bool as Boolean, string as String, an
 * array as a List of its elements' values.
 *
 * @param elementType the type of an array's elements; null for a scalar
 */
public record GgufValue(Type type, Type elementType, Object value) {
    /** GGUF's value types with their ids (gguf.h's gguf_type). */
    public enum Type {
        UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64;

        public int id() {
            return ordinal();
        }

        public static Type byId(int id) {
            Type[] all = values();
            if (id < 0 || id >= all.length) throw new IllegalArgumentException("no GGUF value type " + id + " (expected 0.." + (all.length - 1) + ")");
            return all[id];
        }
    }

    public GgufValue {
        if (type == null || value == null) throw new IllegalArgumentException("a GGUF value needs a type and a value");
        if ((type == Type.ARRAY) != (elementType != null))
            throw new IllegalArgumentException("an array needs its element type and only an array has one (type " + type + ")");
        if (elementType == Type.ARRAY) throw new IllegalArgumentException("nested arrays are not written");
        if (type == Type.ARRAY && !(value instanceof List<?>))
            throw new IllegalArgumentException("an array value must be a List, got " + value.getClass().getSimpleName());
    }

    public static GgufValue string(String s) {
        return new GgufValue(Type.STRING, null, s);
    }

    public static GgufValue uint32(long v) {
        if (v < 0 || v > 0xFFFFFFFFL) throw new IllegalArgumentException("uint32 out of range: " + v);
        return new GgufValue(Type.UINT32, null, v);
    }

    public static GgufValue int32(int v) {
        return new GgufValue(Type.INT32, null, v);
    }

    public static GgufValue float32(float v) {
        return new GgufValue(Type.FLOAT32, null, v);
    }

    public static GgufValue bool(boolean v) {
        return new GgufValue(Type.BOOL, null, v);
    }

    public static GgufValue array(Type elementType, List<?> values) {
        return new GgufValue(Type.ARRAY, elementType, List.copyOf(values));
    }
}
