// The emulation catches what it is for: each toy kernel here has one deliberate bug of a class the real kernels could
// have, and the case passes only when cuda_emu.h reports it (a test harness that cannot fail checks nothing).
#include "test_util.h"
#include "common.cuh"
#include <fcntl.h>
#include <sys/wait.h>

inline float warp_sum_emu(float v);

using namespace t;

// Sums 64 values through shared memory but reads the partial sums without the __syncthreads that publishes them.
static void missing_barrier(const float* x, float* out) {
    __shared__ float part[2];
    int w = threadIdx.x / 32;
    float v = warp_sum_emu(x[threadIdx.x]);
    if (threadIdx.x % 32 == 0) part[w] = v;
    // bug: no __syncthreads() here
    if (threadIdx.x == 0) *out = part[0] + part[1];
}

// Initializes its shared flag in block 0 only: every later block reads shared memory nobody wrote.
static void uninitialized_shared(float* out) {
    __shared__ float s;
    if (blockIdx.x == 0 && threadIdx.x == 0) s = 1;   // bug: blockIdx.x == 0
    __syncthreads();
    if (threadIdx.x == 0) out[blockIdx.x] = s;
}

static void divergent_barrier(float* out) {
    if (threadIdx.x < 16) __syncthreads();   // bug: half the block never reaches it
    else out[threadIdx.x] = 1;
    __syncthreads();
}

static void shuffle_after_exit(const float* x, float* out, int n) {
    if ((int) threadIdx.x >= n) return;   // bug: lanes leave, then the rest shuffle with a full mask
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, x[threadIdx.x], 1);
}

static void write_past_end(float* y, int n) {
    int i = threadIdx.x;
    if (i <= n) y[i] = 1;   // bug: <= writes y[n]
}

static void read_past_end(const float* x, float* y, long n) {
    if (threadIdx.x == 0) y[0] = x[n + 64];   // bug: past the end, into the guard page
}

inline float warp_sum_emu(float v) { return warp_sum(v); }

// The wmma emulation itself (no kernel uses wmma yet): one warp's 16x16x16 bf16 product against a double loop.
static void wmma_tile(const __nv_bfloat16* a, const __nv_bfloat16* b, float* y) {
    using namespace nvcuda;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    wmma::fill_fragment(acc, 0.f);
    wmma::load_matrix_sync(fa, a, 16);
    wmma::load_matrix_sync(fb, b, 16);
    wmma::mma_sync(acc, fa, fb, acc);
    wmma::store_matrix_sync(y, acc, 16, wmma::mem_row_major);
}

int main() {
    int before = failures;
    {   // the missing barrier gives the wrong sum under at least one order
        std::vector<float> x(64, 1.f);
        bool caught = false;
        for (auto o : ORDERS) {
            emu::Buffer<float> xb(x), out(1);
            caught |= emu::launch("missing_barrier", dim3(1), dim3(64), 0, o, [&] { missing_barrier(xb.ptr, out.ptr); }) && out[0] != 64.f;
        }
        if (!caught) fail("a missing __syncthreads went unnoticed under every order");
        line("selftest", "missing __syncthreads", caught ? "caught (wrong sum)" : "NOT caught", before);
    }
    before = failures;
    {   // static __shared__ is poisoned (NaN) before each block, so block 1 cannot inherit block 0's value
        emu::Buffer<float> out(2);
        emu::launch("uninitialized_shared", dim3(2), dim3(32), 0, emu::Order::ASCENDING, [&] { uninitialized_shared(out.ptr); });
        bool caught = out[0] == 1 && std::isnan(out[1]);
        if (!caught) fail("a block reading static shared memory only an earlier block wrote went unnoticed");
        line("selftest", "uninitialized static __shared__", caught ? "caught (NaN)" : "NOT caught", before);
    }
    before = failures;
    {
        emu::Buffer<float> out(64);
        bool ok = emu::launch("divergent_barrier", dim3(1), dim3(64), 0, emu::Order::ASCENDING, [&] { divergent_barrier(out.ptr); });
        if (ok) fail("a __syncthreads reached by half the block went unnoticed");
        line("selftest", "divergent __syncthreads", ok ? "NOT caught" : "caught: " + emu::last_error.substr(0, 60), before);
    }
    before = failures;
    {
        emu::Buffer<float> x(64, 1.f), out(64);
        bool ok = emu::launch("shuffle_after_exit", dim3(1), dim3(64), 0, emu::Order::ASCENDING, [&] { shuffle_after_exit(x.ptr, out.ptr, 40); });
        if (ok) fail("a full-mask shuffle after lanes exited went unnoticed");
        line("selftest", "full-mask shuffle, exited lanes", ok ? "NOT caught" : "caught", before);
    }
    before = failures;
    {
        emu::Buffer<float> x(48, 1.f), out(48);
        bool ok = emu::launch("partial_warp", dim3(1), dim3(48), 0, emu::Order::ASCENDING, [&] { shuffle_after_exit(x.ptr, out.ptr, 48); });
        if (ok) fail("a full-mask shuffle in a 16-lane warp went unnoticed");
        line("selftest", "full-mask shuffle, blockDim 48", ok ? "NOT caught" : "caught", before);
    }
    before = failures;
    {
        emu::Buffer<float> y(37);
        emu::launch("write_past_end", dim3(1), dim3(64), 0, emu::Order::ASCENDING, [&] { write_past_end(y.ptr, 37); });
        bool caught = !y.intact();
        if (!caught) fail("a write one past the end went unnoticed");
        line("selftest", "write one past the end", caught ? "caught (canary)" : "NOT caught", before);
    }
    before = failures;
    {
        fflush(stdout);
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", 1);
            dup2(devnull, 2);
            emu::Buffer<float> x(100), y(1);
            emu::launch("read_past_end", dim3(1), dim3(32), 0, emu::Order::ASCENDING, [&] { read_past_end(x.ptr, y.ptr, 100); });
            _exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        bool caught = WIFEXITED(status) && WEXITSTATUS(status) == 3;
        if (!caught) fail("a read into the guard page went unnoticed");
        line("selftest", "read past the end (guard page)", caught ? "caught (fault, exit 3)" : "NOT caught", before);
    }
    before = failures;
    {
        std::vector<__nv_bfloat16> a(256), b(256);
        for (int i = 0; i < 256; i++) { a[i] = __float2bfloat16((float) gauss()); b[i] = __float2bfloat16((float) gauss()); }
        std::vector<double> want(256), mag(256);
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++)
                for (int k = 0; k < 16; k++) {   // a row-major [i][k], b col-major: b[j][k] is B[k][j]
                    double p = (double) __bfloat162float(a[i * 16 + k]) * __bfloat162float(b[j * 16 + k]);
                    want[i * 16 + j] += p;
                    mag[i * 16 + j] += std::fabs(p);
                }
        double worst = 0;
        for (auto o : ORDERS) {
            emu::Buffer<__nv_bfloat16> ab(a), bb(b);
            emu::Buffer<float> y(256);
            if (run("wmma_tile", dim3(1), dim3(32), 0, o, [&] { wmma_tile(ab.ptr, bb.ptr, y.ptr); }))
                worst = std::max(worst, expect_close("wmma 16x16x16 bf16", y.ptr, want, mag, 1e-6, o));
        }
        line("selftest", "wmma 16x16x16 bf16 emulation", fmt("1e-6 rel (worst %.2g)", worst), before);
    }
    return finish("selftest");
}
