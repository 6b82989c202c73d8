package lowbit.tensor;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal softmax attention with grouped-query heads, in float32. Keys are transposed per kv head so that both
 * score and value products are broadcast-FMA loops over contiguous memory; four query rows share each load.
 * Its buffers are reused across calls (fresh arrays cost more than the products: zeroing, page faults), so one
 * instance serves one caller at a time.
 */
public final class Attention {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int L = S.length();
    /** Attention tiles: four query rows by four vectors of keys (or of head dimensions). */
    private static final int TILE = 4 * L;

    private final int heads, kvHeads, headDim;
    private float[] keysTiled = new float[0], valuesPacked = new float[0], output = new float[0];

    public Attention(int heads, int kvHeads, int headDim) {
        if (heads <= 0 || kvHeads <= 0 || heads % kvHeads != 0 || headDim <= 0)
            throw new IllegalArgumentException(heads + " heads must be a positive multiple of " + kvHeads
                    + " kv heads, head dimension " + headDim + " positive");
        this.heads = heads;
        this.kvHeads = kvHeads;
        this.headDim = headDim;
    }

    /**
     * softmax(q k^T / sqrt(headDim), causal) v for T positions: q [T][heads][headDim], k and v
     * [T][kvHeads][headDim], out [T][heads][headDim]. The result is this object's buffer, valid until the next call.
     */
    public float[] causal(float[] q, float[] k, float[] v, int T, Parallel par) {
        return causal(q, k, v, T, 0, par);
    }

    /**
     * Causal attention for T queries at positions offset..offset+T-1 over the keys of positions 0..offset+T-1:
     * q [T][heads][headDim], k and v [offset+T][kvHeads][headDim] (the first offset rows a context computed
     * earlier), out [T][heads][headDim]. Query i sees keys 0..offset+i, so each row equals the row of a full
     * causal pass over all offset+T positions; offset 0 is {@link #causal(float[], float[], float[], int, Parallel)}.
     * The result is this object's buffer, valid until the next call.
     */
    public float[] causal(float[] q, float[] k, float[] v, int T, int offset, Parallel par) {
        if (offset < 0) throw new IllegalArgumentException("attention offset must be >= 0, got " + offset);
        int H = heads, KV = kvHeads, d = headDim;
        int qStride = H * d, kvStride = KV * d, group = H / KV;
        int N = offset + T;  // keys
        int Tp = (N + TILE - 1) / TILE * TILE;
        // Keys in tiles of TILE positions, each tile [d][TILE] contiguous, so a tile's score loop reads one
        // 16 KB block instead of d rows far apart; values per kv head [N][d]. Padding keys t >= N are scored
        // but their scores are zeroed before the softmax, so whatever a reused buffer holds there is harmless.
        float[] kt = keysTiled = sized(keysTiled, KV * d * Tp);
        float[] vp = valuesPacked = sized(valuesPacked, KV * N * d);
        par.forEach(KV, g -> {
            int base = g * d * Tp;
            for (int t = 0; t < N; t++) {
                int tile = base + (t / TILE) * d * TILE + (t % TILE);
                int src = t * kvStride + g * d;
                for (int j = 0; j < d; j++) kt[tile + j * TILE] = k[src + j];
                System.arraycopy(v, src, vp, (g * N + t) * d, d);
            }
        });
        float scale = (float) (1.0 / Math.sqrt(d));
        float[] out = output = sized(output, T * qStride);
        int qBlock = 16;
        int blocksPerHead = (T + qBlock - 1) / qBlock;
        par.forEach(H * blocksPerHead, task -> {
            int head = task / blocksPerHead, i0 = (task % blocksPerHead) * qBlock;
            int i1 = Math.min(T, i0 + qBlock);
            int g = head / group;
            float[] scores = Scratch.floats(4 * Tp);
            for (int r0 = i0; r0 < i1; r0 += 4) {
                int rows = Math.min(4, i1 - r0);
                attendRows(q, vp, g * N * d, kt, g * d * Tp, out, r0, rows, offset, head, Tp, d, qStride, scale, scores);
            }
        });
        return out;
    }

    /** Query rows r0..r0+rows-1 (positions offset+r0..) of one head: scores, softmax and the weighted values. */
    private static void attendRows(float[] q, float[] v, int vBase, float[] kt, int ktBase, float[] out, int r0, int rows,
                                   int offset, int head, int Tp, int d, int qStride, float scale, float[] s) {
        int last = offset + r0 + rows - 1;      // the last query row sees keys 0..last
        int span = (last + TILE) / TILE * TILE; // keys to score, padded to whole tiles
        int q0 = r0 * qStride + head * d;
        int q1 = rows > 1 ? q0 + qStride : q0, q2 = rows > 2 ? q0 + 2 * qStride : q0, q3 = rows > 3 ? q0 + 3 * qStride : q0;
        for (int j = 0; j < span; j += TILE) {
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int c = 0, k = ktBase + j * d; c < d; c++, k += TILE) {
                FloatVector k0 = FloatVector.fromArray(S, kt, k);
                FloatVector k1 = FloatVector.fromArray(S, kt, k + L);
                FloatVector k2 = FloatVector.fromArray(S, kt, k + 2 * L);
                FloatVector k3 = FloatVector.fromArray(S, kt, k + 3 * L);
                FloatVector b = FloatVector.broadcast(S, q[q0 + c]);
                a00 = b.fma(k0, a00); a01 = b.fma(k1, a01); a02 = b.fma(k2, a02); a03 = b.fma(k3, a03);
                b = FloatVector.broadcast(S, q[q1 + c]);
                a10 = b.fma(k0, a10); a11 = b.fma(k1, a11); a12 = b.fma(k2, a12); a13 = b.fma(k3, a13);
                b = FloatVector.broadcast(S, q[q2 + c]);
                a20 = b.fma(k0, a20); a21 = b.fma(k1, a21); a22 = b.fma(k2, a22); a23 = b.fma(k3, a23);
                b = FloatVector.broadcast(S, q[q3 + c]);
                a30 = b.fma(k0, a30); a31 = b.fma(k1, a31); a32 = b.fma(k2, a32); a33 = b.fma(k3, a33);
            }
            a00.mul(scale).intoArray(s, j); a01.mul(scale).intoArray(s, j + L);
            a02.mul(scale).intoArray(s, j + 2 * L); a03.mul(scale).intoArray(s, j + 3 * L);
            int o = Tp + j;
            a10.mul(scale).intoArray(s, o); a11.mul(scale).intoArray(s, o + L);
            a12.mul(scale).intoArray(s, o + 2 * L); a13.mul(scale).intoArray(s, o + 3 * L);
            o += Tp;
            a20.mul(scale).intoArray(s, o); a21.mul(scale).intoArray(s, o + L);
            a22.mul(scale).intoArray(s, o + 2 * L); a23.mul(scale).intoArray(s, o + 3 * L);
            o += Tp;
            a30.mul(scale).intoArray(s, o); a31.mul(scale).intoArray(s, o + L);
            a32.mul(scale).intoArray(s, o + 2 * L); a33.mul(scale).intoArray(s, o + 3 * L);
        }
        // Unnormalized softmax: exp(s - max) here, the 1/sum applied to the four output rows at the end.
        float inv0 = 0, inv1 = 0, inv2 = 0, inv3 = 0;
        for (int r = 0; r < 4; r++) {
            int o = r * Tp;
            int valid = r < rows ? offset + r0 + r + 1 : 0;  // causal: row r0+r sees keys 0..offset+r0+r
            for (int j = valid; j < span; j++) s[o + j] = 0f;
            if (valid == 0) continue;
            FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            int j = 0;
            for (; j + L <= valid; j += L) mv = mv.max(FloatVector.fromArray(S, s, o + j));
            float max = mv.reduceLanes(VectorOperators.MAX); // max is exact in any order
            for (; j < valid; j++) max = Math.max(max, s[o + j]);
            float inv = 1f / VectorMath.exp(s, o, s, o, valid, 1f, max);
            switch (r) {
                case 0 -> inv0 = inv;
                case 1 -> inv1 = inv;
                case 2 -> inv2 = inv;
                default -> inv3 = inv;
            }
        }
        int c = 0;
        for (; c + TILE <= d; c += TILE) {
            FloatVector a00 = FloatVector.zero(S), a01 = a00, a02 = a00, a03 = a00;
            FloatVector a10 = a00, a11 = a00, a12 = a00, a13 = a00;
            FloatVector a20 = a00, a21 = a00, a22 = a00, a23 = a00;
            FloatVector a30 = a00, a31 = a00, a32 = a00, a33 = a00;
            for (int j = 0, vj = vBase + c; j <= last; j++, vj += d) {
                FloatVector v0 = FloatVector.fromArray(S, v, vj);
                FloatVector v1 = FloatVector.fromArray(S, v, vj + L);
                FloatVector v2 = FloatVector.fromArray(S, v, vj + 2 * L);
                FloatVector v3 = FloatVector.fromArray(S, v, vj + 3 * L);
                FloatVector p = FloatVector.broadcast(S, s[j]);
                a00 = p.fma(v0, a00); a01 = p.fma(v1, a01); a02 = p.fma(v2, a02); a03 = p.fma(v3, a03);
                p = FloatVector.broadcast(S, s[Tp + j]);
                a10 = p.fma(v0, a10); a11 = p.fma(v1, a11); a12 = p.fma(v2, a12); a13 = p.fma(v3, a13);
                p = FloatVector.broadcast(S, s[2 * Tp + j]);
                a20 = p.fma(v0, a20); a21 = p.fma(v1, a21); a22 = p.fma(v2, a22); a23 = p.fma(v3, a23);
                p = FloatVector.broadcast(S, s[3 * Tp + j]);
                a30 = p.fma(v0, a30); a31 = p.fma(v1, a31); a32 = p.fma(v2, a32); a33 = p.fma(v3, a33);
            }
            int o = q0 + c;
            a00.mul(inv0).intoArray(out, o); a01.mul(inv0).intoArray(out, o + L);
            a02.mul(inv0).intoArray(out, o + 2 * L); a03.mul(inv0).intoArray(out, o + 3 * L);
            if (rows > 1) {
                o = q1 + c;
                a10.mul(inv1).intoArray(out, o); a11.mul(inv1).intoArray(out, o + L);
                a12.mul(inv1).intoArray(out, o + 2 * L); a13.mul(inv1).intoArray(out, o + 3 * L);
            }
            if (rows > 2) {
                o = q2 + c;
                a20.mul(inv2).intoArray(out, o); a21.mul(inv2).intoArray(out, o + L);
                a22.mul(inv2).intoArray(out, o + 2 * L); a23.mul(inv2).intoArray(out, o + 3 * L);
            }
            if (rows > 3) {
                o = q3 + c;
                a30.mul(inv3).intoArray(out, o); a31.mul(inv3).intoArray(out, o + L);
                a32.mul(inv3).intoArray(out, o + 2 * L); a33.mul(inv3).intoArray(out, o + 3 * L);
            }
        }
        // head dimensions left over when headDim is not a multiple of the tile: one vector at a time
        for (; c < d; c += L) {
            VectorMask<Float> m = S.indexInRange(c, d);
            FloatVector a0 = FloatVector.zero(S), a1 = a0, a2 = a0, a3 = a0;
            for (int j = 0; j <= last; j++) {
                FloatVector vv = FloatVector.fromArray(S, v, vBase + j * d + c, m);
                a0 = FloatVector.broadcast(S, s[j]).fma(vv, a0);
                a1 = FloatVector.broadcast(S, s[Tp + j]).fma(vv, a1);
                a2 = FloatVector.broadcast(S, s[2 * Tp + j]).fma(vv, a2);
                a3 = FloatVector.broadcast(S, s[3 * Tp + j]).fma(vv, a3);
            }
            a0.mul(inv0).intoArray(out, q0 + c, m);
            if (rows > 1) a1.mul(inv1).intoArray(out, q1 + c, m);
            if (rows > 2) a2.mul(inv2).intoArray(out, q2 + c, m);
            if (rows > 3) a3.mul(inv3).intoArray(out, q3 + c, m);
        }
    }

    /** The buffer itself when it has the size, else a new one. */
    private static float[] sized(float[] buffer, int size) {
        return buffer.length == size ? buffer : new float[size];
    }
}
