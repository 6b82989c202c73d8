package lowbit.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Arrays;
import lowbit.calibration.CalibrationSampler.Mode;
import lowbit.calibration.CalibrationSet.Draw;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.io.Hashing;
import lowbit.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

/** The shipped C4 slice under the default model's tokenizer, against environment/fixtures/make_calibration_fixtures.py. */
class CalibrationSamplerC4Test {

    private static String digest(int[]... rows) {
        ByteBuffer b = ByteBuffer.allocate(Arrays.stream(rows).mapToInt(r -> r.length).sum() * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int[] r : rows) for (int id : r) b.putInt(id);
        return Hashing.sha256(b.array());
    }

    @Test
    void gptqProtocolOnTheC4SliceWithTheDefaultTokenizer() throws Exception {
        JsonNode ref = new ObjectMapper().readTree(Path.of(getClass().getResource("/calibration/c4_smollm2.json").toURI()).toFile());
        try (Checkpoint ckpt = Checkpoints.open(DataDir.defaultModel())) {
            Tokenizer tok = Checkpoints.tokenizer(ckpt);
            Documents c4 = Documents.load("c4");
            CalibrationSampler s = CalibrationSampler.of(tok).documents(c4);

            int[] counts = s.documentTokenCounts();
            int[] expected = new int[ref.path("counts").size()];
            for (int i = 0; i < expected.length; i++) expected[i] = ref.path("counts").get(i).asInt();
            assertEquals(1000, counts.length);
            assertArrayEquals(expected, counts, "token count of every document");
            int[][] all = c4.texts().stream().map(tok::encodeWithSpecials).toArray(int[][]::new);
            assertEquals(ref.path("all_documents_sha256").asText(), digest(all), "ids of every document");
            for (int seqlen : new int[] {2048, 1024, 512})
                assertEquals(ref.path("eligible").path(String.valueOf(seqlen)).asInt(), s.eligibleDocuments(seqlen), "eligible at " + seqlen);
            // the numbers the README quotes
            assertEquals(32, s.eligibleDocuments(2048));
            assertEquals(111, s.eligibleDocuments(1024));
            assertEquals(282, s.eligibleDocuments(512));

            CalibrationSet set = s.sample(); // the defaults: 128 x 2048, seed 0
            assertEquals("c4-train-slice", set.source());
            assertEquals(ref.path("source_sha256").asText(), set.sourceSha256());
            assertEquals(128, set.nsamples());
            assertEquals(2048, set.seqlen());
            assertEquals(32, set.eligibleDocuments());
            assertEquals(ref.path("counts").size(), set.documents());
            long total = Arrays.stream(expected).asLongStream().sum();
            assertEquals(total, set.sourceTokens());
            for (int i = 0; i < set.nsamples(); i++) {
                Draw d = set.draws().get(i);
                assertTrue(expected[d.document()] > 2048);
                assertTrue(d.offset() <= expected[d.document()] - 2048 - 1);
                int[] doc = all[d.document()];
                assertArrayEquals(Arrays.copyOfRange(doc, d.offset(), d.offset() + 2048), set.windows()[i], "window " + i);
            }

            CalibrationSet cat = s.mode(Mode.CONCATENATED).nsamples(8).seqlen(512).sample();
            assertEquals(ref.path("stream_tokens").asLong(), cat.sourceTokens());
            int[] stream = tok.encodeWithSpecials(String.join("\n\n", c4.texts()));
            assertEquals(ref.path("stream_sha256").asText(), digest(stream));
            for (int i = 0; i < cat.nsamples(); i++) {
                int off = cat.draws().get(i).offset();
                assertArrayEquals(Arrays.copyOfRange(stream, off, off + 512), cat.windows()[i]);
            }
        }
    }
}
