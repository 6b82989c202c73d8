// gemm.cu (gemm_f32, gemm_bf16) under the emulation against a plain loop restating lowbit.tensor.Matmul's
// y = x W^T + b (PackedMatrix for bf16 weights: each weight widened from bf16 before the product), here in double.
// Tolerance 1e-5 relative to sum_k |x_k w_k| + |b| (float32 accumulation in another order than the CPU's).
#include "test_util.h"
#include "gemm.cu"

using namespace t;

static void gemm(int rows, int out, int in, bool bias) {
    int before = failures;
    auto x = gauss_floats((size_t) rows * in), w = gauss_floats((size_t) out * in, 0.1), b = gauss_floats(out);
    std::vector<uint16_t> w16(w.size());
    for (size_t i = 0; i < w.size(); i++) w16[i] = __float2bfloat16(w[i]).x;
    auto reference = [&](bool bf16, std::vector<double>& want, std::vector<double>& mag) {
        want.assign((size_t) rows * out, 0);
        mag.assign(want.size(), 0);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double s = bias ? b[o] : 0, m = bias ? std::fabs(b[o]) : 0;
                for (int k = 0; k < in; k++) {
                    double wk = bf16 ? (double) __uint_as_float((uint32_t) w16[(size_t) o * in + k] << 16) : w[(size_t) o * in + k];
                    s += (double) x[(size_t) r * in + k] * wk;
                    m += std::fabs((double) x[(size_t) r * in + k] * wk);
                }
                want[(size_t) r * out + o] = s;
                mag[(size_t) r * out + o] = m;
            }
    };
    std::vector<double> want, mag, want16, mag16;
    reference(false, want, mag);
    reference(true, want16, mag16);
    dim3 grid((out + 63) / 64, (rows + 63) / 64);
    double worst = 0, worst16 = 0;
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x), wb(w), bb(b), y((size_t) rows * out);
        emu::Buffer<uint16_t> wb16(w16);
        const float* bp = bias ? bb.ptr : nullptr;
        if (run("gemm_f32", grid, dim3(256), 0, o, [&] { gemm_f32(xb.ptr, wb.ptr, bp, y.ptr, rows, out, in); }))
            worst = std::max(worst, expect_close("gemm_f32", y.ptr, want, mag, 1e-5, o));
        if (run("gemm_bf16", grid, dim3(256), 0, o, [&] { gemm_bf16(xb.ptr, wb16.ptr, bp, y.ptr, rows, out, in); }))
            worst16 = std::max(worst16, expect_close("gemm_bf16", y.ptr, want16, mag16, 1e-5, o));
        expect_intact("gemm y", y);
    }
    std::string shape = fmt("rows=%d out=%d in=%d bias=%d grid=%ux%u", rows, out, in, bias, grid.x, grid.y);
    line("gemm_f32", shape, fmt("1e-5 rel (worst %.2g)", worst), before);
    line("gemm_bf16", shape, fmt("1e-5 rel (worst %.2g)", worst16), before);
}

int main() {
    gemm(1, 1, 1, true);
    gemm(1, 70, 33, false);     // one row, in not a multiple of 16, two output tiles
    gemm(65, 67, 50, true);     // two row tiles and two output tiles, each one past 64
    gemm(3, 64, 16, true);      // exactly one tile
    return finish("gemm_test");
}
