package lowbit.quant.awq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantizationRecipe;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;
import org.junit.jupiter.api.Test;

/** AWQ with a bits map (per-linear grids), on llama2.c's stories260K. */
class AwqBitsMapTest {
    private static final String Q1 = "model.layers.1.self_attn.q_proj", DOWN3 = "model.layers.3.mlp.down_proj";

    private static Path stories() {
        Path bin = DataDir.root().resolve("models/stories260K/stories260K.bin");
        assumeTrue(Files.exists(bin), "stories260K not in the data directory (./lowbit setup): " + bin);
        return bin;
    }

    private static int[][] windows() {
        Random r = new Random(4);
        int[][] w = new int[4][];
        for (int i = 0; i < w.length; i++) w[i] = r.ints(64, 1, 512).toArray();
        return w;
    }

    /** AWQ as the recipe runs it: the spec's grid recorded, each linear on the recipe's grid for it. */
    private static QuantizedModel awq(String spec, BitsMap map) throws Exception {
        QuantizationRecipe recipe = QuantizationRecipe.of(spec).withBitsMap(map);
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            recipe.validate(m);
            return new Awq(recipe.weightConfig(), recipe::weightConfig, recipe.awq()).quantize(m, windows(), Progress.NONE);
        }
    }

    @Test
    void aUniformMapIsPlainAwqBitForBit() throws Exception {
        QuantizedModel plain;
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            plain = new Awq(QuantizationRecipe.of("awq:w4g32").weightConfig(), Awq.Options.defaults()).quantize(m, windows(), Progress.NONE);
        }
        QuantizedModel mapped = awq("awq:w4g32", new BitsMap(null, QuantizationRecipe.of("awq:w4g32").weightConfig(), Map.of(), Map.of()));
        assertEquals(plain.weights().keySet(), mapped.weights().keySet());
        for (String l : plain.weights().keySet()) assertEquals(plain.weights().get(l), mapped.weights().get(l), l);
        assertEquals(plain.layers(), mapped.layers(), "alphas, losses and clipped fractions");
    }

    /** Every linear listed at 3 bits is AWQ at w3 everywhere: the per-linear path reaches the same answer as the uniform one. */
    @Test
    void everyLinearMappedToOneWidthIsThatUniformAwq() throws Exception {
        QuantizedModel w3;
        Map<String, Integer> all = new java.util.LinkedHashMap<>();
        try (Checkpoint c = Checkpoints.open(stories()); Transformer m = Checkpoints.load(c, 2)) {
            for (int l = 0; l < m.config().numLayers(); l++) for (Linear lin : m.blockLinears(l)) all.put(lin.name(), 3);
            w3 = new Awq(QuantizationRecipe.of("awq:w3g32").weightConfig(), Awq.Options.defaults()).quantize(m, windows(), Progress.NONE);
        }
        QuantizedModel mapped = awq("awq:w4g32", new BitsMap(null, QuantizationRecipe.of("awq:w4g32").weightConfig(), all, Map.of()));
        for (String l : w3.weights().keySet()) assertEquals(w3.weights().get(l), mapped.weights().get(l), l);
    }

    @Test
    void twoMappedLinearsChangeExactlyTheirWidths() throws Exception {
        QuantizedModel plain = awq("awq:w4g32", null);
        QuantizedModel mapped = awq("awq:w4g32", new BitsMap(null, QuantizationRecipe.of("awq:w4g32").weightConfig(), Map.of(Q1, 2, DOWN3, 8), Map.of()));
        for (String l : plain.weights().keySet()) {
            int expected = l.equals(Q1) ? 2 : l.equals(DOWN3) ? 8 : 4;
            assertEquals(expected, ((QuantizedWeight) mapped.weights().get(l)).config().bits(), l);
            assertEquals(4, ((QuantizedWeight) plain.weights().get(l)).config().bits(), l);
        }
        assertNotEquals(plain.weights().get(Q1), mapped.weights().get(Q1));
        // q, k, v share one scale search: k_proj's scales were chosen with q_proj at 2 bits
        assertEquals(4, ((QuantizedWeight) mapped.weights().get("model.layers.1.self_attn.k_proj")).config().bits());
        assertEquals(plain.weights().get("model.layers.0.self_attn.q_proj"), mapped.weights().get("model.layers.0.self_attn.q_proj"),
                "a block the map does not touch is quantized as without it");
    }
}
