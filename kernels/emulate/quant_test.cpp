// quant.cu under the emulation against plain loops restating the Java twins, bit for bit (the twins compute in double
// with IEEE operations the kernels pin with __dmul_rn etc.; -ffp-contract=off keeps g++ from fusing; pow is glibc's on
// both sides here, so the MSE search agrees exactly; on a GPU its last bit may differ, as quant.cu says):
//   act_per_token  ActivationQuantizer.quantizePerToken (a NaN row stays NaN, a zero row uses MIN_ABSMAX)
//   act_per_tensor ActivationQuantizer.quantizeWithScale
//   kv_groups      KvCacheQuantizer.quantizeGroups on Grid.QLLM_EVAL
//   rtn_fit_codes  Rtn.quantize = UniformQuantizer.fit (+ MSE clip search) and code, the Builder's float scale and zero
// NaNs compare equal to any NaN (Java's float NaNs carry no payload the twins depend on).
#include "test_util.h"
#include "quant.cu"

using namespace t;

static double Jmax(double a, double b) { return a != a ? a : b != b ? b : (a == 0 && b == 0) ? (std::signbit(a) ? b : a) : a > b ? a : b; }
static double Jmin(double a, double b) { return a != a ? a : b != b ? b : (a == 0 && b == 0) ? (std::signbit(a) ? a : b) : a < b ? a : b; }

static bool same(float a, float b) { return (a != a && b != b) || same_bits(a, b); }
static void expect_floats(const std::string& what, const float* got, const std::vector<float>& want, emu::Order o) {
    int bad = 0;
    for (size_t i = 0; i < want.size(); i++)
        if (!same(got[i], want[i]) && bad++ < 3)
            printf("  %s [%s] at %zu: got %.9g want %.9g\n", what.c_str(), emu::order_name(o), i, got[i], want[i]);
    if (bad) fail(what + " (" + emu::order_name(o) + "): " + std::to_string(bad) + " of " + std::to_string(want.size()) + " differ");
}

// ---- activations ------------------------------------------------------------------------------------------------------
static void with_scale(float* x, long n, double scale, int qmax) {   // quantizeWithScale
    for (long i = 0; i < n; i++) {
        double q = std::rint(x[i] / scale);
        if (q > qmax) q = qmax;
        else if (q < -qmax) q = -qmax;
        x[i] = (float) (q * scale);
    }
}

static void per_token(int rows, int cols, int bits) {
    int before = failures, qmax = (1 << (bits - 1)) - 1;
    auto x = gauss_floats((size_t) rows * cols, 2.0);
    if (rows > 1) x[cols + cols / 2] = NAN;                        // row 1 has a NaN
    if (rows > 2) std::fill(x.begin() + 2 * cols, x.begin() + 3 * cols, 0.f);   // row 2 is zero
    if (rows > 3) x[3 * cols] = -0.f;
    std::vector<float> want = x;
    for (int r = 0; r < rows; r++) {
        float* row = want.data() + (size_t) r * cols;
        float m = 0;
        for (int i = 0; i < cols; i++) {
            float a = std::fabs(row[i]);
            if (a > m) m = a;
            else if (a != a) { m = a; break; }
        }
        float mm = m != m ? m : std::max(m, 1e-5f);   // Math.max(float, float)
        with_scale(row, cols, mm / (double) qmax, qmax);
    }
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x);
        if (run("act_per_token", dim3(rows), dim3(256), 0, o, [&] { act_per_token(xb.ptr, rows, cols, qmax, 1e-5f); }))
            expect_floats("act_per_token", xb.ptr, want, o);
        expect_intact("act x", xb);
    }
    line("act_per_token", fmt("rows=%d cols=%d bits=%d (NaN, zero rows)", rows, cols, bits), "bitwise", before);
}

static void per_tensor(long n, int bits, float scale) {
    int before = failures, qmax = (1 << (bits - 1)) - 1;
    auto x = gauss_floats(n, 3.0);
    std::vector<float> want = x;
    with_scale(want.data(), n, scale, qmax);
    int blocks = (int) ((n + 255) / 256);
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x);
        if (run("act_per_tensor", dim3(blocks), dim3(256), 0, o, [&] { act_per_tensor(xb.ptr, n, scale, qmax); }))
            expect_floats("act_per_tensor", xb.ptr, want, o);
        expect_intact("act x", xb);
    }
    line("act_per_tensor", fmt("n=%ld bits=%d scale=%g", n, bits, scale), "bitwise", before);
}

// ---- KV cache ---------------------------------------------------------------------------------------------------------
static void kv(long groups, int group, int bits) {
    int before = failures, maxint = (1 << bits) - 1;
    const double MIN_RANGE = 1e-5;
    auto x = gauss_floats(groups * group);
    if (groups > 1) x[group + 3 % group] = NAN;                                  // group 1 has a NaN
    if (groups > 2) std::fill(x.begin() + 2 * group, x.begin() + 3 * group, 0.25f);   // group 2 is constant
    if (groups > 3) for (int i = 0; i < group; i++) x[3 * group + i] = (float) (1 + 1e-7 * i);   // range below MIN_RANGE
    std::vector<float> want = x;
    float* a = want.data();
    for (long off = 0; off < groups * group; off += group) {   // quantizeGroups, Grid.QLLM_EVAL
        double lo = a[off], hi = a[off];
        for (long i = off + 1; i < off + group; i++) { lo = Jmin(lo, a[i]); hi = Jmax(hi, a[i]); }
        if (std::isnan(lo) || std::isnan(hi)) { for (long i = off; i < off + group; i++) a[i] = NAN; continue; }
        if (lo == hi) continue;
        double scale = Jmax(hi - lo, MIN_RANGE) / maxint;
        double zero = -std::rint(lo / scale);
        zero = Jmax(0, Jmin(maxint, zero));
        for (long i = off; i < off + group; i++) {
            double q = Jmax(0, Jmin(maxint, std::rint(a[i] / scale) + zero));
            a[i] = (float) (scale * (q - zero));
        }
    }
    int blocks = (int) ((groups * 32 + 255) / 256);
    for (auto o : ORDERS) {
        emu::Buffer<float> xb(x);
        if (run("kv_groups", dim3(blocks), dim3(256), 0, o, [&] { kv_groups(xb.ptr, groups, group, maxint, MIN_RANGE); }))
            expect_floats("kv_groups", xb.ptr, want, o);
        expect_intact("kv x", xb);
    }
    line("kv_groups", fmt("groups=%ld group=%d bits=%d (NaN, constant, tiny range)", groups, group, bits), "bitwise", before);
}

// ---- RTN --------------------------------------------------------------------------------------------------------------
enum Zp { INTEGER, FLOAT_MIN, ABSMAX, AWQ };
static const char* zp_name[] = {"INTEGER", "FLOAT_MIN", "ABSMAX", "AWQ"};

struct Cfg { int bits; bool symmetric; int groupSize; Zp zp; bool f16, mse; };   // groupSize: >0, -1 per channel, 0 per tensor

static double fmt_round(const Cfg& c, double v) {   // ScaleFormat.round
    return c.f16 ? (double) (float) (_Float16) (float) v : (double) (float) v;
}

struct Grid2 {
    Cfg c;
    int maxq;
    bool floatMin() const { return c.zp == FLOAT_MIN; }
    void at(double lo, double hi, double p, double& s, double& z) const {   // UniformQuantizer.shrinkable
        double half = (maxq + 1) / 2;
        switch (c.zp) {
        case FLOAT_MIN: s = (hi - lo) * p / maxq; z = p * lo; return;
        case ABSMAX: { double amax = Jmax(std::fabs(lo), std::fabs(hi)); s = Jmax(amax * p, 1e-5) / (half - 1); z = half; return; }
        case AWQ: s = Jmax(p * (hi - lo), 1e-5) / maxq; z = Jmax(0, Jmin(maxq, -std::rint(p * lo / s))) + 0.0; return;
        default: {
            double xmin = Jmin(lo, 0), xmax = Jmax(hi, 0);
            if (c.symmetric) { xmax = Jmax(std::fabs(xmin), xmax); if (xmin < 0) xmin = -xmax; }
            if (xmin == 0 && xmax == 0) { xmin = -1; xmax = 1; }
            double pb = p * xmax, pa = p * xmin;
            s = (pb - pa) / maxq;
            z = c.symmetric ? half : std::rint(-pa / s) + 0.0;
        }
        }
    }
    int code(double x, double s, double z) const {
        double q;
        if (floatMin()) q = s == 0 ? 0 : std::rint((x - z) / s);
        else q = std::rint(x / s) + z;
        q = Jmax(0, Jmin(maxq, q));
        return q != q ? 0 : (int) q;
    }
    double value(int code, double s, double z) const {
        if (floatMin()) { double sc = s * code; return sc + z; }
        return s * (code - z);
    }
    void fit(const double* v, long n, double& scale, double& zero) const {
        double lo = INFINITY, hi = -INFINITY;
        for (long i = 0; i < n; i++) { if (v[i] < lo) lo = v[i]; if (v[i] > hi) hi = v[i]; }
        double bs, bz;
        at(lo, hi, 1, bs, bz);
        if (c.mse) {
            double bestErr = INFINITY;
            for (int i = 0; i < 80; i++) {
                double s, z, err = 0;
                at(lo, hi, 1 - (double) i / 100, s, z);
                for (long k = 0; k < n; k++) err += std::pow(std::fabs(value(code(v[k], s, z), s, z) - v[k]), 2.4);
                if (err < bestErr) { bestErr = err; bs = s; bz = z; }
            }
        }
        double st = fmt_round(c, bs);
        if (st == 0 && bs > 0) st = c.f16 ? std::ldexp(1.0, -24) : std::ldexp(1.0, -149);
        scale = st;
        zero = floatMin() ? fmt_round(c, bz) : bz;
    }
};

static void rtn(int rows, int cols, Cfg c, bool special) {
    int before = failures;
    Grid2 g{c, (1 << c.bits) - 1};
    auto w = gauss_floats((size_t) rows * cols, 0.05);
    if (special) {   // a group of mixed-sign zeros, a row starting with -0, a positive-only and a negative-only stretch
        for (int i = 0; i < std::min(cols, 8); i++) w[i] = i % 2 ? 0.f : -0.f;
        if (rows > 1) { w[cols] = -0.f; for (int i = 1; i < cols; i++) w[cols + i] = std::fabs(w[cols + i]); }
        if (rows > 2) for (int i = 0; i < cols; i++) w[2 * cols + i] = -std::fabs(w[2 * cols + i]) - 1e-3f;
        if (rows > 3) for (int i = 0; i < cols; i++) w[3 * cols + i] = 1e-42f * (i % 3);   // subnormal: scale below float's range
    }
    bool perTensor = c.groupSize == 0;
    int gsz = c.groupSize > 0 ? std::min(c.groupSize, cols) : cols;
    int groups = c.groupSize > 0 ? (cols + c.groupSize - 1) / c.groupSize : 1;
    int params = (perTensor ? 1 : rows) * groups;
    std::vector<float> scales(params), zeros(params);
    std::vector<uint8_t> codes((size_t) rows * cols);
    std::vector<double> all(w.begin(), w.end());
    if (perTensor) {
        double s, z;
        g.fit(all.data(), all.size(), s, z);
        scales[0] = (float) s; zeros[0] = (float) z;
        for (size_t i = 0; i < all.size(); i++) codes[i] = (uint8_t) g.code(all[i], s, z);
    } else {
        for (int r = 0; r < rows; r++)
            for (int c0 = 0, gi = 0; c0 < cols; c0 += gsz, gi++) {
                int n = std::min(gsz, cols - c0);
                double s, z;
                g.fit(all.data() + (size_t) r * cols + c0, n, s, z);
                scales[r * groups + gi] = (float) s; zeros[r * groups + gi] = (float) z;
                for (int k = c0; k < c0 + n; k++) codes[(size_t) r * cols + k] = (uint8_t) g.code(all[(size_t) r * cols + k], s, z);
            }
    }
    bool withZeros = !(c.symmetric && c.zp == INTEGER);
    for (auto o : ORDERS) {
        emu::Buffer<float> wb(w), sb(params), zb(params);
        emu::Buffer<uint8_t> cb((size_t) rows * cols);
        if (run("rtn_fit_codes", dim3(perTensor ? 1 : params), dim3(128), 0, o, [&] {
                rtn_fit_codes(wb.ptr, rows, cols, c.groupSize > 0 ? c.groupSize : 0, perTensor, c.zp, g.maxq, c.symmetric, c.f16, c.mse,
                              sb.ptr, withZeros ? zb.ptr : nullptr, cb.ptr);
            })) {
            expect_bits("rtn codes", cb.ptr, codes, o);
            expect_floats("rtn scales", sb.ptr, scales, o);
            if (withZeros) expect_floats("rtn zeros", zb.ptr, zeros, o);
        }
        expect_intact("rtn codes", cb);
        expect_intact("rtn scales", sb);
        expect_intact("rtn zeros", zb);
    }
    line("rtn_fit_codes", fmt("%dx%d b%d %s%s g%d%s%s%s", rows, cols, c.bits, zp_name[c.zp], c.symmetric ? " sym" : "", c.groupSize,
                              c.f16 ? " f16" : "", c.mse ? " mse" : "", special ? " zeros" : ""),
         "bitwise codes, scales, zeros", before);
}

int main() {
    per_token(1, 1, 8);
    per_token(5, 300, 8);
    per_token(4, 37, 4);
    per_tensor(1, 8, 0.01f);
    per_tensor(1000, 8, 0.013f);
    per_tensor(70, 4, 0.2f);
    kv(1, 32, 4);
    kv(11, 64, 2);
    kv(5, 7, 8);      // a group shorter than a warp
    kv(4, 130, 4);    // a group longer than a warp, not a multiple of it
    rtn(4, 70, {4, false, 32, INTEGER, true, false}, true);
    rtn(3, 70, {4, true, 32, INTEGER, true, false}, true);
    rtn(4, 45, {3, false, -1, INTEGER, false, true}, true);
    rtn(2, 300, {2, false, 128, INTEGER, true, true}, false);
    rtn(4, 40, {4, false, 16, FLOAT_MIN, true, false}, true);
    rtn(3, 33, {4, false, 7, FLOAT_MIN, false, true}, false);
    rtn(4, 37, {8, true, -1, ABSMAX, false, false}, true);
    rtn(3, 64, {4, false, 32, AWQ, true, true}, true);
    rtn(4, 40, {4, false, 8, FLOAT_MIN, false, false}, true);  // group 0: zeros only, the first -0
    rtn(3, 24, {2, false, 8, INTEGER, false, true}, true);     // group 0: zeros only, grid [-1, 1]
    rtn(5, 21, {4, false, 0, INTEGER, true, false}, true);    // per tensor
    rtn(3, 50, {3, false, 0, AWQ, false, true}, false);       // per tensor with the MSE search
    return finish("quant_test");
}
