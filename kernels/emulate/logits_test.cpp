// logits.cu (nll_rows, log_softmax_rows) under the emulation against a plain loop restating
// lowbit.model.Transformer.logSumExpOf (the row's float max, the sum of exp(z - max), lse = max + log(sum) in double)
// and logProbs ((float) (z - lse)), with the reference's sum in double. Tolerance: nll 1e-5 relative to lse's size
// (|lse| + |z_target|: the value is a difference of those two); log-probs 1e-5 relative to |lse| + |z|.
#include "test_util.h"
#include "logits.cu"

using namespace t;

static void logits(int rows, int vocab, int threads, double spread) {
    int before = failures;
    auto z = gauss_floats((size_t) rows * vocab, spread);
    std::vector<int> targets(rows);
    for (auto& tg : targets) tg = (int) (rng() % vocab);
    targets[0] = vocab - 1;
    std::vector<double> nll(rows), nmag(rows), lp((size_t) rows * vocab), lmag(lp.size());
    for (int r = 0; r < rows; r++) {
        const float* zr = z.data() + (size_t) r * vocab;
        float mx = -INFINITY;
        for (int j = 0; j < vocab; j++) mx = std::max(mx, zr[j]);
        double sum = 0;
        for (int j = 0; j < vocab; j++) sum += std::exp((double) zr[j] - mx);
        double lse = mx + std::log(sum);
        nll[r] = lse - zr[targets[r]];
        nmag[r] = std::fabs(lse) + std::fabs(zr[targets[r]]);
        for (int j = 0; j < vocab; j++) {
            lp[(size_t) r * vocab + j] = (double) zr[j] - lse;
            lmag[(size_t) r * vocab + j] = std::fabs(lse) + std::fabs(zr[j]);
        }
    }
    double wn = 0, wl = 0;
    for (auto o : ORDERS) {
        emu::Buffer<float> zb(z);
        emu::Buffer<int> tb(targets);
        emu::Buffer<double> nb(rows);
        if (run("nll_rows", dim3(rows), dim3(threads), 0, o, [&] { nll_rows(zb.ptr, tb.ptr, nb.ptr, rows, vocab); })) {
            std::vector<float> got(rows);
            for (int r = 0; r < rows; r++) got[r] = (float) nb[r];   // compared at float's precision, 1e-5 is far coarser
            wn = std::max(wn, expect_close("nll_rows", got.data(), nll, nmag, 1e-5, o));
        }
        if (run("log_softmax_rows", dim3(rows), dim3(threads), 0, o, [&] { log_softmax_rows(zb.ptr, rows, vocab); }))
            wl = std::max(wl, expect_close("log_softmax_rows", zb.ptr, lp, lmag, 1e-5, o));
        expect_intact("logits", zb);
        expect_intact("nll", nb);
    }
    std::string shape = fmt("rows=%d vocab=%d threads=%d spread=%g", rows, vocab, threads, spread);
    line("nll_rows", shape, fmt("1e-5 rel (worst %.2g)", wn), before);
    line("log_softmax_rows", shape, fmt("1e-5 rel (worst %.2g)", wl), before);
}

int main() {
    logits(1, 1, 32, 1);        // a one-token vocabulary: nll 0
    logits(3, 1000, 256, 3);
    logits(2, 4099, 128, 10);   // more entries than threads, a sharp distribution
    logits(1, 50, 256, 1);      // more threads than entries
    logits(1, 49152, 256, 4);   // SmolLM2's vocabulary
    return finish("logits_test");
}
