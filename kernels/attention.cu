// Causal softmax attention with grouped-query heads, flash-style: one block per (tile of ATT_Q queries, head); the
// keys and values are walked ATT_K at a time through shared memory and the softmax is accumulated online (running max
// and sum, the output rescaled when the max grows), so the T x T scores are never stored. Scores are float32 and scaled
// by 1/sqrt(headDim), as lowbit.tensor.Attention; the online rescaling changes only the rounding (about 1e-6 relative).
#include "common.cuh"

#define ATT_Q 32        // queries per block: 4 warps x 8 rows
#define ATT_K 64        // keys per shared-memory tile: each lane scores keys lane and lane + 32
#define ATT_ROWS 8      // query rows per warp
#define ATT_DMAX 256    // head_dim limit: each lane accumulates dimensions lane, lane + 32, ... (8 per row)

// q [T][heads][d], k and v [T][kvHeads][d], out [T][heads][d]; query i sees keys 0..i. grid (ceil(T / 32), heads),
// 128 threads, dynamic shared memory (ATT_Q * d + ATT_K * (d + 1) + ATT_K * d) floats.
extern "C" __global__ __launch_bounds__(128) void attention_causal(const float* __restrict__ q, const float* __restrict__ k,
                                                                   const float* __restrict__ v, float* __restrict__ out, int T,
                                                                   int heads, int kv_heads, int d, float scale) {
    extern __shared__ float smem[];
    float* qs = smem;                          // [ATT_Q][d]
    float* ks = qs + ATT_Q * d;                // [ATT_K][d + 1]: the pad puts lane j's key row in its own bank
    float* vs = ks + ATT_K * (d + 1);          // [ATT_K][d]
    int head = blockIdx.y, g = head / (heads / kv_heads);
    int q0 = blockIdx.x * ATT_Q;
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    long qStride = (long) heads * d, kvStride = (long) kv_heads * d;

    for (int i = threadIdx.x; i < ATT_Q * d; i += blockDim.x) {
        int r = i / d, c = i % d, t = q0 + r;
        qs[i] = t < T ? q[t * qStride + (long) head * d + c] : 0.f;
    }
    float m[ATT_ROWS], l[ATT_ROWS], acc[ATT_ROWS][ATT_DMAX / 32];
#pragma unroll
    for (int r = 0; r < ATT_ROWS; r++) {
        m[r] = -INFINITY;
        l[r] = 0.f;
#pragma unroll
        for (int i = 0; i < ATT_DMAX / 32; i++) acc[r][i] = 0.f;
    }
    int lastQuery = min(T, q0 + ATT_Q) - 1;
    for (int k0 = 0; k0 <= lastQuery; k0 += ATT_K) {
        __syncthreads();
        for (int i = threadIdx.x; i < ATT_K * d; i += blockDim.x) {
            int r = i / d, c = i % d, t = k0 + r;
            bool in = t < T;
            ks[r * (d + 1) + c] = in ? k[t * kvStride + (long) g * d + c] : 0.f;
            vs[r * d + c] = in ? v[t * kvStride + (long) g * d + c] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int r = 0; r < ATT_ROWS; r++) {
            int qr = warp * ATT_ROWS + r, qi = q0 + qr;
            if (qi >= T || k0 > qi) continue;  // uniform across the warp
            const float* qrow = qs + qr * d;
            const float* k0row = ks + lane * (d + 1);
            const float* k1row = ks + (lane + 32) * (d + 1);
            float s0 = 0.f, s1 = 0.f;
            for (int c = 0; c < d; c++) {
                float a = qrow[c];
                s0 = fmaf(a, k0row[c], s0);
                s1 = fmaf(a, k1row[c], s1);
            }
            s0 = k0 + lane <= qi ? s0 * scale : -INFINITY;
            s1 = k0 + lane + 32 <= qi ? s1 * scale : -INFINITY;
            float mNew = fmaxf(m[r], warp_max(fmaxf(s0, s1)));  // finite: key k0 <= qi is always in
            float corr = expf(m[r] - mNew);                    // 0 on the first tile (m = -inf)
            float p0 = expf(s0 - mNew), p1 = expf(s1 - mNew);
            l[r] = l[r] * corr + warp_sum(p0 + p1);
            m[r] = mNew;
#pragma unroll
            for (int i = 0; i < ATT_DMAX / 32; i++) acc[r][i] *= corr;
            int keys = min(ATT_K, qi - k0 + 1);
            for (int j = 0; j < keys; j++) {
                float p = __shfl_sync(0xffffffffu, j < 32 ? p0 : p1, j % 32);
                const float* vrow = vs + j * d;
#pragma unroll
                for (int i = 0; i < ATT_DMAX / 32; i++) {
                    int c = lane + 32 * i;
                    if (c < d) acc[r][i] = fmaf(p, vrow[c], acc[r][i]);
                }
            }
        }
    }
#pragma unroll
    for (int r = 0; r < ATT_ROWS; r++) {
        int qi = q0 + warp * ATT_ROWS + r;
        if (qi >= T) continue;
        float inv = 1.f / l[r];
        float* o = out + qi * qStride + (long) head * d;
#pragma unroll
        for (int i = 0; i < ATT_DMAX / 32; i++) {
            int c = lane + 32 * i;
            if (c < d) o[c] = acc[r][i] * inv;
        }
    }
}
