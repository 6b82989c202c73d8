package lowbit.quant.gptq;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.Arrays;
import java.util.List;
import lowbit.quant.QuantConfig.ScaleFormat;
import lowbit.quant.QuantConfig.ZeroPoint;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.Rtn;
import lowbit.tensor.Parallel;
import lowbit.testing.Fixtures;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;

/**
 * Our GPTQ against the float64 PyTorch port of gptq.py in environment/fixtures/gptq_reference.py
 * (fixtures in src/test/resources/gptq, see its README): same codes, scales, zeros and loss.
 */
class GptqReferenceTest {
    static final int ROWS = 16, COLS = 160, TOKENS = 256;

    static byte[] resource(String name) throws IOException {
        return Fixtures.bytes("/gptq/" + name);
    }

    static float[] f32(String name) throws IOException {
        return Fixtures.floats("/gptq/" + name);
    }

    static double[] f64(String name) throws IOException {
        return Fixtures.doubles("/gptq/" + name);
    }

    @Test
    void hessianIsTheRunningAverageOverSequences() throws IOException {
        float[] x = f32("X.f32");
        double[] ref = f64("H.f64");
        Gptq g = new Gptq(COLS);
        try (Parallel par = new Parallel(2)) {
            g.addBatch(Arrays.copyOfRange(x, 0, 128 * COLS), 128, par);
            g.addBatch(Arrays.copyOfRange(x, 128 * COLS, 256 * COLS), 128, par);
        }
        assertEquals(2, g.samples());
        double maxDiag = 0;
        for (int i = 0; i < COLS; i++) maxDiag = Math.max(maxDiag, ref[i * COLS + i]);
        for (int i = 0; i < ref.length; i++)
            assertEquals(ref[i], g.hessian()[i], 2e-6 * maxDiag, "H[" + i / COLS + "][" + i % COLS + "]");
        assertEquals(0.0, g.hessian()[37 * COLS + 37], "column 37 of X is all zeros");
    }

    @ParameterizedTest
    @ValueSource(strings = {"w4_channel_asym", "w3_g32_asym", "w4_g32_actorder", "w4_g32_actorder_static", "w4_g48_asym",
            "w2_g32_sym", "w3_channel_sym_mse", "w8_channel_asym"})
    void matchesTheReference(String name) throws IOException {
        JsonNode c = new ObjectMapper().readTree(resource(name + ".json"));
        JsonNode conf = c.get("config");
        QuantConfig cfg = new QuantConfig(conf.get("bits").asInt(), conf.get("sym").asBoolean(), conf.get("groupsize").asInt(),
                ZeroPoint.INTEGER, ScaleFormat.F32, conf.get("mse").asBoolean());
        Gptq.Options opt = new Gptq.Options(conf.get("percdamp").asDouble(), conf.get("blocksize").asInt(),
                conf.get("actorder").asBoolean(), conf.get("static_groups").asBoolean());
        float[] w = f32("W.f32");
        Gptq.Result res;
        try (Parallel par = new Parallel(2)) {
            res = Gptq.fromHessian(f64("H.f64"), COLS, 2).quantize("fixture." + name, w, ROWS, cfg, opt, par);
        }
        QuantizedWeight q = res.weight();

        byte[] codes = resource(name + ".codes.u8");
        assertArrayEquals(codes, q.codes(), "codes");
        int[] columnGroup = new int[COLS];
        for (int col = 0; col < COLS; col++) {
            columnGroup[col] = c.get("column_group").get(col).asInt();
            assertEquals(columnGroup[col], q.group(col), "group of column " + col);
        }
        double[] scales = f64(name + ".scales.f64"), zeros = f64(name + ".zeros.f64");
        assertEquals(scales.length, q.scales().length);
        for (int i = 0; i < scales.length; i++) {
            assertEquals(scales[i], q.scales()[i], 1e-12 * Math.abs(scales[i]), "scale " + i);
            if (!cfg.symmetric()) assertEquals(zeros[i], q.zeros()[i], "zero " + i);
            else assertEquals((cfg.maxq() + 1) / 2, zeros[i]);
        }
        double[] ref = f64(name + ".Q.f64");
        float[] deq = q.dequantize();
        for (int i = 0; i < ref.length; i++) assertEquals((float) ref[i], deq[i], "Q[" + i / COLS + "][" + i % COLS + "]");
        assertEquals(c.get("loss").asDouble(), res.loss(), 1e-9 * c.get("loss").asDouble(), "loss");
        assertEquals(1, res.deadColumns());
        assertEquals(1, res.dampAttempts());

        // GPTQ's output error is below round-to-nearest's on the same grid, and both agree with the reference.
        float[] x = f32("X.f32");
        QuantizedWeight rtn = Rtn.quantize("fixture", w, ROWS, COLS, cfg);
        double gptqErr = outputError(x, w, deq), rtnErr = outputError(x, w, rtn.dequantize());
        assertEquals(c.get("gptq_error").asDouble(), gptqErr, 1e-6 * gptqErr);
        assertEquals(c.get("rtn_error").asDouble(), rtnErr, 1e-6 * rtnErr);
        assertTrue(gptqErr < rtnErr, "GPTQ " + gptqErr + " vs RTN " + rtnErr);
    }

    static double outputError(float[] x, float[] w, float[] q) {
        double e = 0;
        for (int t = 0; t < TOKENS; t++)
            for (int r = 0; r < ROWS; r++) {
                double a = 0, b = 0;
                for (int k = 0; k < COLS; k++) {
                    a += (double) x[t * COLS + k] * w[r * COLS + k];
                    b += (double) x[t * COLS + k] * q[r * COLS + k];
                }
                e += (a - b) * (a - b);
            }
        return e;
    }

    @Test
    void sameResultOnAnyThreadCount() throws IOException {
        QuantConfig cfg = QuantConfig.group(3, 32);
        Gptq.Options opt = Gptq.Options.defaults().withActOrder(true).withBlockSize(64);
        List<QuantizedWeight> results = new java.util.ArrayList<>();
        for (int threads : new int[] {1, 2, 3}) {
            try (Parallel par = new Parallel(threads)) {
                results.add(Gptq.fromHessian(f64("H.f64"), COLS, 2).quantize("w", f32("W.f32"), ROWS, cfg, opt, par).weight());
            }
        }
        assertEquals(results.get(0), results.get(1));
        assertEquals(results.get(0), results.get(2));
    }

    @Test
    void dampingIsRaisedWhenCholeskyFails() throws IOException {
        // A rank-1 H (one repeated input direction) with no damping cannot be factorized.
        int n = 8;
        float[] x = new float[4 * n];
        for (int t = 0; t < 4; t++) for (int k = 0; k < n; k++) x[t * n + k] = (t + 1) * (k + 1);
        Gptq g = new Gptq(n);
        try (Parallel par = new Parallel(1)) {
            g.addBatch(x, 4, par);
            float[] w = new float[2 * n];
            for (int i = 0; i < w.length; i++) w[i] = (float) Math.sin(i);
            Gptq.Result r = g.quantize("rank1", w, 2, QuantConfig.perChannel(4), Gptq.Options.defaults().withPercdamp(0), par);
            assertTrue(r.dampAttempts() > 1);
            assertTrue(r.percdamp() > 0);
        }
    }
}
