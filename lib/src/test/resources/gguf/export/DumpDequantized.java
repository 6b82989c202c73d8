import java.io.*;
import java.nio.*;
import java.nio.file.*;
import lowbit.io.gguf.*;
/**
 * Writes every tensor of a GGUF file as lowbit dequantizes it (little-endian float32, in file order), for
 * check_dequantize_gguf_py.py to compare with the gguf Python package. Run from the repository root after a build:
 *   java --add-modules jdk.incubator.vector -cp "lib/target/lowbit.jar:lib/target/deps/*" \
 *       lib/src/test/resources/gguf/export/DumpDequantized.java F.gguf F.f32
 *   python lib/src/test/resources/gguf/export/check_dequantize_gguf_py.py F.gguf F.f32
 */
public class DumpDequantized {
    public static void main(String[] a) throws Exception {
        try (GgufFile f = GgufFile.open(Path.of(a[0])); DataOutputStream out = new DataOutputStream(new BufferedOutputStream(new FileOutputStream(a[1]), 1 << 20))) {
            for (GgufTensor t : f.tensors()) {
                float[] x = f.dequantize(t.name());
                ByteBuffer b = ByteBuffer.allocate(4 * x.length).order(ByteOrder.LITTLE_ENDIAN);
                b.asFloatBuffer().put(x);
                out.write(b.array());
            }
        }
    }
}
