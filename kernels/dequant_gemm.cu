// Fused dequantize-GEMM on packed 2/3/4/8-bit codes: y[m][n] = sum_k x[m][k] W[n][k] (+ b[n]), where W[n][k] is the
// weight lowbit.quant.QuantizedWeight.dequantize() gives, bit for bit, and the products accumulate in float32.
//
// Layout (lowbit.cuda.PackedLinear repacks at upload): each weight row is our BitPacking layout (codes back to back,
// least significant bit first) padded to a multiple of 32 codes, so a chunk of 32 codes is exactly B 32-bit words and a
// row starts on a word: row n, chunk j at words[(n * chunks + j) * B]. Same bits per weight, up to the row padding.
// scales/zeros are [scaleRows][groups] floats (scaleRows 1 per-tensor); gidx (act-order) maps a column to its group.
//
// Dequantization, exactly as the CPU's (float)(scale * (code - zero)) in double:
//   MODE_INT   (integer zeros with |z| <= 2^20, or the symmetric grid's fixed zero): code - z is an exact float and the
//              double product of a float and a 21-bit integer is exact, so one float multiply rounds it identically;
//              zb = 2^23 + z, and (2^23 | code as float bits) - zb = code - z exactly.
//   MODE_FMIN  (float mins): (float)((float)(scale * code) + min): the double product is exact, so fmul then fadd.
//   MODE_FP64  (any other zeros): the double arithmetic itself.
// __fmul_rn/__fadd_rn keep nvcc from contracting the dequantization into an FMA (which would round differently).
#include "common.cuh"

#define MODE_INT 0
#define MODE_FMIN 1
#define MODE_FP64 2
#define MAGIC 8388608.f   // 2^23

struct Packed {
    const uint32_t* words;
    const float* scales;
    const float* zeros;   // nullptr: the symmetric grid's fixed zero
    const int* gidx;      // nullptr: contiguous groups
    int out, in, chunks, groups, groupSize, perTensor;
    float fixedZero;
};

// The per-group constant the dequantization needs: 2^23 + z (MODE_INT), the min (MODE_FMIN) or z (MODE_FP64).
template <int MODE>
__device__ __forceinline__ float group_bias(const Packed& p, long at) {
    float z = p.zeros != nullptr ? __ldg(p.zeros + at) : p.fixedZero;
    return MODE == MODE_INT ? __fadd_rn(MAGIC, z) : z;
}

template <int MODE>
__device__ __forceinline__ float dequant(uint32_t code, float s, float zb) {
    float magic = __uint_as_float(0x4B000000u | code);   // 2^23 + code, exactly
    if (MODE == MODE_INT) return __fmul_rn(s, __fsub_rn(magic, zb));
    if (MODE == MODE_FMIN) return __fadd_rn(__fmul_rn(s, __fsub_rn(magic, MAGIC)), zb);
    return __double2float_rn(__dmul_rn((double) s, (double) code - (double) zb));
}

__device__ __forceinline__ int group_of(const Packed& p, int c) {
    if (p.gidx != nullptr) return __ldg(p.gidx + c);
    return p.groupSize > 0 ? c / p.groupSize : 0;
}

// Code k (0..31) of a chunk held as B words.
template <int B>
__device__ __forceinline__ uint32_t code_at(const uint32_t* wd, int k) {
    int bit = k * B, w = bit >> 5, sh = bit & 31;
    uint32_t v = wd[w] >> sh;
    if (sh + B > 32) v |= wd[w + 1] << (32 - sh);
    return v & ((1u << B) - 1u);
}

template <int B>
__device__ __forceinline__ void load_chunk(const Packed& p, int n, int j, uint32_t wd[B]) {
    const uint32_t* src = p.words + ((long) n * p.chunks + j) * B;
#pragma unroll
    for (int i = 0; i < B; i++) wd[i] = __ldg(src + i);
}

// acc[m] += x[m][c0 .. c0 + 31] . W[n][c0 .. c0 + 31] for rows m < M, with row n's chunk j (columns c0 = 32 j ..) given
// as its B words. Four weights at a time are dequantized and used at once, so few registers hold weights; codes past
// the row's end dequantize the zero padding and their x is never read.
template <int B, int MODE, int MT>
__device__ __forceinline__ void chunk_fma(const Packed& p, int n, int j, bool uniform, const uint32_t wd[B], const float* x, int M,
                                          bool vec, float acc[MT]) {
    long srow = p.perTensor ? 0 : (long) n * p.groups;
    int c0 = j * 32;
    float s = 0.f, zb = 0.f;
    if (uniform) {   // the whole chunk is one group: groups of a multiple of 32 columns, per channel or per tensor
        long at = srow + group_of(p, c0);
        s = __ldg(p.scales + at);
        zb = group_bias<MODE>(p, at);
    }
    bool full = vec && c0 + 32 <= p.in;
#pragma unroll
    for (int q = 0; q < 8; q++) {
        float w[4];
#pragma unroll
        for (int t = 0; t < 4; t++) {
            int k = 4 * q + t;
            if (!uniform) {
                long at = srow + group_of(p, min(c0 + k, p.in - 1));
                s = __ldg(p.scales + at);
                zb = group_bias<MODE>(p, at);
            }
            w[t] = dequant<MODE>(code_at<B>(wd, k), s, zb);
        }
#pragma unroll
        for (int m = 0; m < MT; m++) {
            if (m >= M) continue;
            const float* xr = x + (long) m * p.in + c0 + 4 * q;
            if (full) {
                float4 v = __ldg(reinterpret_cast<const float4*>(xr));
                acc[m] = fmaf(v.x, w[0], acc[m]);
                acc[m] = fmaf(v.y, w[1], acc[m]);
                acc[m] = fmaf(v.z, w[2], acc[m]);
                acc[m] = fmaf(v.w, w[3], acc[m]);
            } else {
#pragma unroll
                for (int t = 0; t < 4; t++)
                    if (c0 + 4 * q + t < p.in) acc[m] = fmaf(__ldg(xr + t), w[t], acc[m]);
            }
        }
    }
}

// GEMV-like, for up to 16 rows of x (decode, small batches): one warp per output feature, its lanes striding over the
// row's chunks, so every code is read once; x (a few KiB per row) stays in L1/L2. Each lane loads two chunks' words
// before using either, to keep more bytes in flight. MT (1, 4 or 16: one kernel each, so the small ones keep few
// registers and high occupancy) bounds the rows; rows from M to MT are predicated off.
template <int B, int MODE, int MT>
__device__ void gemv(const Packed& p, const float* x, int M, const float* bias, float* y, bool uniform) {
    int warps = blockDim.x / LOWBIT_WARP;
    int n = blockIdx.x * warps + threadIdx.x / LOWBIT_WARP, lane = threadIdx.x % LOWBIT_WARP;
    if (n >= p.out) return;
    float acc[MT];
#pragma unroll
    for (int m = 0; m < MT; m++) acc[m] = 0.f;
    bool vec = (p.in & 3) == 0 && (((uintptr_t) x) & 15) == 0;
    for (int j = lane; j < p.chunks; j += 2 * LOWBIT_WARP) {
        uint32_t wa[B], wb[B];
        bool second = j + LOWBIT_WARP < p.chunks;
        load_chunk<B>(p, n, j, wa);
        if (second) load_chunk<B>(p, n, j + LOWBIT_WARP, wb);
        chunk_fma<B, MODE, MT>(p, n, j, uniform, wa, x, M, vec, acc);
        if (second) chunk_fma<B, MODE, MT>(p, n, j + LOWBIT_WARP, uniform, wb, x, M, vec, acc);
    }
#pragma unroll
    for (int m = 0; m < MT; m++) {
        float s = warp_sum(acc[m]);
        if (lane == 0 && m < M) y[(long) m * p.out + n] = s + (bias != nullptr ? bias[n] : 0.f);
    }
}

template <int B, int MT>
__device__ void gemv_mode(const Packed& p, int mode, const float* x, int M, const float* bias, float* y) {
    bool uniform = p.gidx == nullptr && (p.groupSize <= 0 || p.groupSize % 32 == 0);
    if (mode == MODE_INT) gemv<B, MODE_INT, MT>(p, x, M, bias, y, uniform);
    else if (mode == MODE_FMIN) gemv<B, MODE_FMIN, MT>(p, x, M, bias, y, uniform);
    else gemv<B, MODE_FP64, MT>(p, x, M, bias, y, uniform);
}

#define GEMV_PARAMS const uint32_t *words, const float *scales, const float *zeros, const int *gidx, int out, int in, \
    int groups, int groupSize, int perTensor, float fixedZero, int mode, const float *x, int M, const float *bias, float *y
#define PACKED Packed{words, scales, zeros, gidx, out, in, (in + 31) / 32, groups, groupSize, perTensor, fixedZero}

extern "C" __global__ void dq_gemv1_b2(GEMV_PARAMS) { gemv_mode<2, 1>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv1_b3(GEMV_PARAMS) { gemv_mode<3, 1>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv1_b4(GEMV_PARAMS) { gemv_mode<4, 1>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv1_b8(GEMV_PARAMS) { gemv_mode<8, 1>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv4_b2(GEMV_PARAMS) { gemv_mode<2, 4>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv4_b3(GEMV_PARAMS) { gemv_mode<3, 4>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv4_b4(GEMV_PARAMS) { gemv_mode<4, 4>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv4_b8(GEMV_PARAMS) { gemv_mode<8, 4>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv16_b2(GEMV_PARAMS) { gemv_mode<2, 16>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv16_b3(GEMV_PARAMS) { gemv_mode<3, 16>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv16_b4(GEMV_PARAMS) { gemv_mode<4, 16>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ void dq_gemv16_b8(GEMV_PARAMS) { gemv_mode<8, 16>(PACKED, mode, x, M, bias, y); }

// Tiled, for many rows (2048-token windows): a block computes a 64 x 64 tile of y; per 32 columns of k it dequantizes
// the 64 x 32 tile of W into shared memory (4 threads per weight row, 8 codes = B bytes each) beside the 32 x 64 tile of
// x, and each of its 256 threads accumulates a 4 x 4 sub-tile with fp32 FMAs.
#define TM 64
#define TN 64
#define TK 32

// The tiles, declared once in the kernel: static shared arrays inside each mode's instantiation would add up.
struct Tiles {
    float xs[TK][TM + 4];
    float ws[TK][TN + 4];
};

template <int B, int MODE>
__device__ void tiled(const Packed& p, const float* x, int M, const float* bias, float* y, Tiles& t) {
    auto& xs = t.xs;
    auto& ws = t.ws;
    int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    int m0 = blockIdx.y * TM, n0 = blockIdx.x * TN;
    bool uniform = p.gidx == nullptr && (p.groupSize <= 0 || p.groupSize % 32 == 0);
    float acc[4][4] = {};
    for (int j = 0; j < p.chunks; j++) {
        int c0 = j * TK;
        // x tile: 64 rows x 32 columns, 8 per thread, read along k
        for (int e = tid; e < TM * TK; e += blockDim.x) {
            int r = e / TK, k = e % TK, m = m0 + r, c = c0 + k;
            xs[k][r] = m < M && c < p.in ? x[(long) m * p.in + c] : 0.f;
        }
        // W tile: weight row n0 + tid / 4, codes 8 q .. 8 q + 7 of the chunk (q = tid % 4): B whole bytes at byte q * B
        {
            int r = tid / 4, q = tid % 4, n = n0 + r;
            if (n < p.out) {
                const uint8_t* bytes = reinterpret_cast<const uint8_t*>(p.words + ((long) n * p.chunks + j) * B) + q * B;
                uint64_t v = 0;
#pragma unroll
                for (int i = 0; i < B; i++) v |= (uint64_t) __ldg(bytes + i) << (8 * i);
                long srow = p.perTensor ? 0 : (long) n * p.groups;
                float s = 0, zb = 0;
                if (uniform) {
                    long at = srow + group_of(p, c0);
                    s = __ldg(p.scales + at);
                    zb = group_bias<MODE>(p, at);
                }
#pragma unroll
                for (int i = 0; i < 8; i++) {
                    int k = q * 8 + i;
                    if (!uniform) {
                        long at = srow + group_of(p, min(c0 + k, p.in - 1));
                        s = __ldg(p.scales + at);
                        zb = group_bias<MODE>(p, at);
                    }
                    ws[k][r] = dequant<MODE>((uint32_t) (v >> (B * i)) & ((1u << B) - 1u), s, zb);
                }
            } else {
#pragma unroll
                for (int i = 0; i < 8; i++) ws[q * 8 + i][r] = 0.f;
            }
        }
        __syncthreads();
#pragma unroll 8
        for (int k = 0; k < TK; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[k][ty + 16 * i];
                b[i] = ws[k][tx + 16 * i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int jj = 0; jj < 4; jj++) acc[i][jj] = fmaf(a[i], b[jj], acc[i][jj]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int m = m0 + ty + 16 * i;
        if (m >= M) continue;
#pragma unroll
        for (int jj = 0; jj < 4; jj++) {
            int n = n0 + tx + 16 * jj;
            if (n < p.out) y[(long) m * p.out + n] = acc[i][jj] + (bias != nullptr ? bias[n] : 0.f);
        }
    }
}

template <int B>
__device__ void tiled_mode(const Packed& p, int mode, const float* x, int M, const float* bias, float* y) {
    __shared__ Tiles t;
    if (mode == MODE_INT) tiled<B, MODE_INT>(p, x, M, bias, y, t);
    else if (mode == MODE_FMIN) tiled<B, MODE_FMIN>(p, x, M, bias, y, t);
    else tiled<B, MODE_FP64>(p, x, M, bias, y, t);
}

extern "C" __global__ __launch_bounds__(256) void dq_gemm_b2(GEMV_PARAMS) { tiled_mode<2>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ __launch_bounds__(256) void dq_gemm_b3(GEMV_PARAMS) { tiled_mode<3>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ __launch_bounds__(256) void dq_gemm_b4(GEMV_PARAMS) { tiled_mode<4>(PACKED, mode, x, M, bias, y); }
extern "C" __global__ __launch_bounds__(256) void dq_gemm_b8(GEMV_PARAMS) { tiled_mode<8>(PACKED, mode, x, M, bias, y); }
