package lowbit.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Path;
import lowbit.eval.Evaluator;
import lowbit.eval.Perplexity;
import lowbit.quant.QuantizationRecipe;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A notebook's model evaluates through the same runner as ppl and studies. */
class ModelTest {

    @Test
    void perplexityAppliesTheProtocolCapAndKlDivergenceFollowsQuantization(@TempDir Path cache) {
        assumeTrue(Model.available("stories260K"), "stories260K not in the data directory (./lowbit setup)");
        try (Model m = Model.load("stories260K")) {
            Perplexity.Result c4 = m.perplexity("c4-train-slice", 16, 0);
            assertEquals(256, c4.windows(), "the c4-train-slice cap, as ./lowbit ppl applies it");
            Evaluator.Report fp = m.evaluate("wikitext2", 64, 3, cache);
            assertNull(fp.kld(), "the float model writes the reference");
            m.quantize(QuantizationRecipe.of("rtn:w3"));
            Evaluator.Report q = m.evaluate("wikitext2", 64, 3, cache);
            assertTrue(q.kld().mean() > 0, q.kld().toString());
            assertEquals(fp.ppl(), q.kld().pplFloat(), 1e-4 * fp.ppl());
            assertEquals("rtn:w3", ((java.util.Map<?, ?>) q.fields().get("quantization")).get("spec"));
            assertThrows(IllegalStateException.class, () -> m.quantize(QuantizationRecipe.of("rtn:w4")));
        }
    }
}
