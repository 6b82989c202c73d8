package lowbit.quant.billm;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import lowbit.calibration.Hessian;
import lowbit.quant.BitPacking;
import lowbit.quant.QuantConfig;
import lowbit.tensor.Parallel;
import lowbit.testing.Fixtures;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Our BiLLM against the float64 PyTorch port of the reference (bigptq.py, binary.py, utils/) in
 * environment/fixtures/make_billm_golden.py; fixtures in src/test/resources/billm (see its README): the same salient
 * columns and searched count, break points, concentrated/sparse masks and signs exactly, means, scales and the
 * binarized weights to 1e-6 (ours are stored as float32 here, the reference's are float64).
 */
class BillmReferenceTest {
    static byte[] resource(String name) throws IOException {
        return Fixtures.bytes("/billm/" + name);
    }

    static float[] f32(String name) throws IOException {
        return Fixtures.floats("/billm/" + name);
    }

    static double[] f64(String name) throws IOException {
        return Fixtures.doubles("/billm/" + name);
    }

    /**
     * The fixture's H, as the reference's add_batch builds it over the sequences of X, in double (our Hessian
     * accumulates Gram products in float32 tiles, 1e-7 relative, enough to move a quantile between neighbours).
     */
    static Hessian hessian(JsonNode meta, float[] x) {
        int cols = meta.get("columns").asInt(), tokens = meta.get("tokens").asInt(), seqs = meta.get("sequences").asInt();
        int per = tokens / seqs;
        double[] h = new double[cols * cols], v = new double[per * cols];
        for (int s = 0; s < seqs; s++) {
            for (int i = 0; i < h.length; i++) h[i] *= (double) s / (s + 1);
            double f = Math.sqrt(2.0 / (s + 1));
            for (int i = 0; i < v.length; i++) v[i] = f * x[s * per * cols + i];
            for (int a = 0; a < cols; a++)
                for (int b = 0; b < cols; b++) {
                    double dot = 0;
                    for (int t = 0; t < per; t++) dot += v[t * cols + a] * v[t * cols + b];
                    h[a * cols + b] += dot;
                }
        }
        return Hessian.of(h, cols, seqs);
    }

    static Billm.Result run(String name, int threads) throws IOException {
        JsonNode meta = new ObjectMapper().readTree(resource(name + ".json"));
        try (Parallel par = new Parallel(threads)) {
            Hessian h = hessian(meta, f32(name + ".X.f32"));
            Billm.Options opt = new Billm.Options(meta.get("percdamp").asDouble(), meta.get("blocksize").asInt(), QuantConfig.ScaleFormat.F32);
            return new Billm(h).quantize(name, f32(name + ".W.f32"), meta.get("rows").asInt(), opt, par);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"r16c256", "r24c384", "r16c320_dead"})
    void matchesTheReference(String name) throws IOException {
        JsonNode meta = new ObjectMapper().readTree(resource(name + ".json"));
        int rows = meta.get("rows").asInt(), cols = meta.get("columns").asInt();
        Billm.Result res = run(name, 2);
        BillmWeight w = res.weight();
        JsonNode blocks = meta.get("blocks");
        assertEquals(blocks.size(), w.blocks());
        assertEquals(meta.get("dead_column").isNull() ? 0 : 1, res.deadColumns());

        byte[] salient = BitPacking.unpack(w.salientColumns(), 1, cols);
        for (int b = 0; b < blocks.size(); b++) {
            JsonNode blk = blocks.get(b);
            List<Integer> expected = new ArrayList<>(), ours = new ArrayList<>();
            blk.get("salient_columns").forEach(c -> expected.add(c.asInt()));
            for (int c = blk.get("start").asInt(); c < blk.get("end").asInt(); c++) if (salient[c] != 0) ours.add(c);
            assertEquals(expected, ours, "salient columns of block " + b);
            assertEquals(blk.get("salient_count").asInt(), res.salientCounts()[b], "searched salient count of block " + b);
            assertEquals(blk.get("break_point_index").asInt(), res.breakIndices()[b], "break point of block " + b);
            double bp = blk.get("break_point").asDouble();
            // exact in the first block; later ones see the feedback of our float32-rounded means and scales
            assertEquals(bp, res.breakPoints()[b], 1e-6 * bp, "break point value of block " + b);
        }

        double[] params = f64(name + ".params.f64");
        byte[] group = resource(name + ".group.u8"), sign1 = resource(name + ".sign1.i8"), sign2 = resource(name + ".sign2.i8");
        int compared = 0;
        int k = w.salientCount();
        byte[] s1 = BitPacking.unpack(w.signs(), 1, rows * cols), s2 = BitPacking.unpack(w.residualSigns(), 1, rows * k);
        byte[] sp = BitPacking.unpack(w.sparse(), 1, rows * (cols - k));
        int i2 = 0, ig = 0;
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++) {
                int i = r * cols + c;
                String at = "[" + r + "][" + c + "]";
                assertEquals(sign1[i] > 0, s1[i] != 0, "first-order sign " + at);
                if (salient[c] != 0) {
                    assertEquals(2, group[i], "group " + at);
                    // with one or two salient columns the first order is exact and the second binarizes rounding
                    // noise (scale ~1e-17 against ~1e-2): its signs are noise in both, and weigh nothing
                    int p = (r * w.blocks() + c / w.blockSize()) * BillmWeight.PARAMS;
                    boolean meaningful = params[p + 3] > 1e-9 * params[p + 1];
                    if (meaningful) compared++;
                    if (meaningful) assertEquals(sign2[i] > 0, s2[i2] != 0, "second-order sign " + at);
                    i2++;
                } else {
                    assertEquals(group[i], sp[ig++], "concentrated (0) or sparse (1) " + at);
                }
            }

        int beyondTwo = 0;
        for (JsonNode blk : blocks) if (blk.get("salient_count").asInt() > 2) beyondTwo += blk.get("salient_count").asInt();
        assertEquals(rows * beyondTwo, compared, "second-order signs compared: every one in blocks of 3 or more salient columns");
        assertEquals(params.length, w.params().length);
        for (int i = 0; i < params.length; i++)
            assertEquals(params[i], w.params()[i], 1e-6, "parameter " + i % BillmWeight.PARAMS + " of row " + i / BillmWeight.PARAMS / w.blocks()
                    + " block " + i / BillmWeight.PARAMS % w.blocks());
        double[] q = f64(name + ".Q.f64");
        float[] ours = w.dequantize();
        for (int i = 0; i < q.length; i++) assertEquals(q[i], ours[i], 1e-6, "binarized weight [" + i / cols + "][" + i % cols + "]");
        double loss = meta.get("loss").asDouble();
        assertEquals(loss, res.loss(), 1e-6 * loss);
    }

    @Test
    void theResultDoesNotDependOnTheThreadCount() throws IOException {
        assertEquals(run("r24c384", 1).weight(), run("r24c384", 3).weight());
    }

    @Test
    void bitsAreCountedBothWays() throws IOException {
        BillmWeight w = run("r16c320_dead", 2).weight();
        int k = w.salientCount(), rows = w.rows(), cols = w.columns();
        assertEquals(2 + 13 + 2, k, "the fixture's searched counts");
        // columns bitmap + a sign per weight + a second sign per salient weight + a group bit per other weight + 8 f32 per row and block
        long bits = cols + (long) rows * cols + (long) rows * k + (long) rows * (cols - k) + (long) rows * 3 * 8 * 32;
        assertEquals(bits, w.storageBits());
        assertEquals(1 + 17.0 / 320, w.paperBitsPerWeight(), 1e-15);
        assertEquals(1 + 1.0 / 128, w.paperFlagBitsPerWeight(), 1e-15);
    }
}
