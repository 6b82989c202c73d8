package lowbit.checkpoint.hf;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Our GPTQ, AWQ and compressed-tensors packing against the reference libraries: the packed tensors we write equal, byte
 * for byte, what the reference packing wrote from the same codes, scales and zeros (and the reference unpacking of them
 * gives those inputs back, asserted by the generator), and our reading of the reference tensors dequantizes to exactly
 * the reference library's own dequantization. Regenerate with
 * {@code /work/refvenv/bin/python lib/src/test/resources/hf/quantized/make_fixtures.py lib/src/test/resources/hf/quantized}.
 */
class HfLayoutFixturesTest {
    private static final Path FIXTURE = Path.of("src/test/resources/hf/quantized/layouts.safetensors");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir Path tmp;

    static Stream<String> cases() {
        try (SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
            return new ArrayList<>(f.metadata().keySet()).stream();
        }
    }

    static QuantLayout.Tensors tensors(SafetensorsFile f) {
        return new QuantLayout.Tensors() {
            @Override
            public Path file() {
                return f.file();
            }

            @Override
            public TensorInfo info(String name) {
                return f.tensors().get(name);
            }

            @Override
            public ByteBuffer bytes(String name) {
                return f.bytes(name);
            }

            @Override
            public float[] floats(String name) {
                return f.floats(name);
            }
        };
    }

    private static byte[] raw(SafetensorsFile f, String name) {
        ByteBuffer b = f.bytes(name);
        byte[] out = new byte[b.remaining()];
        b.get(out);
        return out;
    }

    /** The case's inputs as our QuantizedWeight: fp16 scales, integer zeros, the group index when groups are not contiguous. */
    private static QuantizedWeight inputs(SafetensorsFile f, String name, int bits, int groupSize) {
        long[] shape = f.tensors().get(name + ".codes").shape();
        int rows = (int) shape[0], cols = (int) shape[1];
        boolean sym = !f.tensors().containsKey(name + ".zeros");
        QuantConfig cfg = new QuantConfig(bits, sym, groupSize, QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F16, false);
        float[] zeros = sym ? null : f.floats(name + ".zeros");
        int[] gIdx = new int[cols];
        ByteBuffer g = f.bytes(name + ".g_idx").order(ByteOrder.LITTLE_ENDIAN);
        g.asIntBuffer().get(gIdx);
        boolean contiguous = true;
        for (int i = 0; i < cols; i++) contiguous &= gIdx[i] == (cfg.grouped() ? i / groupSize : 0);
        return new QuantizedWeight(rows, cols, cfg, BitPacking.pack(raw(f, name + ".codes"), bits), f.floats(name + ".scales"), zeros,
                contiguous ? null : gIdx);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void ourPackingIsTheReferencesAndOurUnpackingDequantizesAsItDoes(String name) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
            var qc = JSON.readTree(f.metadata().get(name));
            QuantLayout layout = QuantLayout.of(qc, FIXTURE);
            int bits = qc.has("num_bits") ? 0 : qc.path("bits").asInt();
            var w = qc.path("config_groups").path("group_0").path("weights");
            if (bits == 0) bits = w.path("num_bits").asInt();
            int g = qc.has("group_size") ? qc.path("group_size").asInt() : w.path("group_size").asInt(-1);
            QuantizedWeight q = inputs(f, name, bits, g > 0 ? g : QuantConfig.PER_CHANNEL);
            assertNull(layout.refusal(q));

            SafetensorsWriter st = new SafetensorsWriter();
            layout.write(st, "m", q);
            Path ours = tmp.resolve(name + ".safetensors");
            st.write(ours);
            String prefix = name + "/m.";
            List<String> expected = f.tensors().keySet().stream().filter(k -> k.startsWith(prefix)).map(k -> k.substring(name.length() + 1)).sorted().toList();
            try (SafetensorsFile o = SafetensorsFile.open(ours)) {
                assertEquals(expected, o.tensors().keySet().stream().sorted().toList());
                for (String t : expected) {
                    TensorInfo ref = f.tensors().get(name + "/" + t), mine = o.tensors().get(t);
                    assertEquals(ref.dtype(), mine.dtype(), t);
                    assertArrayEquals(ref.shape(), mine.shape(), t);
                    assertArrayEquals(raw(f, name + "/" + t), raw(o, t), name + ": " + t + " differs from the reference packing");
                }
            }

            QuantizedWeight back = layout.read(tensors(f), name + "/m");
            assertArrayEquals(q.codes(), back.codes());
            assertArrayEquals(f.floats(name + ".dense"), back.dequantize(), name + ": our dequantization is not the reference's");
            assertArrayEquals(q.dequantize(), back.dequantize());
        }
    }
}
