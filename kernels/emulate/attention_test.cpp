// attention.cu (attention_causal) under the emulation against a plain loop restating lowbit.tensor.Attention.causal:
// scores q.k * (float) (1 / sqrt(d)), a causal softmax and the weighted values, here in double. Tolerance 1e-5 relative
// to sum_j p_j |v_j| (the magnitude the output's rounding scales with): the kernel's online softmax and float32 sums
// round differently from the CPU's, never by more than a few ulp of that magnitude.
#include "test_util.h"
#include "attention.cu"

using namespace t;

static void attention(int T, int heads, int kvHeads, int d) {
    int before = failures;
    auto q = gauss_floats((size_t) T * heads * d), k = gauss_floats((size_t) T * kvHeads * d), v = gauss_floats((size_t) T * kvHeads * d);
    float scale = (float) (1.0 / std::sqrt((double) d));
    std::vector<double> want((size_t) T * heads * d), mag(want.size());
    int group = heads / kvHeads;
    for (int h = 0; h < heads; h++) {
        int g = h / group;
        for (int i = 0; i < T; i++) {
            std::vector<double> s(i + 1);
            double mx = -INFINITY;
            for (int j = 0; j <= i; j++) {
                double dot = 0;
                for (int c = 0; c < d; c++) dot += (double) q[((size_t) i * heads + h) * d + c] * k[((size_t) j * kvHeads + g) * d + c];
                s[j] = dot * scale;
                mx = std::max(mx, s[j]);
            }
            double sum = 0;
            for (auto& x : s) sum += (x = std::exp(x - mx));
            for (int c = 0; c < d; c++) {
                double o = 0, m = 0;
                for (int j = 0; j <= i; j++) {
                    double vv = v[((size_t) j * kvHeads + g) * d + c];
                    o += s[j] / sum * vv;
                    m += s[j] / sum * std::fabs(vv);
                }
                want[((size_t) i * heads + h) * d + c] = o;
                mag[((size_t) i * heads + h) * d + c] = m;
            }
        }
    }
    size_t shared = (32 * d + 64 * (d + 1) + 64 * d) * sizeof(float);
    dim3 grid((T + 31) / 32, heads);
    double worst = 0;
    for (auto o : ORDERS) {
        emu::Buffer<float> qb(q), kb(k), vb(v), out((size_t) T * heads * d);
        if (run("attention_causal", grid, dim3(128), shared, o,
                [&] { attention_causal(qb.ptr, kb.ptr, vb.ptr, out.ptr, T, heads, kvHeads, d, scale); }))
            worst = std::max(worst, expect_close("attention_causal", out.ptr, want, mag, 1e-5, o));
        expect_intact("attention out", out);
    }
    line("attention_causal", fmt("T=%d heads=%d kv=%d d=%d grid=%ux%u", T, heads, kvHeads, d, grid.x, grid.y),
         fmt("1e-5 rel (worst %.2g)", worst), before);
}

int main() {
    attention(1, 1, 1, 8);       // one query, one key
    attention(33, 2, 1, 16);     // a second query tile of one row, grouped heads
    attention(70, 3, 3, 40);     // keys past one 64-key tile, head_dim not a multiple of 32
    attention(65, 4, 2, 64);     // key tile boundary at 64, two query tiles plus one row
    attention(40, 2, 1, 128);    // Qwen3's head_dim: four accumulators per lane and row
    attention(35, 9, 3, 64);     // SmolLM2-135M's heads: 9 query heads over 3 kv heads
    return finish("attention_test");
}
