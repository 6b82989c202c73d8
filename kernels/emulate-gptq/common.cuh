// CPU emulation of the CUDA execution model for checking kernels' indexing and synchronization (not their speed):
// every CUDA thread of a block is a std::thread, __syncthreads/__syncwarp are barriers, blocks run one after another
// (so function-static "shared" arrays are per block).
#pragma once
#include <algorithm>
#include <barrier>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <vector>
using std::min; using std::max;
struct dim3s { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3s threadIdx, blockIdx;
inline dim3s blockDim, gridDim;
inline thread_local int emu_tid;
inline std::barrier<>* emu_block_bar;
inline std::vector<std::unique_ptr<std::barrier<>>> emu_warp_bars;
inline std::vector<double> emu_xch;
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
#define LOWBIT_WARP 32
inline void __syncthreads() { emu_block_bar->arrive_and_wait(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu_warp_bars[emu_tid / 32]->arrive_and_wait(); }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline double __shfl_xor_sync(unsigned, double v, int o) {
    int lane = emu_tid % 32, base = emu_tid - lane;
    emu_xch[emu_tid] = v;
    __syncwarp();
    double r = emu_xch[base + (lane ^ o)];
    __syncwarp();
    return r;
}
template <class F> void emu_launch(dim3s grid, dim3s block, F f) {
    gridDim = grid; blockDim = block;
    int nt = block.x * block.y * block.z;
    emu_xch.assign(nt, 0.0);
    for (unsigned gz = 0; gz < grid.z; gz++) for (unsigned gy = 0; gy < grid.y; gy++) for (unsigned gx = 0; gx < grid.x; gx++) {
        std::barrier<> bb(nt);
        emu_block_bar = &bb;
        emu_warp_bars.clear();
        for (int w = 0; w * 32 < nt; w++) emu_warp_bars.push_back(std::make_unique<std::barrier<>>(std::min(32, nt - 32 * w)));
        std::vector<std::thread> ts;
        for (int t = 0; t < nt; t++)
            ts.emplace_back([&, t] {
                threadIdx = {unsigned(t % block.x), unsigned(t / block.x % block.y), unsigned(t / (block.x * block.y))};
                blockIdx = {gx, gy, gz};
                emu_tid = t;
                f();
            });
        for (auto& t : ts) t.join();
    }
}
