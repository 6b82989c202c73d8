package lowbit.quant.awq;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.List;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * AWQ on block 0 of the tiny Llama and OPT checkpoints against the float64 port of llm-awq in
 * environment/fixtures/awq_reference.py (fixtures and their semantics: src/test/resources/awq/README.md):
 * the same alpha per scaling group, the same statistics, losses and scales to float precision, the same
 * clip per (row, group), and a quantized block output as close to the float one as the reference's.
 */
class AwqReferenceTest {
    record Fixture(JsonNode json, ByteBuffer bin) {
        double[] f64(String name) {
            JsonNode a = json.get("arrays").get(name);
            assertNotNull(a, "fixture array " + name);
            long n = 1;
            for (JsonNode d : a.get("shape")) n *= d.asLong();
            double[] out = new double[(int) n];
            bin.duplicate().order(ByteOrder.LITTLE_ENDIAN).position(a.get("offset").asInt()).slice().order(ByteOrder.LITTLE_ENDIAN)
                    .asDoubleBuffer().get(out);
            return out;
        }
    }

    static Fixture fixture(String family) throws Exception {
        try (InputStream j = AwqReferenceTest.class.getResourceAsStream("/awq/" + family + ".json");
             InputStream b = AwqReferenceTest.class.getResourceAsStream("/awq/" + family + ".bin")) {
            return new Fixture(new ObjectMapper().readTree(j), ByteBuffer.wrap(b.readAllBytes()));
        }
    }

    private static void close(double[] ref, float[] ours, double relTol, String what) {
        double scale = 0;
        for (double v : ref) scale = Math.max(scale, Math.abs(v));
        for (int i = 0; i < ref.length; i++)
            assertEquals(ref[i], ours[i], relTol * scale, what + "[" + i + "]");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "opt"})
    void blockZeroMatchesTheReference(String family) throws Exception {
        Fixture f = fixture(family);
        JsonNode block = f.json().get("blocks").get(0);
        int windows = f.json().get("input_ids").size(), T = f.json().get("input_ids").get(0).size();
        double[] in = f.f64(block.get("input").asText());
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/" + family).toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int h = model.config().hiddenSize();
            float[][] x = new float[windows][T * h];
            for (int w = 0; w < windows; w++) for (int i = 0; i < T * h; i++) x[w][i] = (float) in[w * T * h + i];
            QuantConfig cfg = QuantConfig.group(f.json().get("w_bit").asInt(), f.json().get("q_group_size").asInt())
                    .withScaleFormat(QuantConfig.ScaleFormat.F32)   // the reference keeps full-precision scales
                    .withZeroPoint(QuantConfig.ZeroPoint.AWQ);
            Awq awq = new Awq(cfg, Awq.Options.defaults());

            List<Awq.ScaleGroup> groups = Awq.scaleGroups(model, 0);
            JsonNode refGroups = block.get("scale_groups");
            assertEquals(refGroups.size(), groups.size(), "scaling groups (v -> o only when shapes match)");

            Awq.BlockResult r = awq.quantizeBlock(model, 0, x, T);
            for (int g = 0; g < groups.size(); g++) {
                JsonNode ref = refGroups.get(g);
                Awq.Choice c = r.choices().get(g);
                assertEquals(ref.get("best_ratio").asDouble(), c.alpha(), 1e-12, family + " " + c.group());
                close(f.f64(ref.get("losses").asText()), toFloat(c.losses()), 2e-4, family + " " + c.group() + " losses");
                close(f.f64(ref.get("scales").asText()), c.scales(), 2e-5, family + " " + c.group() + " scales");
            }
            JsonNode clips = block.get("clip");
            int g = cfg.groupSize();
            for (JsonNode clip : clips) {
                String name = "model." + (family.equals("opt") ? "decoder." : "") + "layers.0." + clip.get("layer").asText();
                Awq.Clip ours = r.clipMax().get(name);
                assertNotNull(ours, "clip of " + name);
                // When a shrink clamps both ends of a group, the grid's zero is -min/scale = 7.5 exactly: a tie
                // that float32 weights (ours) and float64 weights (the fixture) break differently. Every
                // differing choice must be such a tie: our scaled weights, clamped at either choice, are
                // symmetric. All other choices agree.
                double[] ref = f.f64(clip.get("max_val").asText());
                float[] w = r.scaledWeights().get(name);
                int perRow = model.linear(name).inFeatures() / g;
                int width = model.linear(name).inFeatures(), differ = 0;
                for (int i = 0; i < ref.length; i++) {
                    if (Math.abs(ref[i] - ours.max()[i]) <= 1e-5 * Math.abs(ref[i])) continue;
                    differ++;
                    int row = i / perRow, c0 = (i % perRow) * g;
                    double lo = Double.MAX_VALUE, hi = -Double.MAX_VALUE;
                    for (int c = c0; c < c0 + g; c++) {
                        lo = Math.min(lo, w[row * width + c]);
                        hi = Math.max(hi, w[row * width + c]);
                    }
                    double m = Math.min(ref[i], ours.max()[i]);
                    assertTrue(lo <= -m * (1 - 1e-6) && hi >= m * (1 - 1e-6),
                            name + " (row " + row + ", group " + i % perRow + "): " + ours.max()[i] + " vs " + ref[i] + " is not a tie");
                }
                assertTrue(differ <= ref.length / 10, name + ": " + differ + " of " + ref.length + " clip choices differ");
            }
            assertEquals(clips.size(), r.clipMax().size(), "q and k are not clipped");

            // The quantized block's output: as far from the float output as the reference's. The ties above
            // also decide zero points in the final quantization, so the MSE agrees to 10%, not exactly.
            double mse = 0;
            double[] floatOut = f.f64(block.get("float_output").asText());
            for (int w = 0; w < windows; w++) {
                float[] y = x[w].clone();
                model.block(0, y, T);
                for (int i = 0; i < y.length; i++) mse += Math.pow(y[i] - floatOut[w * T * h + i], 2);
            }
            mse /= (double) windows * T * h;
            assertEquals(block.get("quantized_output_mse").asDouble(), mse, 0.1 * mse);
            assertTrue(mse < block.get("rtn_output_mse").asDouble(), "AWQ beats RTN on this block");
        }
    }

    @org.junit.jupiter.api.Test
    void duoScalingMatchesAutoAwq() throws Exception {
        Fixture f = fixture("llama");
        JsonNode block = f.json().get("blocks").get(0), duo = block.get("duo_scaling");
        int windows = f.json().get("input_ids").size(), T = f.json().get("input_ids").get(0).size();
        double[] in = f.f64(block.get("input").asText());
        Path dir = Path.of(getClass().getClassLoader().getResource("tiny/llama").toURI());
        try (Checkpoint ckpt = Checkpoints.open(dir); Transformer model = Checkpoints.load(ckpt, 1)) {
            int h = model.config().hiddenSize();
            float[][] x = new float[windows][T * h];
            for (int w = 0; w < windows; w++) for (int i = 0; i < T * h; i++) x[w][i] = (float) in[w * T * h + i];
            Awq awq = new Awq(QuantConfig.group(4, 16).withScaleFormat(QuantConfig.ScaleFormat.F32).withZeroPoint(QuantConfig.ZeroPoint.AWQ), Awq.Options.defaults().withDuoScaling(true));
            BlockActivations act = BlockActivations.capture(model, 0, x, T);
            Awq.ScaleGroup mlp = Awq.scaleGroups(model, 0).stream().filter(s -> s.name().equals("mlp_in")).findFirst().orElseThrow();
            close(f.f64(duo.get("w_mean").asText()), awq.weightMean(mlp.consumers()), 1e-6, "w_mean");
            Awq.Choice c = awq.search(model, 0, mlp, act, T);
            assertEquals(duo.get("best_ratio").asDouble(), c.alpha(), 1e-12);
            close(f.f64(duo.get("scales").asText()), c.scales(), 2e-5, "duo scales");
        }
    }

    private static float[] toFloat(double[] d) {
        float[] f = new float[d.length];
        for (int i = 0; i < d.length; i++) f[i] = (float) d[i];
        return f;
    }
}
