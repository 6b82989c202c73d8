package lowbit.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Test-only: the key/value metadata of a GGUF file (v2/v3), as the Java types Tokenizers.fromGguf expects. */
final class GgufTestMetadata {
    private GgufTestMetadata() {}

    static Map<String, Object> read(Path file) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            MappedByteBuffer buf = ch.map(FileChannel.MapMode.READ_ONLY, 0, Math.min(ch.size(), Integer.MAX_VALUE));
            buf.order(ByteOrder.LITTLE_ENDIAN);
            if (buf.getInt() != 0x46554747) throw new IOException(file + ": not GGUF");
            int version = buf.getInt();
            if (version < 2) throw new IOException(file + ": GGUF v" + version);
            buf.getLong(); // tensor count
            long kv = buf.getLong();
            Map<String, Object> md = new LinkedHashMap<>();
            for (long i = 0; i < kv; i++) {
                String key = string(buf);
                md.put(key, value(buf, buf.getInt()));
            }
            return md;
        }
    }

    private static String string(ByteBuffer buf) {
        byte[] b = new byte[(int) buf.getLong()];
        buf.get(b);
        return new String(b, StandardCharsets.UTF_8);
    }

    private static Object value(ByteBuffer buf, int type) {
        return switch (type) {
            case 0 -> (int) (buf.get() & 0xFF);
            case 1 -> (int) buf.get();
            case 2 -> (int) (buf.getShort() & 0xFFFF);
            case 3 -> (int) buf.getShort();
            case 4 -> Integer.toUnsignedLong(buf.getInt());
            case 5 -> buf.getInt();
            case 6 -> buf.getFloat();
            case 7 -> buf.get() != 0;
            case 8 -> string(buf);
            case 9 -> {
                int t = buf.getInt();
                long n = buf.getLong();
                List<Object> l = new ArrayList<>((int) n);
                for (long i = 0; i < n; i++) l.add(value(buf, t));
                yield l;
            }
            case 10, 11 -> buf.getLong();
            case 12 -> buf.getDouble();
            default -> throw new IllegalStateException("GGUF value type " + type);
        };
    }
}
