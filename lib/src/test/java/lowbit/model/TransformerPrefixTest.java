package lowbit.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.MemoryCheckpoint;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * A context run once and continuations scored after its kept keys and values, against transformers' golden
 * log-probs of the tiny checkpoints (resources/tiny/README.md): when context + continuation is a prefix of a golden
 * window, each continuation token's log-prob is the golden row's entry for it, and its argmax flag says whether the
 * golden argmax is that token.
 */
class TransformerPrefixTest {
    private static final double TOLERANCE = 1e-4;  // transformers' eager fp32 against ours, as TransformerParityTest

    @ParameterizedTest
    @ValueSource(strings = {"llama", "llama-tied-bf16", "smollm-like-f16", "qwen2", "qwen3", "opt", "opt-350m-style"})
    void continuationsAfterAPrefixMatchTransformers(String name) throws Exception {
        Path dir = TransformerParityTest.resource("tiny/" + name);
        JsonNode expected = new ObjectMapper().readTree(dir.resolve("expected.json").toFile());
        int vocab = expected.at("/config/vocabSize").asInt();
        float[] golden = readFloats(dir.resolve(expected.get("logprobs_file").asText()));
        int checked = 0;
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 2)) {
            for (int w = 0; w < 2; w++) {
                JsonNode window = expected.get("input_ids").get(w);
                int[] ids = new int[window.size()];
                for (int i = 0; i < ids.length; i++) ids[i] = window.get(i).asInt();
                for (int c : new int[]{1, 6, 13}) {
                    Transformer.Prefix prefix = model.prefix(Arrays.copyOf(ids, c));
                    assertEquals(c, prefix.length());
                    int[] tail = Arrays.copyOfRange(ids, c, ids.length);
                    // a continuation that is no golden window's sits in the middle: segments must not see each other
                    int[] stranger = {(ids[0] + 1) % vocab, (ids[1] + 7) % vocab, (ids[2] + 3) % vocab};
                    List<int[]> conts = List.of(tail, Arrays.copyOf(tail, 1), stranger, Arrays.copyOf(tail, 3));
                    List<Transformer.TokenLogProbs> scored = model.continuationLogProbs(prefix, conts);
                    List<Transformer.TokenLogProbs> onePass = model.continuationLogProbs(Arrays.copyOf(ids, c), conts);
                    assertEquals(conts.size(), scored.size());
                    for (int k = 0; k < conts.size(); k++) {
                        // kept keys and values, or the context's rows beside the continuations' in one pass: the same
                        assertArrayEquals(scored.get(k).logProbs(), onePass.get(k).logProbs(), 1e-6f);
                        assertArrayEquals(scored.get(k).argmax(), onePass.get(k).argmax());
                    }
                    for (int k : new int[]{0, 1, 3}) {
                        int[] cont = conts.get(k);
                        Transformer.TokenLogProbs s = scored.get(k);
                        assertEquals(cont.length, s.logProbs().length);
                        for (int i = 0; i < cont.length; i++) {
                            int position = c - 1 + i;
                            float want = golden[(w * ids.length + position) * vocab + cont[i]];
                            String where = name + " window " + w + " context " + c + " continuation " + k + " token " + i;
                            assertEquals(want, s.logProbs()[i], TOLERANCE, where);
                            assertEquals(expected.get("argmax").get(w).get(position).asInt() == cont[i], s.argmax()[i], where);
                            checked++;
                        }
                    }
                }
            }
        }
        assertEquals(2 * ((16 - 1 + 1 + 3) + (16 - 6 + 1 + 3) + (16 - 13 + 1 + 3)), checked);
    }

    @Test
    void hooksSeeTheBatchedRowsAndKeysOfTheNewRowsOnly() throws Exception {
        try (Transformer m = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 11), 2)) {
            int[] context = {1, 17, 42, 5, 88};
            List<int[]> conts = List.of(new int[]{3, 64, 12}, new int[]{9}, new int[]{71, 2, 50, 8});
            List<String> linearRows = new ArrayList<>();
            List<Integer> kvRows = new ArrayList<>();
            ForwardHook hook = new ForwardHook() {
                @Override
                public void linearInput(Linear linear, float[] x, int rows) {
                    linearRows.add(linear.module() + ":" + rows);
                }

                @Override
                public void keyValue(int layer, float[] keys, float[] values, int rows) {
                    assertEquals(rows * m.config().kvDim(), keys.length);
                    kvRows.add(rows);
                }
            };
            Transformer.Prefix prefix;
            try (AutoCloseable h = m.addHook(hook)) {
                prefix = m.prefix(context);
                // the context's rows through the blocks; lm_head on its last position only
                assertEquals(List.of(5, 5), kvRows);
                assertEquals("q_proj:5", linearRows.get(0));
                assertEquals("lm_head:1", linearRows.get(linearRows.size() - 1));
                assertEquals(2 * 7 + 1, linearRows.size());
                linearRows.clear();
                kvRows.clear();
                m.continuationLogProbs(prefix, conts);
            }
            // 2 + 0 + 3 rows: each continuation without its last token, all continuations in one matrix product
            assertEquals(List.of(5, 5), kvRows);
            assertEquals(2 * 7 + 1, linearRows.size());
            assertTrue(linearRows.stream().allMatch(r -> r.endsWith(":5")), linearRows.toString());

            // in one pass: the context's 5 rows and the continuations' 5 below them; lm_head on the context's last and those 5
            linearRows.clear();
            kvRows.clear();
            try (AutoCloseable h = m.addHook(hook)) {
                m.continuationLogProbs(context, conts);
            }
            assertEquals(List.of(10, 10), kvRows);
            assertEquals(2 * 7 + 1, linearRows.size());
            assertTrue(linearRows.subList(0, 14).stream().allMatch(r -> r.endsWith(":10")), linearRows.toString());
            assertEquals("lm_head:6", linearRows.get(14));
        }
    }

    @Test
    void continuationsThatBeginAlikeShareThoseRows() throws Exception {
        try (Transformer m = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 15), 2)) {
            int[] context = {7, 1, 30, 2};
            List<int[]> conts = List.of(new int[]{3, 64, 12, 7}, new int[]{3, 64, 91}, new int[]{3, 64, 12, 7},
                    new int[]{3, 5, 6}, new int[]{3, 64, 12, 7, 40, 41});
            int[] rows = {0};
            ForwardHook hook = new ForwardHook() {
                @Override
                public void keyValue(int layer, float[] keys, float[] values, int n) {
                    if (layer == 0) rows[0] = n;
                }
            };
            List<Transformer.TokenLogProbs> together;
            try (AutoCloseable h = m.addHook(hook)) {
                together = m.continuationLogProbs(m.prefix(context), conts);
            }
            // inputs 3 64 12 | 3 64 (shared) | 3 64 12 (shared) | 3 5: one new row | 3 64 12 7 40: two new rows
            assertEquals(3 + 0 + 0 + 1 + 2, rows[0]);
            for (int c = 0; c < conts.size(); c++) {
                Transformer.TokenLogProbs alone = m.continuationLogProbs(context, List.of(conts.get(c))).get(0);
                assertArrayEquals(alone.logProbs(), together.get(c).logProbs(), 1e-6f, "continuation " + c);
                assertArrayEquals(alone.argmax(), together.get(c).argmax(), "continuation " + c);
            }
        }
    }

    @Test
    void continuationsOfOneTokenNeedNoForwardPass() {
        try (Transformer m = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 12), 1)) {
            int[] context = {4, 8, 15, 16, 23, 42};
            float[][] full = m.logProbs(context);
            float[] last = full[context.length - 1];
            int best = 0;
            for (int j = 1; j < last.length; j++) if (last[j] > last[best]) best = j;
            List<Transformer.TokenLogProbs> s = m.continuationLogProbs(m.prefix(context),
                    List.of(new int[]{best}, new int[]{(best + 1) % last.length}));
            assertEquals(last[best], s.get(0).logProbs()[0], 1e-6);
            assertTrue(s.get(0).argmax()[0]);
            assertEquals(last[(best + 1) % last.length], s.get(1).logProbs()[0], 1e-6);
            assertEquals(false, s.get(1).argmax()[0]);
        }
    }

    @Test
    void sameNumbersOnAnyThreadCount() {
        MemoryCheckpoint ckpt = new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 13);
        int[] context = {1, 17, 42, 5, 88, 3, 64, 12, 33, 9, 71, 2, 50, 8, 19, 90, 4, 27, 61};
        List<int[]> conts = List.of(new int[]{13, 5, 77, 2, 9, 31, 40, 6, 18, 95, 3, 3, 60, 21, 7, 7, 8, 1},
                new int[]{2, 4}, new int[]{66});
        try (Transformer one = Checkpoints.load(ckpt, 1); Transformer three = Checkpoints.load(ckpt, 3)) {
            List<Transformer.TokenLogProbs> a = one.continuationLogProbs(one.prefix(context), conts);
            List<Transformer.TokenLogProbs> b = three.continuationLogProbs(three.prefix(context), conts);
            for (int c = 0; c < conts.size(); c++) {
                assertArrayEquals(a.get(c).logProbs(), b.get(c).logProbs(), "continuation " + c);
                assertArrayEquals(a.get(c).argmax(), b.get(c).argmax(), "continuation " + c);
            }
        }
    }

    @Test
    void badRequestsAreRefusedWithTheReason() throws Exception {
        try (Checkpoint ckpt = Checkpoints.open(TransformerParityTest.resource("tiny/opt")); Transformer opt = Checkpoints.load(ckpt, 1);
             Transformer other = Checkpoints.load(new MemoryCheckpoint(MemoryCheckpoint.smallLlama(), 14), 1)) {
            assertEquals(64, opt.config().maxPositions());
            Transformer.Prefix p = opt.prefix(new int[60]);
            // 60 + 5 - 1 = 64 input positions fit OPT's table; one more does not
            opt.continuationLogProbs(p, List.of(new int[5]));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> opt.continuationLogProbs(p, List.of(new int[2], new int[6])));
            assertTrue(e.getMessage().contains("continuation 1") && e.getMessage().contains("65 positions")
                    && e.getMessage().contains("64 learned positions"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> opt.prefix(new int[65]));
            assertTrue(e.getMessage().contains("64 learned positions"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> opt.prefix(new int[0]));
            assertTrue(e.getMessage().contains("at least one context token"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> opt.continuationLogProbs(p, List.of(new int[1], new int[0])));
            assertTrue(e.getMessage().contains("continuation 1 has no tokens"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> opt.continuationLogProbs(p, List.of(new int[]{1, 128})));
            assertTrue(e.getMessage().contains("token id 128") && e.getMessage().contains("vocabulary of 128"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> other.continuationLogProbs(p, List.of(new int[]{1})));
            assertTrue(e.getMessage().contains("another model"), e.getMessage());
        }
    }

    private static float[] readFloats(Path file) throws Exception {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }
}
