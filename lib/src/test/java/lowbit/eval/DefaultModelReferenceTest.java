package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The default model (SmolLM2-135M-Instruct Q4_1 GGUF) end to end against transformers fp32 on the same
 * file: tokenization, log-probs, and perplexity slices under the GPTQ protocol.
 * Reference: resources/reference/smollm2-wikitext2.json from environment/fixtures/make_default_model_reference.py.
 */
class DefaultModelReferenceTest {
    private static JsonNode ref;
    private static Checkpoint ckpt;
    private static Transformer model;
    private static int[] ids;

    @BeforeAll
    static void load() throws Exception {
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded (./lowbit setup): " + gguf);
        ref = new ObjectMapper().readTree(DefaultModelReferenceTest.class.getResourceAsStream("/reference/smollm2-wikitext2.json"));
        ckpt = Checkpoints.open(gguf);
        model = Checkpoints.load(ckpt);
        ids = ckpt.tokenizer().encodeWithSpecials(TextDatasets.load("wikitext2").text());
    }

    @AfterAll
    static void close() {
        if (model != null) model.close();
        if (ckpt != null) ckpt.close();
    }

    @Test
    void sameBitsOnAnyThreadCountAndBeforeAndAfterTheJitWarmsUp() {
        int[] window = Arrays.copyOf(ids, 256);
        try (Checkpoint fresh = Checkpoints.open(DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf"));
             Transformer oneThread = Checkpoints.load(fresh, 1)) {
            // when this test runs first in the JVM, the first pass runs partly interpreted and the last one compiled
            double[] cold = oneThread.nll(window);
            for (int i = 0; i < 3; i++) oneThread.nll(Arrays.copyOfRange(ids, 256 * (i + 1), 256 * (i + 2)));
            assertArrayEquals(cold, oneThread.nll(window));
            assertArrayEquals(cold, model.nll(window), "1 thread vs " + model.threads());
        }
    }

    @Test
    void identifiesTheModelAndTokenizesLikeTheReference() {
        assertEquals(ref.get("model_sha256").asText(), ckpt.sha256());
        assertEquals(ref.get("total_tokens").asInt(), ids.length);
        int[] first = new int[ref.get("first_tokens").size()];
        for (int i = 0; i < first.length; i++) first[i] = ref.get("first_tokens").get(i).asInt();
        assertArrayEquals(first, Arrays.copyOf(ids, first.length));
    }

    @Test
    void logProbsOfTheFirstPositionsMatch() {
        float[][] lp = model.logProbs(Arrays.copyOf(ids, 2048));
        for (JsonNode pos : ref.get("window0_top5")) {
            int p = pos.get("position").asInt();
            assertEquals(pos.get("next_token_logprob").asDouble(), lp[p][pos.get("next_token").asInt()], 1e-3, "position " + p);
            for (int k = 0; k < 5; k++)
                assertEquals(pos.get("top5_logprobs").get(k).asDouble(), lp[p][pos.get("top5_ids").get(k).asInt()], 1e-3,
                        "position " + p + " top-" + (k + 1));
        }
    }

    @Test
    void perplexitySlicesMatchTransformers() {
        for (String slice : new String[]{"seqlen256", "seqlen2048"}) {
            JsonNode s = ref.get(slice);
            int seqlen = s.get("seqlen").asInt();
            Perplexity.Result r = Perplexity.evaluate(model, ids, seqlen, s.get("windows").asInt(), Progress.NONE);
            assertEquals(s.get("predicted_tokens").asLong(), r.predicted());
            // summed over thousands of tokens: fp32 rounding differences stay far below 0.01 nats per window
            assertEquals(s.get("nll_sum").asDouble(), r.nllSum(), 0.01 * r.windows(), slice + " NLL sum");
            assertEquals(s.get("ppl").asDouble(), r.ppl(), 1e-4 * s.get("ppl").asDouble(), slice + " ppl");
        }
    }
}
