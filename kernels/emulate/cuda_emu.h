// CPU emulation of CUDA's execution model, for checking the kernels' indexing, bounds, synchronization and arithmetic
// without a GPU (not their speed, nor nvcc's code generation: only a GPU run checks those).
//
// Every CUDA thread of a block is a fiber (ucontext) on one OS thread, and a scheduler decides who runs next. A thread
// runs until it reaches a barrier (__syncthreads, __syncwarp, a shuffle or vote) or exits; a barrier opens when every
// live thread of its scope waits at it. Because the order is the scheduler's, a kernel that reads shared memory before
// the barrier that should publish it gives a wrong answer deterministically under one of the orders, instead of
// once in a while as real threads would: tests run every launch under several orders (Order::ASCENDING runs warp 0 as
// far as it can before warp 1 starts, DESCENDING the reverse, SHUFFLED a seeded random pick per step; blocks run one
// after another in the same spirit). The scheduler also stops a launch with a message on:
//   - a deadlock (threads waiting at different barriers, e.g. __syncthreads inside a branch some threads skip);
//   - threads of one block waiting at different __syncthreads calls (the guide: undefined unless uniform), or lanes of
//     one warp at different shuffles;
//   - a full-mask shuffle or vote in a warp where a lane has exited or does not exist (blockDim not a multiple of 32);
//   - a segmentation fault: device buffers (emu::Buffer) sit against PROT_NONE guard pages, so a read or write past
//     either end faults, and the handler names the kernel, block and thread.
// Exited threads count as arrived at __syncthreads and __syncwarp, as on sm_70 and later.
// Dynamic shared memory (extern __shared__ T name[]) is rewritten by run.sh into a pointer to emu::dynamic_shared(),
// which is filled with 0xff bytes (NaN as float and double) before each block, so an unwritten read shows. Static
// __shared__ variables are function statics in the section emu_shared: blocks run one at a time, so each block has them
// to itself, and the section is filled with 0xff before each block too (no block inherits another's values).
// Math: fmaf/fma are fused as on the GPU (libm's correctly rounded fma); expf/logf/exp/log are glibc's (the GPU's may
// differ by an ulp or two: compare those with a relative tolerance); division, sqrt and conversions are IEEE
// correctly rounded as CUDA's non-approximate forms; build with -ffp-contract=off so g++ fuses nothing nvcc would not.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <signal.h>
#include <source_location>
#include <string>
#include <sys/mman.h>
#include <type_traits>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __shared__ __attribute__((section("emu_shared"))) static
#define __constant__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)
#define __CUDACC__EMULATED 1

struct dim3 {
    unsigned x = 1, y = 1, z = 1;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
inline float2 make_float2(float x, float y) { return {x, y}; }
inline float4 make_float4(float x, float y, float z, float w) { return {x, y, z, w}; }

inline dim3 threadIdx, blockIdx, blockDim, gridDim;
using std::signbit;
using std::isnan;
using std::isinf;
using std::isfinite;
constexpr int warpSize = 32;

namespace emu {

enum class Order { ASCENDING, DESCENDING, SHUFFLED };
inline const char* order_name(Order o) {
    return o == Order::ASCENDING ? "ascending" : o == Order::DESCENDING ? "descending" : "shuffled";
}

enum State { RUNNABLE, AT_BLOCK, AT_WARP, AT_SHUFFLE, DONE };

struct Fiber {
    ucontext_t ctx;
    State state = RUNNABLE;
    std::source_location site;
    unsigned long long slot = 0;   // a shuffle's or vote's value
};

inline const size_t kStack = 256 * 1024;
inline long page() { static long p = sysconf(_SC_PAGESIZE); return p; }

struct Launch {
    std::string kernel = "?";
    std::vector<Fiber> fibers;
    std::vector<char*> stacks;       // each with a PROT_NONE page below it
    int n = 0, current = -1;
    bool running = false, failed = false;
    std::string error;
    ucontext_t scheduler;
    std::function<void()> body;
    std::vector<unsigned char> dynamic;
    std::mt19937_64 rng{12345};
};
inline Launch L;

inline std::string where(const std::source_location& s) {
    const char* f = s.file_name();
    const char* slash = strrchr(f, '/');
    return std::string(slash ? slash + 1 : f) + ":" + std::to_string(s.line());
}

inline std::string thread_name(int t) {
    char b[160];
    snprintf(b, sizeof b, "block (%u,%u,%u) thread (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z, t % blockDim.x,
             t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y));
    return b;
}

inline void yield() { swapcontext(&L.fibers[L.current].ctx, &L.scheduler); }

// Stops the launch: the scheduler abandons the block (fiber stacks hold nothing to destroy) and launch() returns false.
inline void fault(const std::string& what) {
    if (!L.failed) {
        L.failed = true;
        L.error = what;
    }
    if (L.current >= 0) {
        L.fibers[L.current].state = DONE;
        yield();
    }
}

inline int warp_of(int t) { return t / 32; }
inline int warp_lanes(int w) { return std::min(32, L.n - 32 * w); }

// Opens the warp's barrier when every live lane waits at it (lanes at different shuffles are a bug).
inline void check_warp(int w) {
    int lo = 32 * w, hi = lo + warp_lanes(w);
    int waiting = 0, done = 0;
    bool shuffle = false;
    const Fiber* first = nullptr;
    for (int t = lo; t < hi; t++) {
        const Fiber& f = L.fibers[t];
        if (f.state == AT_WARP || f.state == AT_SHUFFLE) {
            waiting++;
            shuffle |= f.state == AT_SHUFFLE;
            if (!first) first = &f;
            else if (f.state != first->state || (f.state == AT_SHUFFLE && (f.site.line() != first->site.line() ||
                                                                              strcmp(f.site.file_name(), first->site.file_name()))))
                fault("warp " + std::to_string(w) + " of " + thread_name(t) + ": lanes wait at different warp barriers (" +
                      where(first->site) + " and " + where(f.site) + ")");
        } else if (f.state == DONE) done++;
    }
    if (waiting == 0 || waiting + done < hi - lo) return;
    if (shuffle && (done > 0 || hi - lo < 32))
        fault("full-mask shuffle/vote at " + where(first->site) + " in warp " + std::to_string(w) + " of block (" +
              std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," + std::to_string(blockIdx.z) + ") with only " +
              std::to_string(waiting) + " of 32 lanes present (exited or beyond blockDim)");
    for (int t = lo; t < hi; t++)
        if (L.fibers[t].state == AT_WARP || L.fibers[t].state == AT_SHUFFLE) L.fibers[t].state = RUNNABLE;
}

inline void check_block() {
    int waiting = 0, done = 0;
    const Fiber* first = nullptr;
    for (int t = 0; t < L.n; t++) {
        const Fiber& f = L.fibers[t];
        if (f.state == AT_BLOCK) {
            waiting++;
            if (!first) first = &f;
            else if (f.site.line() != first->site.line() || strcmp(f.site.file_name(), first->site.file_name()))
                fault(thread_name(t) + " waits at __syncthreads " + where(f.site) + " while another thread waits at " +
                      where(first->site) + " (a __syncthreads the block does not reach uniformly)");
        } else if (f.state == DONE) done++;
    }
    if (waiting == 0 || waiting + done < L.n) return;
    for (auto& f : L.fibers)
        if (f.state == AT_BLOCK) f.state = RUNNABLE;
}

inline void arrive(State s, const std::source_location& site) {
    if (!L.running) {
        fprintf(stderr, "emulation: a barrier outside a launch at %s\n", where(site).c_str());
        exit(2);
    }
    Fiber& f = L.fibers[L.current];
    f.state = s;
    f.site = site;
    if (s == AT_BLOCK) check_block();
    else check_warp(warp_of(L.current));
    yield();
}

inline void trampoline() {
    L.body();
    L.fibers[L.current].state = DONE;
    check_warp(warp_of(L.current));
    check_block();
    swapcontext(&L.fibers[L.current].ctx, &L.scheduler);
}

inline std::string describe_states() {
    std::string s;
    for (int t = 0; t < L.n && s.size() < 600; t++) {
        const Fiber& f = L.fibers[t];
        if (f.state == AT_BLOCK || f.state == AT_WARP || f.state == AT_SHUFFLE)
            s += " t" + std::to_string(t) + (f.state == AT_BLOCK ? "@__syncthreads " : f.state == AT_WARP ? "@__syncwarp " : "@shuffle ") +
                 where(f.site) + ";";
    }
    return s;
}

// Static __shared__ variables live in the section emu_shared (see the macro); the linker brackets it with these.
extern "C" char __start_emu_shared[] __attribute__((weak));
extern "C" char __stop_emu_shared[] __attribute__((weak));
inline void poison_static_shared() {
    if (__start_emu_shared && __stop_emu_shared) memset(__start_emu_shared, 0xff, __stop_emu_shared - __start_emu_shared);
}

inline void run_block(Order order) {
    for (int t = 0; t < L.n; t++) {
        Fiber& f = L.fibers[t];
        f.state = RUNNABLE;
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = L.stacks[t];
        f.ctx.uc_stack.ss_size = kStack;
        f.ctx.uc_link = nullptr;
        makecontext(&f.ctx, trampoline, 0);
    }
    std::fill(L.dynamic.begin(), L.dynamic.end(), 0xff);
    poison_static_shared();
    std::vector<int> pick;
    while (!L.failed) {
        int next = -1;
        if (order == Order::ASCENDING) {
            for (int t = 0; t < L.n && next < 0; t++)
                if (L.fibers[t].state == RUNNABLE) next = t;
        } else if (order == Order::DESCENDING) {
            for (int t = L.n - 1; t >= 0 && next < 0; t--)
                if (L.fibers[t].state == RUNNABLE) next = t;
        } else {
            pick.clear();
            for (int t = 0; t < L.n; t++)
                if (L.fibers[t].state == RUNNABLE) pick.push_back(t);
            if (!pick.empty()) next = pick[L.rng() % pick.size()];
        }
        if (next < 0) {
            bool all = true;
            for (auto& f : L.fibers) all &= f.state == DONE;
            if (!all) {
                L.failed = true;
                L.error = "deadlock in block (" + std::to_string(blockIdx.x) + "," + std::to_string(blockIdx.y) + "," +
                          std::to_string(blockIdx.z) + "): threads wait at barriers that cannot open:" + describe_states();
            }
            return;
        }
        L.current = next;
        threadIdx = dim3(next % blockDim.x, next / blockDim.x % blockDim.y, next / (blockDim.x * blockDim.y));
        swapcontext(&L.scheduler, &L.fibers[next].ctx);
        L.current = -1;
    }
}

inline void on_segv(int, siginfo_t* info, void*) {
    char b[512];
    int n = snprintf(b, sizeof b, "emulation: segmentation fault at %p in kernel %s, %s: an access outside a device buffer "
                                  "(or a fiber's stack overflow)\n",
                     info->si_addr, L.kernel.c_str(), L.current >= 0 ? thread_name(L.current).c_str() : "outside any thread");
    if (write(2, b, n) < 0) {}
    _exit(3);
}

inline void install_handler() {
    static bool done = false;
    if (done) return;
    done = true;
    static std::vector<char> alt(1 << 16);
    stack_t ss{};
    ss.ss_sp = alt.data();
    ss.ss_size = alt.size();
    sigaltstack(&ss, nullptr);
    struct sigaction sa{};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &sa, nullptr);
    sigaction(SIGBUS, &sa, nullptr);
}

inline void ensure_stacks(int n) {
    while ((int) L.stacks.size() < n) {
        size_t len = kStack + page();
        char* p = (char*) mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) { perror("mmap"); exit(2); }
        mprotect(p, page(), PROT_NONE);
        L.stacks.push_back(p + page());
    }
}

inline std::string last_error;

// Runs body() as the kernel <<<grid, block, sharedBytes>>> under `order`; false (and last_error) when the launch
// faulted. Blocks run in x-fastest order (reversed for DESCENDING, permuted for SHUFFLED).
inline bool launch(const char* kernel, dim3 grid, dim3 block, size_t sharedBytes, Order order, std::function<void()> body) {
    install_handler();
    int n = block.x * block.y * block.z;
    if (n <= 0 || n > 1024) {
        last_error = std::string(kernel) + ": block of " + std::to_string(n) + " threads (CUDA allows 1..1024)";
        return false;
    }
    if (grid.y > 65535 || grid.z > 65535) {
        last_error = std::string(kernel) + ": grid y/z above 65535";
        return false;
    }
    ensure_stacks(n);
    L.kernel = kernel;
    L.n = n;
    L.fibers.assign(n, Fiber{});
    L.failed = false;
    L.error.clear();
    L.body = std::move(body);
    L.dynamic.assign(sharedBytes, 0xff);
    L.running = true;
    gridDim = grid;
    blockDim = block;
    std::vector<dim3> blocks;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) blocks.emplace_back(x, y, z);
    if (order == Order::DESCENDING) std::reverse(blocks.begin(), blocks.end());
    if (order == Order::SHUFFLED) std::shuffle(blocks.begin(), blocks.end(), L.rng);
    for (auto& b : blocks) {
        blockIdx = b;
        run_block(order);
        if (L.failed) break;
    }
    L.running = false;
    threadIdx = dim3(0, 0, 0);
    if (L.failed) last_error = std::string(kernel) + " (" + order_name(order) + " order): " + L.error;
    return !L.failed;
}

inline void* dynamic_shared() {
    if (!L.running) { fprintf(stderr, "emulation: extern __shared__ outside a launch\n"); exit(2); }
    return L.dynamic.data();
}

// A device allocation of n T's between PROT_NONE guard pages: the data starts 256-byte aligned (as cudaMalloc's) right
// after the lower guard, and the upper guard follows the last page; the bytes between the end and that page are a 0xa5
// canary that intact() checks (a write past the end that stayed inside the last page).
template <class T> struct Buffer {
    T* ptr = nullptr;
    size_t n = 0;
    char* base = nullptr;
    size_t len = 0;
    Buffer() = default;
    explicit Buffer(size_t count) { allocate(count); }
    Buffer(size_t count, T value) { allocate(count); std::fill(ptr, ptr + count, value); }
    Buffer(const std::vector<T>& v) { allocate(v.size()); if (!v.empty()) memcpy(ptr, v.data(), v.size() * sizeof(T)); }
    Buffer(const Buffer&) = delete;
    Buffer& operator=(const Buffer&) = delete;
    Buffer(Buffer&& o) noexcept { *this = std::move(o); }
    Buffer& operator=(Buffer&& o) noexcept { std::swap(ptr, o.ptr); std::swap(n, o.n); std::swap(base, o.base); std::swap(len, o.len); return *this; }
    ~Buffer() { if (base) munmap(base, len); }
    void allocate(size_t count) {
        n = count;
        size_t bytes = count * sizeof(T), pg = page(), data = (bytes + pg - 1) / pg * pg;
        if (data == 0) data = pg;
        // the data ends as close to the upper guard as 256-byte alignment of its start allows
        size_t start = (data - bytes) / 256 * 256;
        len = data + 2 * pg;
        base = (char*) mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) { perror("mmap"); exit(2); }
        mprotect(base, pg, PROT_NONE);
        mprotect(base + pg + data, pg, PROT_NONE);
        memset(base + pg, 0xa5, data);
        ptr = reinterpret_cast<T*>(base + pg + start);
    }
    T* data() const { return ptr; }
    T* begin() const { return ptr; }
    T* end() const { return ptr + n; }
    T& operator[](size_t i) const { return ptr[i]; }
    size_t size() const { return n; }
    std::vector<T> host() const { return std::vector<T>(ptr, ptr + n); }
    bool intact() const {
        size_t pg = page(), data = len - 2 * pg;
        const unsigned char* p = reinterpret_cast<const unsigned char*>(ptr + n), *end = reinterpret_cast<unsigned char*>(base + pg + data);
        for (; p < end; p++)
            if (*p != 0xa5) return false;
        const unsigned char* q = reinterpret_cast<unsigned char*>(base + pg);
        for (; q < reinterpret_cast<const unsigned char*>(ptr); q++)
            if (*q != 0xa5) return false;
        return true;
    }
};

template <class T> inline unsigned long long to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    unsigned long long b = 0;
    memcpy(&b, &v, sizeof(T));
    return b;
}
template <class T> inline T from_bits(unsigned long long b) {
    T v;
    memcpy(&v, &b, sizeof(T));
    return v;
}

inline void require_full(unsigned mask, const std::source_location& site) {
    if (mask != 0xffffffffu) fault("shuffle/vote with mask " + std::to_string(mask) + " at " + where(site) +
                                   ": only full masks are emulated");
}

// Every lane publishes its value, the warp meets, each lane reads its source, the warp meets again (so no lane
// overwrites its slot before every reader has it).
template <class T> inline T exchange(T v, int srcLane, const std::source_location& site) {
    int t = L.current;
    L.fibers[t].slot = to_bits(v);
    arrive(AT_SHUFFLE, site);
    T r = from_bits<T>(L.fibers[32 * warp_of(t) + srcLane].slot);
    arrive(AT_SHUFFLE, site);
    return r;
}

inline int lane() { return L.current % 32; }

} // namespace emu

#define EMU_SITE std::source_location site = std::source_location::current()

inline void __syncthreads(EMU_SITE) { emu::arrive(emu::AT_BLOCK, site); }
inline void __syncwarp(unsigned mask = 0xffffffffu, EMU_SITE) {
    emu::require_full(mask, site);
    emu::arrive(emu::AT_WARP, site);
}
inline void __threadfence_block() {}
inline void __threadfence() {}

template <class T> inline T __shfl_sync(unsigned mask, T v, int src, int width = 32, EMU_SITE) {
    emu::require_full(mask, site);
    int lane = emu::lane();
    return emu::exchange(v, (lane / width) * width + ((src % width) + width) % width, site);
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T v, int laneMask, int width = 32, EMU_SITE) {
    emu::require_full(mask, site);
    int lane = emu::lane(), src = lane ^ laneMask;
    if (src / width != lane / width) src = lane;   // outside the lane's segment: its own value
    return emu::exchange(v, src, site);
}
template <class T> inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32, EMU_SITE) {
    emu::require_full(mask, site);
    int lane = emu::lane();
    int src = (lane % width) + (int) delta < width ? lane + (int) delta : lane;
    return emu::exchange(v, src, site);
}
template <class T> inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32, EMU_SITE) {
    emu::require_full(mask, site);
    int lane = emu::lane();
    int src = (lane % width) >= (int) delta ? lane - (int) delta : lane;
    return emu::exchange(v, src, site);
}
inline unsigned __ballot_sync(unsigned mask, int pred, EMU_SITE) {
    emu::require_full(mask, site);
    int t = emu::L.current, base = 32 * emu::warp_of(t);
    emu::L.fibers[t].slot = pred != 0;
    emu::arrive(emu::AT_SHUFFLE, site);
    unsigned r = 0;
    for (int i = 0; i < emu::warp_lanes(emu::warp_of(t)); i++)
        if (emu::L.fibers[base + i].slot) r |= 1u << i;
    emu::arrive(emu::AT_SHUFFLE, site);
    return r;
}
inline int __any_sync(unsigned mask, int pred, EMU_SITE) { return __ballot_sync(mask, pred, site) != 0; }
inline int __all_sync(unsigned mask, int pred, EMU_SITE) { return __ballot_sync(mask, pred, site) == mask; }
inline unsigned __activemask() { return 0xffffffffu; }

// ---- arithmetic -------------------------------------------------------------------------------------------------------
template <class A, class B> inline auto min(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return std::fmin((C) a, (C) b);
    else return (C) a < (C) b ? (C) a : (C) b;
}
template <class A, class B> inline auto max(A a, B b) {
    using C = std::common_type_t<A, B>;
    if constexpr (std::is_floating_point_v<C>) return std::fmax((C) a, (C) b);
    else return (C) a > (C) b ? (C) a : (C) b;
}

inline float __int_as_float(int v) { return emu::from_bits<float>((unsigned) v); }
inline float __uint_as_float(unsigned v) { return emu::from_bits<float>(v); }
inline int __float_as_int(float v) { return (int) (unsigned) emu::to_bits(v); }
inline unsigned __float_as_uint(float v) { return (unsigned) emu::to_bits(v); }
inline double __longlong_as_double(long long v) { return emu::from_bits<double>((unsigned long long) v); }
inline long long __double_as_longlong(double v) { return (long long) emu::to_bits(v); }

inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fmaf_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
inline float __frcp_rn(float a) { return 1.f / a; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fdividef(float a, float b) { return a / b; }   // approximate on the GPU (2 ulp)
inline float __expf(float a) { return std::exp(a); }         // approximate on the GPU
inline float __logf(float a) { return std::log(a); }
inline float __saturatef(float a) { return a != a ? 0.f : a < 0 ? 0.f : a > 1 ? 1.f : a; }
inline float rsqrtf(float a) { return 1.f / std::sqrt(a); }
inline double rsqrt(double a) { return 1.0 / std::sqrt(a); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }
inline float __double2float_rn(double v) { return (float) v; }
inline int __float2int_rn(float v) { return (int) std::nearbyint(v); }
inline int __double2int_rn(double v) { return (int) std::nearbyint(v); }
inline float __int2float_rn(int v) { return (float) v; }

template <class T> inline T __ldg(const T* p) { return *p; }

// Atomics: fibers never interleave inside one, so a plain read-modify-write is atomic.
template <class T> inline T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicSub(T* p, T v) { T o = *p; *p = o - v; return o; }
template <class T> inline T atomicMin(T* p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <class T> inline T atomicMax(T* p, T v) { T o = *p; if (v > o) *p = v; return o; }
template <class T> inline T atomicExch(T* p, T v) { T o = *p; *p = v; return o; }
template <class T> inline T atomicCAS(T* p, T cmp, T v) { T o = *p; if (o == cmp) *p = v; return o; }
template <class T> inline T atomicOr(T* p, T v) { T o = *p; *p = o | v; return o; }

// ---- bf16 and fp16 ----------------------------------------------------------------------------------------------------
struct __nv_bfloat16 {
    unsigned short x;
};
inline __nv_bfloat16 __float2bfloat16(float f) {   // round to nearest even; NaN stays a quiet NaN
    unsigned u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return {(unsigned short) ((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return {(unsigned short) (u >> 16)};
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float(((unsigned) b.x) << 16); }
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short v) { return {v}; }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.x; }

struct __half {
    _Float16 v;
};
inline __half __float2half_rn(float f) { return {(_Float16) f}; }   // g++'s conversion rounds to nearest even
inline __half __float2half(float f) { return __float2half_rn(f); }
inline float __half2float(__half h) { return (float) h.v; }
inline unsigned short __half_as_ushort(__half h) { return emu::to_bits(h.v) & 0xffff; }
inline __half __ushort_as_half(unsigned short v) { return {emu::from_bits<_Float16>(v)}; }

// ---- nvcuda::wmma (16x16x16, bf16 or half inputs, float accumulators) ----------------------------------------------------
// Every lane holds the whole tile (num_elements covers it all), so element-wise loops over x[] stay correct whatever
// layout they assume not; load/store/mma are warp-collective: each meets the warp before and after (a lane that skips
// one deadlocks, as the GPU's would misbehave). mma_sync sums each dot product in k order with float FMAs: the tensor
// cores' order and internal precision are unspecified, so compare wmma results with a tolerance.
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

inline float emu_float(float v) { return v; }
inline float emu_float(__nv_bfloat16 v) { return __bfloat162float(v); }
inline float emu_float(__half v) { return __half2float(v); }
template <class T> inline T emu_from_float(float v);
template <> inline float emu_from_float<float>(float v) { return v; }
template <> inline __nv_bfloat16 emu_from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <> inline __half emu_from_float<__half>(float v) { return __float2half_rn(v); }

template <class Use, int M, int N, int K> struct shape;
template <int M, int N, int K> struct shape<matrix_a, M, N, K> { static constexpr int rows = M, cols = K; };
template <int M, int N, int K> struct shape<matrix_b, M, N, K> { static constexpr int rows = K, cols = N; };
template <int M, int N, int K> struct shape<accumulator, M, N, K> { static constexpr int rows = M, cols = N; };

template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static constexpr int R = shape<Use, M, N, K>::rows, C = shape<Use, M, N, K>::cols;
    static constexpr int num_elements = R * C;
    T x[R * C];   // row-major [R][C]
};

inline void emu_warp(const std::source_location& site) { emu::arrive(emu::AT_SHUFFLE, site); }

template <class Use, int M, int N, int K, class T, class Layout>
inline void fill_fragment(fragment<Use, M, N, K, T, Layout>& f, T v) {
    for (auto& e : f.x) e = v;
}

template <class Use, int M, int N, int K, class T, class Layout, class P>
inline void load_matrix_sync(fragment<Use, M, N, K, T, Layout>& f, const P* p, unsigned ldm, EMU_SITE) {
    emu_warp(site);
    constexpr bool col = std::is_same_v<Layout, col_major>;
    using F = fragment<Use, M, N, K, T, Layout>;
    for (int r = 0; r < F::R; r++)
        for (int c = 0; c < F::C; c++) f.x[r * F::C + c] = col ? p[(size_t) c * ldm + r] : p[(size_t) r * ldm + c];
    emu_warp(site);
}

template <int M, int N, int K, class T, class P>
inline void load_matrix_sync(fragment<accumulator, M, N, K, T>& f, const P* p, unsigned ldm, layout_t layout, EMU_SITE) {
    emu_warp(site);
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++) f.x[r * N + c] = layout == mem_col_major ? p[(size_t) c * ldm + r] : p[(size_t) r * ldm + c];
    emu_warp(site);
}

template <int M, int N, int K, class T, class P>
inline void store_matrix_sync(P* p, const fragment<accumulator, M, N, K, T>& f, unsigned ldm, layout_t layout, EMU_SITE) {
    emu_warp(site);
    if (emu::lane() == 0)
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++) (layout == mem_col_major ? p[(size_t) c * ldm + r] : p[(size_t) r * ldm + c]) = f.x[r * N + c];
    emu_warp(site);
}

template <int M, int N, int K, class TA, class LA, class TB, class LB, class TC>
inline void mma_sync(fragment<accumulator, M, N, K, TC>& d, const fragment<matrix_a, M, N, K, TA, LA>& a,
                     const fragment<matrix_b, M, N, K, TB, LB>& b, const fragment<accumulator, M, N, K, TC>& c, EMU_SITE) {
    emu_warp(site);
    TC out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = emu_float(c.x[i * N + j]);
            for (int k = 0; k < K; k++) acc = std::fmaf(emu_float(a.x[i * K + k]), emu_float(b.x[k * N + j]), acc);
            out[i * N + j] = emu_from_float<TC>(acc);
        }
    std::copy(out, out + M * N, d.x);
    emu_warp(site);
}
} // namespace wmma
} // namespace nvcuda
