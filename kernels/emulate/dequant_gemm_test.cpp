// dequant_gemm.cu (dq_gemv{1,4,16}_b{2,3,4,8}, dq_gemm_b{2,3,4,8}) under the emulation against plain loops restating
// lowbit.quant.QuantizedWeight.dequantize (UniformQuantizer.dequantize: (float) (scale * (code - zero)) in double, or
// (float) ((float) (scale * code) + (float) min) for float mins; the symmetric grid's zero (maxq + 1) / 2; group of a
// column from the act-order index, else column / groupSize) and the codes packed as lowbit.cuda.PackedLinear.deviceLayout
// does (BitPacking of each row padded to 32 codes, read as little-endian words). Two checks per kernel:
//   one-hot rows of x (the identity for dq_gemm) pick single weights out of y: the dequantized weight, bit for bit;
//   gaussian x: 1e-5 relative to sum_k |x_k w_k| + |b| (float32 sums in another order than the reference's double).
#include "test_util.h"
#include "dequant_gemm.cu"

using namespace t;

enum Mode { INT = MODE_INT, FMIN = MODE_FMIN, FP64 = MODE_FP64 };
static const char* mode_name[] = {"INT", "FMIN", "FP64"};

struct Q {
    int out, in, bits, groupSize, groups;   // groupSize 0: per channel (or per tensor)
    bool perTensor, symmetric, actOrder;
    Mode mode;
    std::vector<uint8_t> codes;
    std::vector<float> scales, zeros;
    std::vector<int> gidx;
    std::vector<uint32_t> words;
    float fixedZero;
    int group(int c) const { return actOrder ? gidx[c] : groupSize > 0 ? c / groupSize : 0; }
    float weight(int n, int c) const {   // QuantizedWeight.dequantize
        int p = (perTensor ? 0 : n) * groups + group(c);
        int code = codes[(size_t) n * in + c];
        double s = scales[p];
        if (mode == FMIN) return (float) ((float) (s * code) + (float) zeros[p]);
        double z = symmetric ? fixedZero : zeros[p];
        return (float) (s * (code - z));
    }
};

static Q make(int out, int in, int bits, int groupSize, bool perTensor, bool symmetric, bool actOrder, Mode mode) {
    Q q{out, in, bits, groupSize, 0, perTensor, symmetric, actOrder, mode};
    int maxq = (1 << bits) - 1;
    q.fixedZero = (float) ((maxq + 1) / 2);
    q.groups = groupSize > 0 ? (in + groupSize - 1) / groupSize : 1;
    q.codes.resize((size_t) out * in);
    for (auto& c : q.codes) c = (uint8_t) (rng() % (maxq + 1));
    q.codes[0] = (uint8_t) maxq;
    int params = (perTensor ? 1 : out) * q.groups;
    q.scales.resize(params);
    for (auto& s : q.scales) s = (float) (0.01 + 0.02 * std::fabs(gauss()));
    if (!symmetric) {
        q.zeros.resize(params);
        for (auto& z : q.zeros)
            z = mode == FMIN ? (float) (-0.1 * std::fabs(gauss())) : mode == FP64 ? (float) (maxq * 0.5 + 0.37 * gauss())
                                                                  : (float) (rng() % (maxq + 1));
    }
    if (actOrder) {
        q.gidx.resize(in);
        for (int c = 0; c < in; c++) q.gidx[c] = (int) (rng() % q.groups);
    }
    // PackedLinear.deviceLayout: rows padded with zero codes to 32 columns, then BitPacking.pack (LSB first)
    int chunks = (in + 31) / 32, padded = chunks * 32;
    std::vector<uint8_t> bytes((size_t) out * padded * bits / 8, 0);
    long bit = 0;
    for (int n = 0; n < out; n++)
        for (int c = 0; c < padded; c++, bit += bits) {
            int v = c < in ? q.codes[(size_t) n * in + c] : 0, word = v << (bit & 7);
            bytes[bit >> 3] |= (uint8_t) word;
            if ((bit & 7) + bits > 8) bytes[(bit >> 3) + 1] |= (uint8_t) (word >> 8);
        }
    q.words.resize(bytes.size() / 4);
    for (size_t i = 0; i < q.words.size(); i++)
        q.words[i] = bytes[4 * i] | bytes[4 * i + 1] << 8 | bytes[4 * i + 2] << 16 | (uint32_t) bytes[4 * i + 3] << 24;
    return q;
}

using KernelFn = void (*)(const uint32_t*, const float*, const float*, const int*, int, int, int, int, int, float, int, const float*,
                          int, const float*, float*);

static KernelFn kernel(const char* kind, int bits) {
    std::string k = kind;
    int i = bits == 2 ? 0 : bits == 3 ? 1 : bits == 4 ? 2 : 3;
    static KernelFn g1[] = {dq_gemv1_b2, dq_gemv1_b3, dq_gemv1_b4, dq_gemv1_b8}, g4[] = {dq_gemv4_b2, dq_gemv4_b3, dq_gemv4_b4, dq_gemv4_b8},
                    g16[] = {dq_gemv16_b2, dq_gemv16_b3, dq_gemv16_b4, dq_gemv16_b8}, gm[] = {dq_gemm_b2, dq_gemm_b3, dq_gemm_b4, dq_gemm_b8};
    return (k == "gemv1" ? g1 : k == "gemv4" ? g4 : k == "gemv16" ? g16 : gm)[i];
}

// Runs kind ("gemv1", "gemv4", "gemv16", "gemm") on x [M][in] under every order; y and the buffers' canaries checked by
// `check`. Launch shapes as PackedLinear.apply: 4 warps per GEMV block, 64 x 64 tiles of 256 threads for the GEMM.
static void launch_all(const Q& q, const char* kind, const std::vector<float>& x, int M, const std::vector<float>* bias,
                       const std::function<void(const float*, emu::Order)>& check) {
    bool gemm = std::string(kind) == "gemm";
    dim3 grid = gemm ? dim3((q.out + 63) / 64, (M + 63) / 64) : dim3((q.out + 3) / 4), block = gemm ? dim3(256) : dim3(128);
    std::string name = fmt("dq_%s_b%d", kind, q.bits);
    KernelFn k = kernel(kind, q.bits);
    for (auto o : ORDERS) {
        emu::Buffer<uint32_t> wb(q.words);
        emu::Buffer<float> sb(q.scales), zb(q.zeros), xb(x), y((size_t) M * q.out);
        emu::Buffer<int> gb(q.gidx);
        std::unique_ptr<emu::Buffer<float>> bb(bias ? new emu::Buffer<float>(*bias) : nullptr);
        if (run(name.c_str(), grid, block, 0, o, [&] {
                k(wb.ptr, sb.ptr, q.symmetric ? nullptr : zb.ptr, q.actOrder ? gb.ptr : nullptr, q.out, q.in, q.groups, q.groupSize,
                  q.perTensor, q.fixedZero, q.mode, xb.ptr, M, bb ? bb->ptr : nullptr, y.ptr);
            }))
            check(y.ptr, o);
        expect_intact(name + " y", y);
    }
}

static void exact(const Q& q, const char* kind, const std::vector<int>& cols) {   // one-hot rows: y[m][n] = W[n][cols[m]]
    int M = (int) cols.size(), before = failures;
    std::vector<float> x((size_t) M * q.in, 0.f), want((size_t) M * q.out);
    for (int m = 0; m < M; m++) {
        x[(size_t) m * q.in + cols[m]] = 1.f;
        for (int n = 0; n < q.out; n++) want[(size_t) m * q.out + n] = q.weight(n, cols[m]);
    }
    launch_all(q, kind, x, M, nullptr, [&](const float* y, emu::Order o) {
        int bad = 0;
        for (size_t i = 0; i < want.size(); i++)
            if (!(y[i] == want[i]) && bad++ < 3)
                printf("  dq_%s_b%d [%s] weight [%zu][%d]: got %.9g want %.9g\n", kind, q.bits, emu::order_name(o), i % q.out,
                       cols[i / q.out], y[i], want[i]);
        if (bad) fail(fmt("dq_%s_b%d dequantized weights (%s): %d of %zu differ", kind, q.bits, emu::order_name(o), bad, want.size()));
    });
    line(fmt("dq_%s_b%d", kind, q.bits),
         fmt("%dx%d %s g%d%s%s%s one-hot M=%d", q.out, q.in, mode_name[q.mode], q.groupSize, q.perTensor ? " tensor" : "",
             q.symmetric ? " sym" : "", q.actOrder ? " act-order" : "", M),
         "bitwise weights", before);
}

static void product(const Q& q, const char* kind, int M, bool withBias) {
    int before = failures;
    auto x = gauss_floats((size_t) M * q.in), b = gauss_floats(q.out);
    std::vector<double> want((size_t) M * q.out), mag(want.size());
    for (int m = 0; m < M; m++)
        for (int n = 0; n < q.out; n++) {
            double s = withBias ? b[n] : 0, a = withBias ? std::fabs(b[n]) : 0;
            for (int c = 0; c < q.in; c++) {
                double p = (double) x[(size_t) m * q.in + c] * q.weight(n, c);
                s += p;
                a += std::fabs(p);
            }
            want[(size_t) m * q.out + n] = s;
            mag[(size_t) m * q.out + n] = a;
        }
    double worst = 0;
    launch_all(q, kind, x, M, withBias ? &b : nullptr, [&](const float* y, emu::Order o) {
        worst = std::max(worst, expect_close(fmt("dq_%s_b%d", kind, q.bits), y, want, mag, 1e-5, o));
    });
    line(fmt("dq_%s_b%d", kind, q.bits),
         fmt("%dx%d %s g%d%s%s%s M=%d%s", q.out, q.in, mode_name[q.mode], q.groupSize, q.perTensor ? " tensor" : "", q.symmetric ? " sym" : "",
             q.actOrder ? " act-order" : "", M, withBias ? " bias" : ""),
         fmt("1e-5 rel (worst %.2g)", worst), before);
}

static void all_kernels(const Q& q) {
    std::vector<int> cols16;
    for (int i = 0; i < 16; i++) cols16.push_back(i == 0 ? q.in - 1 : (int) (rng() % q.in));   // the last column always
    exact(q, "gemv16", cols16);
    if (q.in <= 128) {
        std::vector<int> identity(q.in);
        for (int c = 0; c < q.in; c++) identity[c] = c;
        exact(q, "gemm", identity);
    }
    product(q, "gemv1", 1, true);
    product(q, "gemv4", 3, false);
    product(q, "gemv16", 11, true);
    product(q, "gemm", 70, true);
}

int main() {
    all_kernels(make(9, 70, 4, 32, false, false, false, INT));     // uniform chunks, in not a multiple of 32 or 4
    all_kernels(make(6, 64, 3, 0, false, true, false, INT));       // per channel, symmetric fixed zero, float4 path
    all_kernels(make(5, 100, 2, 48, false, false, false, FMIN));   // groups straddling chunks, float mins
    all_kernels(make(7, 33, 8, 7, false, false, false, FP64));     // non-integer zeros, groups shorter than a chunk
    all_kernels(make(5, 70, 4, 32, false, false, true, INT));      // act-order group index
    all_kernels(make(3, 40, 3, 0, true, false, false, INT));       // per tensor
    Q wide = make(3, 2100, 4, 128, false, false, false, INT);      // 66 chunks: lanes take their second chunk
    product(wide, "gemv1", 1, false);
    product(wide, "gemv16", 2, true);
    exact(wide, "gemv16", {2099, 0, 1024, 2047, 2048});
    return finish("dequant_gemm_test");
}
