package lowbit.checkpoint.quantized;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.function.Consumer;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.TinyHf;
import lowbit.io.FormatException;
import lowbit.io.TensorInfo;
import lowbit.io.safetensors.SafetensorsBuilder;
import lowbit.io.safetensors.SafetensorsFile;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Our quantized directory, written from a byte-built two-layer model, then corrupted one field at a time. */
class QuantizedCheckpointTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String Q = "model.layers.0.self_attn.q_proj";

    @TempDir Path tmp;
    Path out;
    Path manifest;
    Path weights;

    @BeforeEach
    void writeQuantizedModel() throws Exception {
        Path src = TinyHf.write(tmp.resolve("src"), TinyHf.config(2, ""), 2);
        out = tmp.resolve("q");
        try (Checkpoint c = Checkpoints.open(src); Transformer m = Checkpoints.load(c, 1)) {
            QuantizedModel qm = QuantizedModel.rtn(m, QuantConfig.group(4, 4));
            QuantizedModelFiles.write(out, c, src.toString(), m, qm, Map.of("spec", "rtn:w4g4"));
        }
        manifest = out.resolve(QuantizedModelFiles.MANIFEST);
        weights = out.resolve(QuantizedModelFiles.WEIGHTS);
    }

    private void editManifest(Consumer<ObjectNode> edit) throws Exception {
        ObjectNode root = (ObjectNode) JSON.readTree(manifest.toFile());
        edit.accept(root);
        JSON.writeValue(manifest.toFile(), root);
    }

    private ObjectNode grid(ObjectNode root) {
        return (ObjectNode) root.get("linears").get(Q).get("grid");
    }

    private String refused() {
        return assertThrows(RuntimeException.class, () -> Checkpoints.open(out).close()).getMessage();
    }

    @Test
    void theWrittenDirectoryLoads() {
        try (Checkpoint c = Checkpoints.open(out); Transformer m = Checkpoints.load(c, 1)) {
            assertEquals(2 * 7 + 1, m.linears().size());
        }
    }

    @Test
    void anUnknownVersionIsRefused() throws Exception {
        editManifest(r -> r.put("version", 99));
        assertEquals(manifest + ": \"version\" is 99; this lowbit reads version 1 (written by a different lowbit?)", refused());
        editManifest(r -> r.remove("version"));
        assertTrue(refused().startsWith(manifest + ": \"version\" is null"), refused());
    }

    @Test
    void aManifestWithoutConfigIsOneClearError() throws Exception {
        editManifest(r -> r.remove("config"));
        assertEquals(manifest + ": has no \"config\" object (the model's hyper-parameters); was it written by lowbit quantize?",
                refused());
    }

    @Test
    void badConfigValuesNameTheManifestAndKey() throws Exception {
        editManifest(r -> ((ObjectNode) r.get("config")).put("ropeTheta", "NaN"));
        assertEquals(manifest + ": \"config\": rope_theta must be a finite number > 0, found NaN (key config.ropeTheta)", refused());
        editManifest(r -> ((ObjectNode) r.get("config")).put("ropeTheta", 10000).put("numHeads", 0));
        assertEquals(manifest + ": \"config\": num_attention_heads must be >= 1, found 0 (key config.numHeads)", refused());
    }

    @Test
    void fewerLayersInTheManifestThanInTheWeightsIsRefused() throws Exception {
        // before: the second block was silently dropped
        editManifest(r -> ((ObjectNode) r.get("config")).put("numLayers", 1));
        String e = refused();
        assertTrue(e.startsWith(out + ": 9 tensor(s) the llama model of its config (1 layers) does not use, e.g. model.layers.1."), e);
    }

    @Test
    void groupSizeZeroNamesTheLinearAndKey() throws Exception {
        editManifest(r -> grid(r).put("group_size", 0));
        assertEquals(manifest + ": linear " + Q + " has a bad grid: group size must be >= 1 for granularity group, found 0"
                + " (key grid.group_size)", refused());
    }

    @Test
    void aZeroPointKindThatDoesNotMatchTheStoredZerosIsRefused() throws Exception {
        // float mins would be read from U8 integer zeros: perplexity in the billions before
        editManifest(r -> grid(r).put("zero_point", "float_min"));
        assertEquals(weights + ": tensor " + Q + ".zeros is U8, expected F16 for zeros of zero_point float_min as the manifest's"
                + " grid says", refused());
        editManifest(r -> grid(r).put("zero_point", "integer").put("scale_format", "f32"));
        assertEquals(weights + ": tensor " + Q + ".scales is F16, expected F32 for scales in scale_format f32 as the manifest's"
                + " grid says", refused());
    }

    /** Rewrites model.safetensors with one tensor's bytes replaced (or an extra tensor added). */
    private void rewriteWeights(String name, String dtype, long[] shape, byte[] bytes) throws Exception {
        SafetensorsBuilder b = new SafetensorsBuilder().metadata("format", QuantizedModelFiles.FORMAT);
        boolean replaced = false;
        try (SafetensorsFile f = SafetensorsFile.open(weights)) {
            for (TensorInfo t : f.tensors().values()) {
                ByteBuffer data = f.bytes(t.name());
                byte[] raw = new byte[data.remaining()];
                data.get(raw);
                if (t.name().equals(name)) {
                    b.raw(name, dtype, shape, bytes);
                    replaced = true;
                } else b.raw(t.name(), t.dtype(), t.shape(), raw);
            }
        }
        if (!replaced) b.raw(name, dtype, shape, bytes);
        Files.delete(weights);
        b.write(weights);
    }

    @Test
    void aNonFiniteScaleIsRefusedNamingTheTensor() throws Exception {
        // 4 rows x 1 group of fp16 scales; element 2 is NaN (0x7E00)
        ByteBuffer s = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        s.putShort((short) 0x3C00).putShort((short) 0x3C00).putShort((short) 0x7E00).putShort((short) 0x3C00);
        rewriteWeights(Q + ".scales", "F16", new long[] {4, 1}, s.array());
        FormatException e = assertThrows(FormatException.class, () -> Checkpoints.open(out).close());
        assertEquals(weights + ": tensor " + Q + ".scales holds NaN at element 2; scales and zeros must be finite", e.getMessage());
    }

    @Test
    void aTensorThatIsNoPartOfAQuantizedLinearIsRefused() throws Exception {
        rewriteWeights(Q + ".extra", "F32", new long[] {1}, new byte[4]);
        assertEquals(weights + ": tensor " + Q + ".extra is no part of the quantized linear " + Q
                + " (expected qweight, scales, zeros, g_idx)", refused());
    }
}
