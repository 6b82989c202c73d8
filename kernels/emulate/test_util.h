// What every *_test.cpp shares: seeded inputs, the three scheduling orders, and comparisons that print one line per
// kernel and shape checked and count failures (main returns non-zero when any).
#pragma once
#include "cuda_emu.h"
#include <cinttypes>
#include <cstdarg>
#include <memory>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace t {

inline std::mt19937_64 rng(20261130);
inline double gauss() { static std::normal_distribution<double> d; return d(rng); }
inline std::vector<float> gauss_floats(size_t n, double sigma = 1.0) {
    std::vector<float> v(n);
    for (auto& x : v) x = (float) (sigma * gauss());
    return v;
}
inline int failures = 0, checks = 0;

constexpr emu::Order ORDERS[] = {emu::Order::ASCENDING, emu::Order::DESCENDING, emu::Order::SHUFFLED};

inline void fail(const std::string& what) {
    failures++;
    printf("MISMATCH %s\n", what.c_str());
}

// Runs the launch; a fault (deadlock, divergent barrier, partial-warp shuffle) is a failure of the case.
inline bool run(const char* kernel, dim3 grid, dim3 block, size_t shared, emu::Order order, std::function<void()> body) {
    if (emu::launch(kernel, grid, block, shared, order, std::move(body))) return true;
    fail(emu::last_error);
    return false;
}

template <class T> inline bool same_bits(T a, T b) { return emu::to_bits(a) == emu::to_bits(b); }

// Bit for bit (NaN payloads included): where the kernel does the twin's operations in the twin's order.
template <class T>
inline bool expect_bits(const std::string& what, const T* got, const std::vector<T>& want, emu::Order order) {
    int bad = 0;
    for (size_t i = 0; i < want.size(); i++)
        if (!same_bits(got[i], want[i])) {
            if (bad++ < 3)
                printf("  %s [%s] at %zu: got %.9g want %.9g\n", what.c_str(), emu::order_name(order), i, (double) got[i],
                       (double) want[i]);
        }
    if (bad) fail(what + " (" + emu::order_name(order) + "): " + std::to_string(bad) + " of " + std::to_string(want.size()) + " differ");
    return bad == 0;
}

// |got - want| <= rel * mag, mag the magnitude the result's error scales with (|want|, or the sum of |terms| of a dot
// product whose order the kernel changes). Returns the largest |got - want| / mag seen.
inline double expect_close(const std::string& what, const float* got, const std::vector<double>& want,
                           const std::vector<double>& mag, double rel, emu::Order order) {
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < want.size(); i++) {
        double m = mag[i] > 0 ? mag[i] : 1e-30, e = std::fabs((double) got[i] - want[i]) / m;
        if (!(e <= rel)) {
            if (bad++ < 3)
                printf("  %s [%s] at %zu: got %.9g want %.9g (error %.3g of magnitude %.3g)\n", what.c_str(),
                       emu::order_name(order), i, (double) got[i], want[i], e, m);
            e = std::isnan(e) ? INFINITY : e;
        }
        worst = std::max(worst, e);
    }
    if (bad) fail(what + " (" + emu::order_name(order) + "): " + std::to_string(bad) + " of " + std::to_string(want.size()) +
                  " beyond " + std::to_string(rel) + " relative");
    return worst;
}

template <class T> inline void expect_intact(const std::string& what, const emu::Buffer<T>& b) {
    if (!b.intact()) fail(what + ": a write outside its buffer (canary bytes changed)");
}

// One line per kernel and case, after its orders ran.
inline void line(const std::string& kernel, const std::string& shape, const std::string& how, int before) {
    checks++;
    printf("%-4s %-22s %-48s %s\n", failures == before ? "ok" : "FAIL", kernel.c_str(), shape.c_str(), how.c_str());
}

inline int finish(const char* file) {
    printf("%s: %d cases, %d mismatches\n", file, checks, failures);
    return failures != 0;
}

inline std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* f, ...) {
    char b[256];
    va_list a;
    va_start(a, f);
    vsnprintf(b, sizeof b, f, a);
    va_end(a);
    return b;
}

} // namespace t
