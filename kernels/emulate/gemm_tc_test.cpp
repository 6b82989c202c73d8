// gemm_tc.cu (gemm_bf16_tc) under the emulation against a plain loop of what the tensor cores compute: x and W both
// rounded to bf16 (round to nearest even, as __float2bfloat16_rn and lowbit.tensor.WeightFormat.toBf16), products
// summed in double, the fp32 bias added. Tolerance 1e-5 relative to sum_k |x_k w_k| + |b|: the kernel sums in float32
// in its own order (the emulated mma_sync in k order within a 16-wide step, the steps in k order).
// Shapes: rows 64 (one half-filled 128-row tile), 65 and 200 (partial tiles); in 576 (every load 16 bytes wide),
// 100 (a partial k-step; weight rows not 16-byte aligned, so the weights' scalar path) and 37 (the activations' scalar
// path); out 1536 and 77 (a partial output tile); and x one float off 16-byte alignment (the scalar path at in 576).
#include "test_util.h"
#include "gemm_tc.cu"

using namespace t;

static float bf16_round(float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

static void gemm_tc(int rows, int out, int in, bool bias, bool misaligned = false) {
    int before = failures;
    auto x = gauss_floats((size_t) rows * in), w = gauss_floats((size_t) out * in, 0.1), b = gauss_floats(out);
    std::vector<uint16_t> w16(w.size());
    for (size_t i = 0; i < w.size(); i++) w16[i] = __float2bfloat16_rn(w[i]).x;
    std::vector<double> want((size_t) rows * out), mag(want.size());
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = 0, m = 0;
            for (int k = 0; k < in; k++) {
                double p = (double) bf16_round(x[(size_t) r * in + k]) * __uint_as_float((uint32_t) w16[(size_t) o * in + k] << 16);
                s += p;
                m += std::fabs(p);
            }
            want[(size_t) r * out + o] = s + (bias ? b[o] : 0);
            mag[(size_t) r * out + o] = m + (bias ? std::fabs(b[o]) : 0);
        }
    dim3 grid((out + TC_O - 1) / TC_O, (rows + TC_R - 1) / TC_R);
    double worst = 0;
    for (auto o : ORDERS) {
        std::vector<float> xs(x);
        if (misaligned) xs.insert(xs.begin(), NAN);   // the kernel must never read it
        emu::Buffer<float> xb(xs), bb(b), y((size_t) rows * out);
        emu::Buffer<uint16_t> wb(w16);
        const float* xp = xb.ptr + (misaligned ? 1 : 0);
        const float* bp = bias ? bb.ptr : nullptr;
        if (run("gemm_bf16_tc", grid, dim3(TC_THREADS), 0, o, [&] { gemm_bf16_tc(xp, wb.ptr, bp, y.ptr, rows, out, in); }))
            worst = std::max(worst, expect_close("gemm_bf16_tc", y.ptr, want, mag, 1e-5, o));
        expect_intact("gemm_bf16_tc y", y);
    }
    line("gemm_bf16_tc",
         fmt("rows=%d out=%d in=%d bias=%d%s grid=%ux%u", rows, out, in, bias, misaligned ? " x+1" : "", grid.x, grid.y),
         fmt("1e-5 rel (worst %.2g)", worst), before);
}

int main() {
    gemm_tc(64, 1536, 576, true);
    gemm_tc(65, 77, 100, false);
    gemm_tc(200, 77, 576, true);
    gemm_tc(200, 1536, 100, true);
    gemm_tc(65, 77, 37, true);
    gemm_tc(65, 77, 576, false, true);
    return finish("gemm_tc_test");
}
