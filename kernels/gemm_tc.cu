// Dense y[rows][out] = x[rows][in] W^T + b on the tensor cores, for bf16 weights W [out][in] (DenseLinear's bf16 layout:
// row-major, each weight the high half of its fp32, rounded to nearest even). The activations are rounded to bf16 too,
// as they are staged into shared memory, because the tensor cores multiply bf16 by bf16; the products are summed in
// fp32 (wmma's float accumulator) and the bias is added in fp32 at the store. This is what transformers computes in bf16
// up to the activations' own rounding, and it departs from the CPU's bf16 path (fp32 activations times bf16 weights)
// by the activations' rounding: a relative 2^-9 per product, which gemm.cu's SIMT kernel did not have. DenseLinear sends
// only bf16 weights with 64 rows or more here; fp32 weights stay on gemm.cu's exact fp32 FMAs.
//
// Only sm_80 wmma (16x16x16 bf16 fragments, float accumulators): nothing Hopper-only, so the compute_80 PTX runs on
// Ampere, Hopper and later. The kernel never reads or writes a fragment's elements directly (their order inside a
// fragment is unspecified): accumulators go through shared memory before the bias and the bounds.
#include "common.cuh"
#include <mma.h>

// A block computes a TC_R x TC_O tile of y with 8 warps in a 4 x 2 grid, each warp a 32 x 32 sub-tile (2 x 2 fragments).
// K is walked TC_K at a time through two shared-memory buffers: while the warps multiply one, the next k-step's
// operands are already in registers (loaded from global memory before the multiply) and go to the other buffer after
// it, so global latency overlaps the tensor-core work and one barrier per k-step suffices.
#define TC_R 128
#define TC_O 64
#define TC_K 32
#define TC_THREADS 256
// Row strides in shared memory, padded past the tile so consecutive rows start in different banks. wmma wants the
// leading dimension a multiple of 16 bytes and every fragment's first element 32-byte aligned: 40 bf16 = 80 bytes and
// 68 floats = 272 bytes per row, with fragments 16 rows apart (1280 and 4352 bytes), satisfy both.
#define TC_LDS (TC_K + 8)
#define TC_LDC (TC_O + 4)

struct TcOperands {
    uint16_t x[2][TC_R * TC_LDS];   // bf16 activations, row-major [row][k]
    uint16_t w[2][TC_O * TC_LDS];   // bf16 weights, [out][k]: the col-major K x N operand B = W^T
};
// After the last k-step the operands are dead and their memory holds the fp32 accumulators for the store.
union __align__(128) TcShared {
    TcOperands op;
    float c[TC_R * TC_LDC];
};

// One k-step's operands in flight: each thread carries 4 x 4 activations (rows tid/8 + 32e, k (tid%8)*4 ..+3) and
// 8 weights (out tid/4, k (tid%4)*8 ..+7), whichever path loaded them.
struct TcStage {
    float4 x[4];
    uint4 w;   // 8 bf16
};

__device__ __forceinline__ void tc_load(TcStage& s, const float* __restrict__ x, const uint16_t* __restrict__ w, int rows,
                                        int out, int in, int r0, int o0, int k0, bool vecx, bool vecw) {
    int tid = threadIdx.x;
    int k = k0 + (tid % 8) * 4;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        int r = r0 + tid / 8 + 32 * e;
        const float* p = x + (long) r * in + k;
        if (vecx) {
            s.x[e] = r < rows && k < in ? *reinterpret_cast<const float4*>(p) : make_float4(0.f, 0.f, 0.f, 0.f);
        } else {
            bool ok = r < rows;
            s.x[e] = make_float4(ok && k < in ? p[0] : 0.f, ok && k + 1 < in ? p[1] : 0.f, ok && k + 2 < in ? p[2] : 0.f,
                                 ok && k + 3 < in ? p[3] : 0.f);
        }
    }
    int o = o0 + tid / 4;
    k = k0 + (tid % 4) * 8;
    const uint16_t* q = w + (long) o * in + k;
    if (vecw) {
        s.w = o < out && k < in ? *reinterpret_cast<const uint4*>(q) : uint4{0u, 0u, 0u, 0u};
    } else {
        uint32_t h[8];
#pragma unroll
        for (int j = 0; j < 8; j++) h[j] = o < out && k + j < in ? q[j] : 0u;
        s.w = uint4{h[0] | h[1] << 16, h[2] | h[3] << 16, h[4] | h[5] << 16, h[6] | h[7] << 16};
    }
}

__device__ __forceinline__ uint32_t tc_pack(float lo, float hi) {
    return (uint32_t) __bfloat16_as_ushort(__float2bfloat16_rn(lo)) |
           (uint32_t) __bfloat16_as_ushort(__float2bfloat16_rn(hi)) << 16;
}

__device__ __forceinline__ void tc_store(const TcStage& s, TcOperands& op, int buf) {
    int tid = threadIdx.x;
#pragma unroll
    for (int e = 0; e < 4; e++) {
        uint16_t* d = op.x[buf] + (tid / 8 + 32 * e) * TC_LDS + (tid % 8) * 4;
        *reinterpret_cast<uint2*>(d) = uint2{tc_pack(s.x[e].x, s.x[e].y), tc_pack(s.x[e].z, s.x[e].w)};
    }
    *reinterpret_cast<uint4*>(op.w[buf] + (tid / 4) * TC_LDS + (tid % 4) * 8) = s.w;
}

// grid (ceil(out / 64), ceil(rows / 128)), 256 threads. W as bf16 bit patterns, as gemm.cu's gemm_bf16 (same arguments).
extern "C" __global__ __launch_bounds__(TC_THREADS) void gemm_bf16_tc(const float* __restrict__ x, const uint16_t* __restrict__ w,
                                                                      const float* __restrict__ bias, float* __restrict__ y,
                                                                      int rows, int out, int in) {
    using namespace nvcuda;
    __shared__ TcShared sm;
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int wr = warp / 2, wc = warp % 2;   // this warp's rows wr*32.., outputs wc*32..
    int r0 = blockIdx.y * TC_R, o0 = blockIdx.x * TC_O;
    // 16-byte loads need every row to start 16-byte aligned: in a multiple of 4 floats (8 bf16) and an aligned base
    bool vecx = in % 4 == 0 && ((uintptr_t) x & 15) == 0;
    bool vecw = in % 8 == 0 && ((uintptr_t) w & 15) == 0;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++) wmma::fill_fragment(acc[i][j], 0.f);

    TcStage s;
    tc_load(s, x, w, rows, out, in, r0, o0, 0, vecx, vecw);
    tc_store(s, sm.op, 0);
    __syncthreads();
    int steps = (in + TC_K - 1) / TC_K;
    for (int t = 0; t < steps; t++) {
        int buf = t & 1;
        bool more = t + 1 < steps;
        if (more) tc_load(s, x, w, rows, out, in, r0, o0, (t + 1) * TC_K, vecx, vecw);
        const __nv_bfloat16* xs = reinterpret_cast<const __nv_bfloat16*>(sm.op.x[buf]);
        const __nv_bfloat16* ws = reinterpret_cast<const __nv_bfloat16*>(sm.op.w[buf]);
#pragma unroll
        for (int kk = 0; kk < TC_K; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> b[2];
#pragma unroll
            for (int i = 0; i < 2; i++) wmma::load_matrix_sync(a[i], xs + (wr * 32 + i * 16) * TC_LDS + kk, TC_LDS);
#pragma unroll
            for (int j = 0; j < 2; j++) wmma::load_matrix_sync(b[j], ws + (wc * 32 + j * 16) * TC_LDS + kk, TC_LDS);
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int j = 0; j < 2; j++) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
        }
        // the other buffer was last read in step t-1, which every warp finished before the barrier closing it
        if (more) tc_store(s, sm.op, buf ^ 1);
        __syncthreads();
    }

    // The barrier closing the last step lets the accumulators overwrite the operands. Each warp stores and reads back
    // only its own 32 x 32 region, so a warp barrier orders the two; a lane owns one output column (coalesced stores).
#pragma unroll
    for (int i = 0; i < 2; i++)
#pragma unroll
        for (int j = 0; j < 2; j++)
            wmma::store_matrix_sync(sm.c + (wr * 32 + i * 16) * TC_LDC + wc * 32 + j * 16, acc[i][j], TC_LDC, wmma::mem_row_major);
    __syncwarp();
    int o = o0 + wc * 32 + lane;
    if (o >= out) return;
    float b = bias != nullptr ? bias[o] : 0.f;
    for (int rr = 0; rr < 32; rr++) {
        int r = r0 + wr * 32 + rr;
        if (r >= rows) break;
        y[(long) r * out + o] = sm.c[(wr * 32 + rr) * TC_LDC + wc * 32 + lane] + b;
    }
}
