// Helpers shared by the kernels: warp and block reductions in float32, bf16 loads. Every kernel accumulates in float32.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

#define LOWBIT_WARP 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result. `scratch` holds 32 floats.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    int lane = threadIdx.x % LOWBIT_WARP, warp = threadIdx.x / LOWBIT_WARP, warps = blockDim.x / LOWBIT_WARP;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.f;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v, float* scratch) {
    int lane = threadIdx.x % LOWBIT_WARP, warp = threadIdx.x / LOWBIT_WARP, warps = blockDim.x / LOWBIT_WARP;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -INFINITY;
    return warp_max(v);
}

__device__ __forceinline__ float bf16_to_float(uint16_t b) {
    return __uint_as_float(((uint32_t) b) << 16);
}
