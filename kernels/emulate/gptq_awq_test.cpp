// The kernels of gptq.cu and awq.cu against plain loops of the same arithmetic (bit for bit for GPTQ's, 1e-5 relative
// for AWQ's float sums), under cuda_emu.h (run.sh): gpugptq's first emulation test (kernels/emulate-gptq), adapted:
// device arrays are guarded emu::Buffers, and main runs every case under each scheduling order.
#include "test_util.h"
#include "gptq.cu"
#include "awq.cu"
#include <cstdio>
#include <random>

static std::mt19937_64 rng(1);
static double gauss() { static std::normal_distribution<double> d; return d(rng); }
static int fails = 0;
static emu::Order order = emu::Order::ASCENDING;
static void emu_launch(dim3 grid, dim3 block, std::function<void()> body, size_t shared = 0, const char* kernel = "kernel") {
    if (!emu::launch(kernel, grid, block, shared, order, std::move(body))) {
        fails++;
        printf("MISMATCH %s\n", emu::last_error.c_str());
    }
}
#define CHECK(c, ...) do { if (!(c)) { fails++; if (fails < 20) { printf(__VA_ARGS__); printf("\n"); } } } while (0)

void test_hessian(int rows, int n, double weight) {
    emu::Buffer<float> x(rows * n); for (auto& v : x) v = (float) gauss();
    emu::Buffer<double> h(n * n), ref(n * n);
    for (int i = 0; i < n; i++) for (int j = i; j < n; j++) { double v = gauss(); h[i*n+j] = h[j*n+i] = ref[i*n+j] = ref[j*n+i] = v; }
    int tiles = (n + 63) / 64;
    emu_launch({(unsigned) tiles, (unsigned) tiles, 1}, {16, 16, 1}, [&] { gptq_hessian_add(h.data(), x.data(), rows, n, weight); });
    for (int i = 0; i < n; i++) for (int j = i; j < n; j++) {
        float acc = 0; for (int r = 0; r < rows; r++) acc = fmaf(x[r*n+i], x[r*n+j], acc);
        double v = ref[i*n+j] + weight * (double) acc; ref[i*n+j] = ref[j*n+i] = v;
    }
    for (int i = 0; i < n * n; i++) CHECK(h[i] == ref[i], "hessian rows=%d n=%d at %d: %.17g vs %.17g", rows, n, i, h[i], ref[i]);
    printf("hessian_add rows=%d n=%d checked\n", rows, n);
}

void test_scale_gather() {
    emu::Buffer<double> h(1000); for (auto& v : h) v = gauss();
    std::vector<double> ref(h.begin(), h.end());
    emu_launch({4, 1, 1}, {256, 1, 1}, [&] { gptq_hessian_scale(h.data(), 1000, 0.75); });
    for (int i = 0; i < 1000; i++) CHECK(h[i] == ref[i] * 0.75, "scale %d", i);
    int rows = 7, n = 50, c0 = 13, c1 = 41;
    emu::Buffer<double> out(rows * (c1 - c0));
    emu_launch({1, 1, 1}, {256, 1, 1}, [&] { gptq_gather_columns(h.data(), rows, n, c0, c1, out.data()); });
    for (int r = 0; r < rows; r++) for (int c = c0; c < c1; c++) CHECK(out[r*(c1-c0)+c-c0] == h[r*n+c], "gather %d %d", r, c);
    printf("hessian_scale, gather_columns checked\n");
}

void test_block(int rows, int n, int i1, int count, int groups, int maxq, int float_min) {
    emu::Buffer<double> w(rows * n), hinv(n * n), scale(rows * groups), zero(rows * groups);
    for (auto& v : w) v = 0.05 * gauss();
    for (auto& v : hinv) v = 0.1 * gauss();
    for (int c = 0; c < n; c++) hinv[c*n+c] = 0.5 + std::abs(gauss());
    for (int i = 0; i < rows * groups; i++) { scale[i] = 0.01 + 0.01 * std::abs(gauss()); zero[i] = float_min ? -0.05 : (double) (rng() % (maxq + 1)); }
    emu::Buffer<int> group_of(n), perm(n);
    for (int c = 0; c < n; c++) { group_of[c] = (int) (rng() % groups); perm[c] = n - 1 - c; }
    emu::Buffer<unsigned char> codes(rows * n, 0), rcodes(rows * n, 0);
    emu::Buffer<double> err(rows * count), rerr(rows * count), loss(rows, 1.0), rloss(rows, 1.0);
    int warps = 4;
    emu_launch({(unsigned) ((rows + warps - 1) / warps), 1, 1}, {32u * warps, 1, 1}, [&] {
        gptq_block(w.data(), rows, n, i1, count, hinv.data(), scale.data(), zero.data(), group_of.data(), groups, maxq, float_min,
                   perm.data(), codes.data(), err.data(), loss.data()); }, (size_t) warps * count * sizeof(double), "gptq_block");
    for (int r = 0; r < rows; r++) {
        std::vector<double> w1(w.begin() + r * n + i1, w.begin() + r * n + i1 + count);
        double l = 0;
        for (int i = 0; i < count; i++) {
            int col = i1 + i; double s = scale[r*groups+group_of[col]], z = zero[r*groups+group_of[col]], x = w1[i];
            double q; if (float_min) q = s == 0 ? 0 : std::rint((x - z) / s); else q = std::rint(x / s) + z;
            int code = (int) std::max(0.0, std::min((double) maxq, q));
            double qv = float_min ? s * code + z : s * (code - z);
            double d = hinv[col*n+col], e = (x - qv) / d;
            rcodes[r*n+perm[col]] = code; rerr[r*count+i] = e; l += (x - qv) * (x - qv) / (d * d) / 2;
            for (int k = i; k < count; k++) w1[k] = std::fma(-e, hinv[col*n+i1+k], w1[k]);
        }
        rloss[r] += l;
    }
    for (int i = 0; i < rows * n; i++) CHECK(codes[i] == rcodes[i], "block codes at %d: %d vs %d", i, codes[i], rcodes[i]);
    for (int i = 0; i < rows * count; i++) CHECK(err[i] == rerr[i], "block err at %d", i);
    for (int r = 0; r < rows; r++) CHECK(loss[r] == rloss[r], "block loss row %d: %.17g vs %.17g", r, loss[r], rloss[r]);
    printf("gptq_block rows=%d n=%d i1=%d count=%d float_min=%d checked\n", rows, n, i1, count, float_min);
}

void test_trailing(int rows, int n, int i1, int count) {
    int i2 = i1 + count;
    emu::Buffer<double> w(rows * n), hinv(n * n), err(rows * count);
    for (auto& v : w) v = gauss(); for (auto& v : hinv) v = gauss(); for (auto& v : err) v = gauss();
    std::vector<double> ref(w.begin(), w.end());
    emu_launch({(unsigned) ((n - i2 + 31) / 32), (unsigned) ((rows + 31) / 32), 1}, {32, 8, 1}, [&] {
        gptq_trailing(w.data(), rows, n, i1, count, i2, err.data(), hinv.data()); });
    for (int r = 0; r < rows; r++) for (int k = 0; k < count; k++) for (int c = i2; c < n; c++)
        ref[r*n+c] = std::fma(-err[r*count+k], hinv[(i1+k)*n+c], ref[r*n+c]);
    for (int i = 0; i < rows * n; i++) CHECK(w[i] == ref[i], "trailing at %d (row %d col %d): %.17g vs %.17g", i, i / n, i % n, w[i], ref[i]);
    printf("gptq_trailing rows=%d n=%d i1=%d count=%d checked\n", rows, n, i1, count);
}

void test_awq(long tokens, int in, int out, bool bias) {
    emu::Buffer<float> x(tokens * in), w(out * in), ref(tokens * out), b(out);
    for (auto& v : x) v = (float) gauss(); for (auto& v : w) v = (float) (0.1 * gauss());
    for (auto& v : ref) v = (float) gauss(); for (auto& v : b) v = (float) (0.1 * gauss());
    int gx = (out + 63) / 64, gy = (int) ((tokens + 63) / 64);
    emu::Buffer<double> partial(gx * gy, -1);
    emu_launch({(unsigned) gx, (unsigned) gy, 1}, {256, 1, 1}, [&] {
        awq_loss(x.data(), tokens, in, w.data(), out, bias ? b.data() : nullptr, ref.data(), partial.data()); });
    double got = 0; for (double p : partial) got += p;
    double want = 0;
    for (long t = 0; t < tokens; t++) for (int o = 0; o < out; o++) {
        double y = bias ? b[o] : 0; for (int c = 0; c < in; c++) y += (double) x[t*in+c] * w[o*in+c];
        want += (y - ref[t*out+o]) * (y - ref[t*out+o]);
    }
    CHECK(std::abs(got - want) <= 1e-5 * want, "awq tokens=%ld in=%d out=%d: %.10g vs %.10g", tokens, in, out, got, want);
    printf("awq_loss tokens=%ld in=%d out=%d bias=%d: %.10g vs %.10g (rel %.2g)\n", tokens, in, out, bias, got, want, std::abs(got - want) / want);
}

int main() {
  for (emu::Order o : t::ORDERS) {
    order = o;
    printf("-- %s order\n", emu::order_name(o));
    test_scale_gather();
    test_hessian(37, 100, 2.0 / 3);
    test_hessian(64, 64, 0.5);
    test_hessian(5, 33, 1.0);
    test_hessian(19, 130, 0.25);
    test_block(9, 70, 0, 64, 3, 15, 0);
    test_block(6, 70, 64, 6, 2, 7, 0);
    test_block(5, 300, 128, 128, 3, 15, 1);
    test_trailing(40, 150, 0, 64);
    test_trailing(33, 100, 32, 37);
    test_awq(130, 150, 70, true);
    test_awq(64, 16, 64, false);
  }
    printf(fails ? "FAILED: %d\n" : "all kernels match their loops\n", fails);
    return fails != 0;
}
