// Dense y[rows][out] = x[rows][in] W^T + b with W [out][in] row-major (the checkpoint's layout), float32 activations and
// float32 accumulation. The fp32-weight kernel uses plain FMAs (no TF32), so its products differ from the CPU's only in
// summation order (about 1e-6 relative). The bf16-weight kernel reads bf16 weights and widens them to fp32 before the
// same FMAs: its only departure from fp32 is the weights' bf16 rounding (8 significant bits, relative 2^-9 per weight),
// which is what the CPU's bf16 path computes too, so GPU bf16 and CPU bf16 agree as closely as the two fp32 paths do.
#include "common.cuh"

// A block computes a TILE_R x TILE_O tile of y with 256 threads, each a 4 x 4 sub-tile; K is walked TILE_K at a time
// through shared memory, both operands stored k-major so the inner loop reads 4 consecutive rows and 4 consecutive
// outputs as broadcasts.
#define TILE_R 64
#define TILE_O 64
#define TILE_K 16

__device__ __forceinline__ float load_weight(const float* w, long i) { return w[i]; }
__device__ __forceinline__ float load_weight(const uint16_t* w, long i) { return bf16_to_float(w[i]); }

template <typename W>
__device__ __forceinline__ void gemm_tile(const float* __restrict__ x, const W* __restrict__ w, const float* __restrict__ bias,
                                          float* __restrict__ y, int rows, int out, int in) {
    __shared__ float xs[TILE_K][TILE_R + 4];
    __shared__ float ws[TILE_K][TILE_O + 4];
    int tid = threadIdx.x;
    int tr = tid / 16, to = tid % 16;  // this thread's rows tr*4.., outputs to*4..
    int r0 = blockIdx.y * TILE_R, o0 = blockIdx.x * TILE_O;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < in; k0 += TILE_K) {
        // 64 x 16 values per operand, 4 per thread; 16 consecutive threads read 16 consecutive k of one row (coalesced)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int idx = tid + e * 256;           // 0..1023 over [64][16]
            int rr = idx / TILE_K, kk = idx % TILE_K;
            int r = r0 + rr, k = k0 + kk;
            xs[kk][rr] = (r < rows && k < in) ? x[(long) r * in + k] : 0.f;
            int o = o0 + rr;
            ws[kk][rr] = (o < out && k < in) ? load_weight(w, (long) o * in + k) : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < TILE_K; kk++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) a[i] = xs[kk][tr * 4 + i];
#pragma unroll
            for (int j = 0; j < 4; j++) b[j] = ws[kk][to * 4 + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int r = r0 + tr * 4 + i;
        if (r >= rows) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int o = o0 + to * 4 + j;
            if (o < out) y[(long) r * out + o] = acc[i][j] + (bias != nullptr ? bias[o] : 0.f);
        }
    }
}

// grid (ceil(out / 64), ceil(rows / 64)), 256 threads
extern "C" __global__ __launch_bounds__(256) void gemm_f32(const float* x, const float* w, const float* bias, float* y,
                                                           int rows, int out, int in) {
    gemm_tile<float>(x, w, bias, y, rows, out, in);
}

// W as bf16 bit patterns (the high half of the fp32, rounded to nearest even by lowbit.tensor.WeightFormat.toBf16)
extern "C" __global__ __launch_bounds__(256) void gemm_bf16(const float* x, const uint16_t* w, const float* bias, float* y,
                                                            int rows, int out, int in) {
    gemm_tile<uint16_t>(x, w, bias, y, rows, out, in);
}
