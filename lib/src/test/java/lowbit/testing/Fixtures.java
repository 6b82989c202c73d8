package lowbit.testing;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** Golden fixtures on the test classpath as the generators in environment/fixtures write them: raw little-endian arrays. */
public final class Fixtures {
    private Fixtures() {}

    /** The bytes of a resource, e.g. "/gptq/w.bin"; a missing fixture fails the test naming it. */
    public static byte[] bytes(String resource) throws IOException {
        try (InputStream in = Fixtures.class.getResourceAsStream(resource)) {
            assertNotNull(in, "fixture " + resource);
            return in.readAllBytes();
        }
    }

    /** A raw little-endian float32 array. */
    public static float[] floats(String resource) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes(resource)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    /** A raw little-endian float64 array. */
    public static double[] doubles(String resource) throws IOException {
        ByteBuffer b = ByteBuffer.wrap(bytes(resource)).order(ByteOrder.LITTLE_ENDIAN);
        double[] out = new double[b.remaining() / 8];
        b.asDoubleBuffer().get(out);
        return out;
    }
}
