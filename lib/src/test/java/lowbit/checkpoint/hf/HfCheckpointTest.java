package lowbit.checkpoint.hf;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import lowbit.io.FormatException;
import lowbit.io.safetensors.SafetensorsBuilder;
import lowbit.model.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfCheckpointTest {
    @TempDir Path dir;

    static final String LLAMA = "{\"model_type\": \"llama\", \"hidden_size\": 4, \"num_attention_heads\": 2, "
            + "\"num_hidden_layers\": 1, \"intermediate_size\": 8, \"vocab_size\": 3, \"tie_word_embeddings\": true}";
    static final String OPT = "{\"model_type\": \"opt\", \"hidden_size\": 4, \"num_attention_heads\": 2, "
            + "\"num_hidden_layers\": 1, \"ffn_dim\": 8, \"vocab_size\": 3}";

    static String hex(byte[] bytes) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    }

    @Test
    void singleFile() throws Exception {
        Files.writeString(dir.resolve("config.json"), LLAMA);
        new SafetensorsBuilder()
                .f32("model.embed_tokens.weight", new long[] {3, 4}, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
                .bits16("model.norm.weight", "BF16", new long[] {4}, 0x3F80, 0x4000, 0xBF80, 0x0000)
                .write(dir.resolve("model.safetensors"));
        try (HfCheckpoint c = HfCheckpoint.open(dir)) {
            assertEquals(ModelConfig.Family.LLAMA, c.config().family());
            assertEquals(List.of("model.embed_tokens.weight", "model.norm.weight"), List.copyOf(c.tensors().keySet()));
            assertEquals("BF16", c.tensors().get("model.norm.weight").dtype());
            assertArrayEquals(new long[] {3, 4}, c.tensors().get("model.embed_tokens.weight").shape());
            assertArrayEquals(new float[] {1, 2, -1, 0}, c.floats("model.norm.weight"));
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, c.floats("model.embed_tokens.weight"));
            assertEquals(hex(Files.readAllBytes(dir.resolve("model.safetensors"))), c.sha256());
            assertEquals(dir.toString(), c.source());
            FormatException e = assertThrows(FormatException.class, () -> c.floats("lm_head.weight"));
            assertTrue(e.getMessage().contains("lm_head.weight"), e.getMessage());
        }
    }

    void writeShards() throws IOException {
        Files.writeString(dir.resolve("config.json"), LLAMA);
        new SafetensorsBuilder().f32("model.layers.0.input_layernorm.weight", new long[] {4}, 1, 1, 1, 1)
                .f32("model.embed_tokens.weight", new long[] {3, 4}, new float[12])
                .write(dir.resolve("model-00001-of-00002.safetensors"));
        new SafetensorsBuilder().f32("model.norm.weight", new long[] {4}, 0.5f, 0.25f, 2, 4)
                .f32("lm_head.weight", new long[] {3, 4}, new float[12])
                .write(dir.resolve("model-00002-of-00002.safetensors"));
    }

    static String index(String... pairs) {
        StringBuilder s = new StringBuilder("{\"metadata\": {\"total_size\": 128}, \"weight_map\": {");
        for (int i = 0; i < pairs.length; i += 2)
            s.append(i == 0 ? "" : ",").append('"').append(pairs[i]).append("\":\"").append(pairs[i + 1]).append('"');
        return s.append("}}").toString();
    }

    @Test
    void shardedWithIndex() throws Exception {
        writeShards();
        Files.writeString(dir.resolve("model.safetensors.index.json"), index(
                "lm_head.weight", "model-00002-of-00002.safetensors",
                "model.embed_tokens.weight", "model-00001-of-00002.safetensors",
                "model.layers.0.input_layernorm.weight", "model-00001-of-00002.safetensors",
                "model.norm.weight", "model-00002-of-00002.safetensors"));
        try (HfCheckpoint c = HfCheckpoint.open(dir)) {
            assertEquals(List.of("model.layers.0.input_layernorm.weight", "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"),
                    List.copyOf(c.tensors().keySet()));
            assertArrayEquals(new float[] {0.5f, 0.25f, 2, 4}, c.floats("model.norm.weight"));
            assertEquals(2, c.weightFiles().size());
            String expected = hex((hex(Files.readAllBytes(dir.resolve("model-00001-of-00002.safetensors")))
                    + hex(Files.readAllBytes(dir.resolve("model-00002-of-00002.safetensors")))).getBytes(StandardCharsets.US_ASCII));
            assertEquals(expected, c.sha256());
            assertEquals(expected, c.sha256());
        }
    }

    @Test
    void refusesMissingShard() throws IOException {
        writeShards();
        Files.writeString(dir.resolve("model.safetensors.index.json"), index(
                "model.norm.weight", "model-00002-of-00002.safetensors",
                "lm_head.weight", "model-00003-of-00003.safetensors"));
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model-00003-of-00003.safetensors") && e.getMessage().contains("missing"), e.getMessage());
    }

    @Test
    void refusesTensorAbsentFromItsShard() throws IOException {
        writeShards();
        Files.writeString(dir.resolve("model.safetensors.index.json"), index(
                "model.norm.weight", "model-00001-of-00002.safetensors"));
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("model.norm.weight") && e.getMessage().contains("model-00001-of-00002.safetensors"), e.getMessage());
        assertEquals(dir.resolve("model-00001-of-00002.safetensors"), e.file());
    }

    @Test
    void refusesIndexPointingOutsideTheDirectory() throws IOException {
        writeShards();
        Files.writeString(dir.resolve("model.safetensors.index.json"), index("model.norm.weight", "../elsewhere.safetensors"));
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("not a shard file name"), e.getMessage());
    }

    @Test
    void optNamesWithoutModelPrefixAreNormalised() throws Exception {
        Files.writeString(dir.resolve("config.json"), OPT);
        new SafetensorsBuilder()
                .f32("decoder.embed_tokens.weight", new long[] {3, 4}, new float[12])
                .f32("decoder.layers.0.fc1.bias", new long[] {8}, 1, 2, 3, 4, 5, 6, 7, 8)
                .f32("lm_head.weight", new long[] {3, 4}, new float[12])
                .write(dir.resolve("model.safetensors"));
        try (HfCheckpoint c = HfCheckpoint.open(dir)) {
            assertEquals(ModelConfig.Family.OPT, c.config().family());
            assertEquals(List.of("model.decoder.embed_tokens.weight", "model.decoder.layers.0.fc1.bias", "lm_head.weight"),
                    List.copyOf(c.tensors().keySet()));
            assertEquals("model.decoder.layers.0.fc1.bias", c.tensors().get("model.decoder.layers.0.fc1.bias").name());
            assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8}, c.floats("model.decoder.layers.0.fc1.bias"));
        }
    }

    @Test
    void optNamesWithPrefixStayAndDuplicatesAreRefused() throws Exception {
        Files.writeString(dir.resolve("config.json"), OPT);
        new SafetensorsBuilder()
                .f32("model.decoder.final_layer_norm.weight", new long[] {4}, 1, 2, 3, 4)
                .f32("decoder.final_layer_norm.weight", new long[] {4}, 1, 2, 3, 4)
                .write(dir.resolve("model.safetensors"));
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("appears twice"), e.getMessage());
    }

    @Test
    void refusesDirectoryWithoutSafetensors() throws IOException {
        Files.writeString(dir.resolve("config.json"), LLAMA);
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(e.getMessage().contains("no model.safetensors or model.safetensors.index.json"), e.getMessage());
        assertFalse(e.getMessage().contains("pytorch_model.bin"), e.getMessage());
        Files.write(dir.resolve("pytorch_model.bin"), new byte[] {0});
        FormatException hinted = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertTrue(hinted.getMessage().contains("pytorch_model.bin is not supported")
                && hinted.getMessage().contains("safe_serialization=True"), hinted.getMessage());
    }

    @Test
    void refusesMissingConfigAndNonDirectories() throws IOException {
        new SafetensorsBuilder().f32("x", new long[] {1}, 1).write(dir.resolve("model.safetensors"));
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertEquals(dir.resolve("config.json"), e.file());
        FormatException f = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir.resolve("model.safetensors")));
        assertTrue(f.getMessage().contains("not a directory"), f.getMessage());
    }

    @Test
    void corruptWeightsNameTheShard() throws IOException {
        Files.writeString(dir.resolve("config.json"), LLAMA);
        Files.write(dir.resolve("model.safetensors"), new byte[] {1, 0, 0});
        FormatException e = assertThrows(FormatException.class, () -> HfCheckpoint.open(dir));
        assertEquals(dir.resolve("model.safetensors"), e.file());
    }
}
