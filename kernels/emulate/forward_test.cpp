// forward.cu (embed_rows, embed_rows_bf16, rms_norm_rows, rope_rows, silu_mul) and elementwise.cu (add_inplace) under
// the emulation, against plain loops restating lowbit.model.Transformer and lowbit.tensor.RmsNorm:
//   embeddings, bf16 widening, RoPE (a*cos - b*sin, b*cos + a*sin in float, no fusion under -ffp-contract=off) and the
//   residual add: bit for bit;
//   RMSNorm: 1e-5 relative (the kernel's strided fma tree sums the squares in another order than the CPU's sequence);
//   SiLU * up: 1e-5 relative (expf against the CPU's polynomial exp; the reference is double).
#include "test_util.h"
#include "forward.cu"
#include "elementwise.cu"

using namespace t;

static void embed(int rows, int dim, int vocab, int threads) {
    int before = failures;
    auto table = gauss_floats((size_t) vocab * dim);
    std::vector<uint16_t> table16(table.size());
    for (size_t i = 0; i < table.size(); i++) table16[i] = __float2bfloat16(table[i]).x;
    std::vector<int> tokens(rows);
    for (auto& tk : tokens) tk = (int) (rng() % vocab);
    tokens[0] = vocab - 1;   // the table's last row
    std::vector<float> want((size_t) rows * dim), want16(want.size());
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < dim; j++) {
            want[(size_t) r * dim + j] = table[(size_t) tokens[r] * dim + j];
            want16[(size_t) r * dim + j] = __uint_as_float((uint32_t) table16[(size_t) tokens[r] * dim + j] << 16);
        }
    for (auto o : ORDERS) {
        emu::Buffer<float> tb(table), x((size_t) rows * dim);
        emu::Buffer<uint16_t> tb16(table16);
        emu::Buffer<int> tok(tokens);
        if (run("embed_rows", dim3(rows), dim3(threads), 0, o, [&] { embed_rows(x.ptr, tb.ptr, tok.ptr, rows, dim); }))
            expect_bits("embed_rows", x.ptr, want, o);
        if (run("embed_rows_bf16", dim3(rows), dim3(threads), 0, o,
                   [&] { embed_rows_bf16(x.ptr, tb16.ptr, tok.ptr, rows, dim); }))
            expect_bits("embed_rows_bf16", x.ptr, want16, o);
        expect_intact("embed x", x);
    }
    line("embed_rows(+_bf16)", fmt("rows=%d dim=%d vocab=%d threads=%d", rows, dim, vocab, threads), "bitwise", before);
}

static void rms(int rows, int d, int threads, bool inPlace) {
    int before = failures;
    auto x = gauss_floats((size_t) rows * d, 3.0), w = gauss_floats(d);
    float eps = 1e-5f;
    std::vector<double> want((size_t) rows * d), mag(want.size());
    for (int r = 0; r < rows; r++) {   // RmsNorm.rows: float sum of x*x in sequence, the inverse root in double
        float ss = 0;
        for (int j = 0; j < d; j++) ss += x[(size_t) r * d + j] * x[(size_t) r * d + j];
        float inv = (float) (1.0 / std::sqrt((double) (ss / d + eps)));
        for (int j = 0; j < d; j++) {
            want[(size_t) r * d + j] = w[j] * (x[(size_t) r * d + j] * inv);
            mag[(size_t) r * d + j] = std::fabs(want[(size_t) r * d + j]);
        }
    }
    double worst = 0;
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x), wb(w), out((size_t) rows * d);
        float* dst = inPlace ? xb.ptr : out.ptr;
        if (run("rms_norm_rows", dim3(rows), dim3(threads), 0, o, [&] { rms_norm_rows(xb.ptr, dst, wb.ptr, rows, d, eps); }))
            worst = std::max(worst, expect_close("rms_norm_rows", dst, want, mag, 1e-5, o));
        expect_intact("rms out", out);
        expect_intact("rms x", xb);
    }
    line("rms_norm_rows", fmt("rows=%d d=%d threads=%d%s", rows, d, threads, inPlace ? " in place" : ""),
         fmt("1e-5 rel (worst %.2g)", worst), before);
}

static void rope(int rows, int heads, int hd, int threads) {
    int before = failures, half = hd / 2;
    auto x = gauss_floats((size_t) rows * heads * hd);
    std::vector<float> cs((size_t) rows * half), sn(cs.size());
    for (int t = 0; t < rows; t++)
        for (int i = 0; i < half; i++) {
            double a = t * std::pow(10000.0, -2.0 * i / hd);
            cs[(size_t) t * half + i] = (float) std::cos(a);
            sn[(size_t) t * half + i] = (float) std::sin(a);
        }
    std::vector<float> want = x;   // Transformer.rope at positions 0..rows-1
    for (int t = 0; t < rows; t++)
        for (int h = 0; h < heads; h++) {
            size_t o = ((size_t) t * heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float a = want[o + i], b = want[o + i + half], c = cs[(size_t) t * half + i], s = sn[(size_t) t * half + i];
                float p = a * c, q = b * s, r = b * c, u = a * s;
                want[o + i] = p - q;
                want[o + i + half] = r + u;
            }
        }
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x), cb(cs), sb(sn);
        if (run("rope_rows", dim3(rows), dim3(threads), 0, o, [&] { rope_rows(xb.ptr, cb.ptr, sb.ptr, rows, heads, hd); }))
            expect_bits("rope_rows", xb.ptr, want, o);
        expect_intact("rope x", xb);
    }
    line("rope_rows", fmt("rows=%d heads=%d head_dim=%d threads=%d", rows, heads, hd, threads), "bitwise (unfused)", before);
}

static void silu(long n, int threads) {
    int before = failures;
    auto g = gauss_floats(n, 4.0), u = gauss_floats(n);
    g[0] = 90.f;
    if (n > 1) g[1] = -90.f;   // exp(-g) overflows to inf in float: silu -> -0
    std::vector<double> want(n), mag(n);
    for (long i = 0; i < n; i++) {
        want[i] = (double) g[i] / (1.0 + std::exp(-(double) g[i])) * u[i];
        mag[i] = std::max(std::fabs(want[i]), 1e-30);   // g = -90: exp(-g) overflows to inf in float, silu is 0 not 2.6e-38
    }
    std::vector<float> add_want(n);
    for (long i = 0; i < n; i++) add_want[i] = g[i] + u[i];
    double worst = 0;
    int blocks = (int) ((n + threads - 1) / threads);
    for (auto o : ORDERS) {
        emu::Buffer<float> gb(g), ub(u);
        if (run("silu_mul", dim3(blocks), dim3(threads), 0, o, [&] { silu_mul(gb.ptr, ub.ptr, n); }))
            worst = std::max(worst, expect_close("silu_mul", gb.ptr, want, mag, 1e-5, o));
        expect_intact("silu g", gb);
    }
    line("silu_mul", fmt("n=%ld threads=%d blocks=%d", n, threads, blocks), fmt("1e-5 rel (worst %.2g)", worst), before);
    before = failures;
    for (auto o : ORDERS) {
        emu::Buffer<float> yb(g), ub(u);
        if (run("add_inplace", dim3(blocks), dim3(threads), 0, o, [&] { add_inplace(yb.ptr, ub.ptr, n); }))
            expect_bits("add_inplace", yb.ptr, add_want, o);
        expect_intact("add y", yb);
    }
    line("add_inplace", fmt("n=%ld threads=%d blocks=%d", n, threads, blocks), "bitwise", before);
}

int main() {
    embed(1, 37, 5, 32);
    embed(7, 100, 11, 64);
    rms(1, 37, 32, false);
    rms(5, 129, 128, true);
    rms(3, 64, 256, false);   // more threads than columns
    rms(2, 576, 128, false);  // SmolLM2-135M's hidden size, 128 threads as ForwardKernels launches it
    rope(1, 1, 2, 32);
    rope(5, 3, 34, 64);
    rope(4, 2, 64, 32);       // more pairs than threads
    rope(3, 9, 64, 256);      // SmolLM2-135M: 288 pairs, 256 threads as ForwardKernels launches it
    silu(1, 32);
    silu(1000, 256);
    return finish("forward_test");
}
