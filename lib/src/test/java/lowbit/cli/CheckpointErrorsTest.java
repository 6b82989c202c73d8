package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.stream.Stream;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.TinyHf;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Checkpoints that are not what they claim: one line with the lowbit: prefix, exit 2, never a stack trace. */
class CheckpointErrorsTest {
    @TempDir Path tmp;

    private static void expectError(String expected, String... args) {
        CliRun o = CliRun.of(args);
        assertEquals(2, o.exit(), String.join(" ", args) + "\n" + o.err());
        assertEquals("lowbit: " + expected, o.err().strip());
        assertEquals("", o.out(), "nothing printed but the error");
    }

    @Test
    void zeroAttentionHeads() throws Exception {
        Path dir = TinyHf.write(tmp.resolve("m"), TinyHf.config(1, "").replace("\"num_attention_heads\": 2",
                "\"num_attention_heads\": 0"), 1);
        for (String command : new String[] {"info", "ppl"})
            expectError(dir.resolve("config.json") + ": \"num_attention_heads\" must be >= 1, found 0", command, "--model", dir.toString());
    }

    @Test
    void fewerLayersInTheConfigThanInTheFile() throws Exception {
        Path dir = TinyHf.write(tmp.resolve("m"), TinyHf.config(1, ""), 2);
        expectError(dir + ": 9 tensor(s) the llama model of its config (1 layers) does not use, e.g. model.layers.1.input_layernorm.weight, "
                + "model.layers.1.self_attn.q_proj.weight, model.layers.1.self_attn.k_proj.weight: the config does not describe this "
                + "checkpoint", "info", "--model", dir.toString());
    }

    @Test
    void aQuantizedManifestWithoutConfig() throws Exception {
        Path src = TinyHf.write(tmp.resolve("src"), TinyHf.config(1, ""), 1);
        Path out = tmp.resolve("q");
        try (Checkpoint c = Checkpoints.open(src); Transformer m = Checkpoints.load(c, 1)) {
            QuantizedModelFiles.write(out, c, src.toString(), m, QuantizedModel.rtn(m, QuantConfig.group(4, 4)), Map.of());
        }
        Path manifest = out.resolve("lowbit.json");
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(manifest.toFile());
        root.remove("config");
        json.writeValue(manifest.toFile(), root);
        // before: info printed "config: null" with exit 0, ppl threw a NullPointerException
        for (String command : new String[] {"info", "ppl"})
            expectError(manifest + ": has no \"config\" object (the model's hyper-parameters); was it written by lowbit quantize?",
                    command, "--model", out.toString());
    }

    @Test
    void quantizeChecksOutBeforeAnyWork() throws Exception {
        Path src = TinyHf.write(tmp.resolve("src"), TinyHf.config(1, ""), 1);
        Path full = Files.createDirectories(tmp.resolve("full"));
        Files.writeString(full.resolve("keep.txt"), "x");
        // the model path does not exist: had the model been opened first, that would be the error
        String missing = tmp.resolve("no-such-model").toString();
        expectError("--out " + full + " exists and is not empty; choose a new directory or remove it",
                "quantize", "--model", missing, "--method", "rtn", "--bits", "4", "--out", full.toString());
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        expectError("--out " + file.resolve("q") + ": " + file + " is not a directory",
                "quantize", "--model", missing, "--method", "rtn", "--bits", "4", "--out", file.resolve("q").toString());
        try (Stream<Path> s = Files.list(tmp)) {
            assertEquals(0, s.filter(p -> p.getFileName().toString().contains(".partial-")).count());
        }
        assertTrue(Files.isDirectory(src));
    }
}
