package lowbit.studies;

import lowbit.quant.mixed.BitAllocator;
import lowbit.quant.mixed.LayerOption;
import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.io.FormatException;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import lowbit.quant.mixed.BitAllocator.Allocation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BitsMapTest {
    @TempDir
    Path dir;

    private static final String Q0 = "model.layers.0.self_attn.q_proj", K0 = "model.layers.0.self_attn.k_proj",
            D1 = "model.layers.1.mlp.down_proj";

    private Allocation allocation() {
        List<LayerOption> options = List.of(
                LayerOption.of(Q0, 576, 576, QuantConfig.group(3, 128), 2.0), LayerOption.of(Q0, 576, 576, QuantConfig.group(4, 128), 1.0),
                LayerOption.of(K0, 192, 576, QuantConfig.group(3, 128), 9.0), LayerOption.of(K0, 192, 576, QuantConfig.group(8, 128), 0.0),
                LayerOption.of(D1, 576, 1536, QuantConfig.group(2, 128), 5.0), LayerOption.of(D1, 576, 1536, QuantConfig.group(4, 128), 0.1));
        return BitAllocator.allocate(options, 4.0);
    }

    @Test
    void roundTrip() throws Exception {
        Allocation a = allocation();
        Path f = dir.resolve("sub/bits.json");
        Map<String, Object> prov = new LinkedHashMap<>();
        prov.put("model", "SmolLM2-135M-Instruct");
        prov.put("sensitivity", "ppl increase, wikitext2, 16 x 512 tokens");
        prov.put("seed", 3);
        prov.put("widths", List.of(2, 3, 4, 8));
        QuantConfig base = QuantConfig.group(4, 128).withMseClip(true);
        BitsMap.write(f, a, base, prov);
        // readable by others as any new file here is (a temporary file alone would be 0600)
        var others = java.nio.file.attribute.PosixFilePermission.OTHERS_READ;
        assertEquals(Files.getPosixFilePermissions(Files.writeString(dir.resolve("plain"), "")).contains(others),
                Files.getPosixFilePermissions(f).contains(others));

        BitsMap m = BitsMap.read(f);
        assertEquals(f, m.source());
        assertEquals(base, m.defaultConfig());
        assertEquals(a.bits(), m.layers());
        assertEquals(List.copyOf(a.bits().keySet()), List.copyOf(m.layers().keySet()));
        for (String l : List.of(Q0, K0, D1)) {
            QuantConfig c = m.configFor(l);
            assertEquals(a.bits().get(l), c.bits());
            assertEquals(new QuantConfig(c.bits(), false, 128, ZeroPoint.INTEGER, ScaleFormat.F16, true), c);
        }
        assertEquals(base, m.configFor("model.layers.5.mlp.up_proj"));
        assertEquals(prov, m.provenance());
        m.checkLayers(List.of(Q0, K0, D1, "lm_head"));
        var e = assertThrows(FormatException.class, () -> m.checkLayers(List.of(Q0, K0)));
        assertTrue(e.getMessage().contains(f.toString()) && e.getMessage().contains(D1), e.getMessage());
    }

    @Test
    void everyDefaultGridRoundTrips() {
        Allocation a = allocation();
        List<QuantConfig> grids = List.of(QuantConfig.perChannel(3), QuantConfig.perTensor(4), QuantConfig.q4_1(),
                QuantConfig.absmaxPerChannel(8), QuantConfig.group(4, 32).withSymmetric(true),
                QuantConfig.group(4, 128).withZeroPoint(ZeroPoint.AWQ), QuantConfig.group(3, 64).withScaleFormat(ScaleFormat.F32));
        for (QuantConfig g : grids) {
            Path f = dir.resolve(g.label() + g.zeroPoint() + ".json");
            BitsMap.write(f, a, g, null);
            BitsMap m = BitsMap.read(f);
            assertEquals(g, m.defaultConfig());
            assertEquals(g.withBits(8), m.configFor(K0));
            assertEquals(Map.of(), m.provenance());
        }
    }

    @Test
    void handWrittenMinimalFile() throws IOException {
        Path f = write("min.json", """
                {"format": "lowbit-bits-map", "version": 1, "default": {"bits": 4},
                 "layers": {"a": {"bits": 2}, "b": {"bits": 8}}}""");
        BitsMap m = BitsMap.read(f);
        assertEquals(QuantConfig.group(4, 128), m.defaultConfig());
        assertEquals(QuantConfig.group(2, 128), m.configFor("a"));
        assertEquals(QuantConfig.group(8, 128), m.configFor("b"));
        Path g = write("g32.json", """
                {"format": "lowbit-bits-map", "version": 1, "default": {"bits": 3, "group_size": 32, "symmetric": true}, "layers": {}}""");
        assertEquals(QuantConfig.group(3, 32).withSymmetric(true), BitsMap.read(g).defaultConfig());
    }

    @Test
    void malformedFilesNameTheFileAndTheEntry() throws IOException {
        String ok = "\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4}";
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": 9}}}", "layer m.q", "2..8", "9");
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": 1}}}", "layer m.q", "2..8");
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": \"3\"}}}", "layer m.q", "2..8");
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": 3.5}}}", "layer m.q", "2..8");
        bad("{" + ok + ", \"layers\": {\"m.q\": {}}}", "layer m.q", "\"bits\" is missing");
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": 3, \"group\": 64}}}", "layer m.q", "unknown key \"group\"");
        bad("{" + ok + ", \"layers\": {\"m.q\": 3}}", "layer m.q", "expected {\"bits\": B}");
        bad("{" + ok + ", \"layers\": {}, \"extra\": 1}", "top level", "unknown key \"extra\"");
        bad("{" + ok + ", \"layers\": {\"m.q\": {\"bits\": 3}, \"m.q\": {\"bits\": 4}}}", "not valid JSON", "m.q");
        bad("{" + ok + "}", "\"layers\" must be an object");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 2, \"default\": {\"bits\": 4}, \"layers\": {}}", "\"version\" is 2");
        bad("{\"format\": \"other\", \"version\": 1, \"default\": {\"bits\": 4}, \"layers\": {}}", "\"format\" is \"other\"");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 1, \"layers\": {}}", "\"default\" must be an object");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4, \"groupsize\": 64}, \"layers\": {}}",
                "default", "unknown key \"groupsize\"");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4, \"zero_point\": \"float_min\", \"symmetric\": true}, \"layers\": {}}",
                "default", "symmetric grid has no float min");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4, \"scale_format\": \"bf16\"}, \"layers\": {}}",
                "default", "scale_format", "bf16");
        bad("{\"format\": \"lowbit-bits-map\", \"version\": 1, \"default\": {\"bits\": 4, \"granularity\": \"per-channel\", \"group_size\": 64}, \"layers\": {}}",
                "default", "takes no \"group_size\"");
        bad("[1, 2]", "is not a JSON object");
        bad("{\"format\": \"lowbit-bits-map\", ", "not valid JSON");
        bad("", "is empty");
        bad("  \n", "is empty");
    }

    private void bad(String text, String... expected) throws IOException {
        Path f = write("bad.json", text);
        var e = assertThrows(FormatException.class, () -> BitsMap.read(f), text);
        assertEquals(f, e.file());
        assertTrue(e.getMessage().startsWith(f.toString()), e.getMessage());
        for (String s : expected) assertTrue(e.getMessage().contains(s), "'" + s + "' not in: " + e.getMessage());
    }

    private Path write(String name, String text) throws IOException {
        Path f = dir.resolve(name);
        Files.writeString(f, text);
        return f;
    }
}
