// GPTQ on the GPU (lowbit.cuda.DeviceGptq): the Hessian accumulation and the column loop of lowbit.quant.gptq.Gptq.
//
// Every kernel here is a bit-for-bit twin of the CPU code, not an approximation of it: the CPU works in double with
// explicit fma chains in a fixed order, so each kernel keeps the same chain per element and the same rounding per
// operation. Products that the CPU rounds before adding use __dmul_rn/__dadd_rn, so that nvcc does not contract them
// into an fma the CPU never did. With the same H^-1 (computed on the host, Hessian.inverseFactor) the codes come out
// identical; only the loss is summed in another order.
#include "common.cuh"

// h[i] *= keep for the n*n entries: the running average's rescale before a sequence is added (Hessian.add).
extern "C" __global__ void gptq_hessian_scale(double* h, long count, double keep) {
    long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) h[i] = __dmul_rn(h[i], keep);
}

#define GPTQ_HT 64    // H tile edge
#define GPTQ_HK 16    // rows of x per shared-memory step
#define GPTQ_HQ 4     // H elements per thread along each side

// h[i][j] = h[i][j] + weight * (float) sum_r x[r][i] x[r][j] for i <= j, mirrored into h[j][i]: Gram.accumulate. The
// sum is a float fma chain over the rows in order starting from 0, as each of Gram's tile elements is; only the
// finished sum is widened. Grid: (tiles, tiles) over 64x64 tiles of H, blocks below the diagonal return at once;
// block (16, 16), each thread a 4x4 patch (rows ty + 16a, columns tx + 16b of the tile).
extern "C" __global__ void gptq_hessian_add(double* h, const float* x, int rows, int n, double weight) {
    int bi = blockIdx.y, bj = blockIdx.x;
    if (bi > bj) return;
    __shared__ float xi[GPTQ_HK][GPTQ_HT], xj[GPTQ_HK][GPTQ_HT];   // [row of x][column within the tile]
    int tx = threadIdx.x, ty = threadIdx.y, tid = ty * 16 + tx;
    int i0 = bi * GPTQ_HT, j0 = bj * GPTQ_HT;
    float acc[GPTQ_HQ][GPTQ_HQ];
#pragma unroll
    for (int a = 0; a < GPTQ_HQ; a++)
#pragma unroll
        for (int b = 0; b < GPTQ_HQ; b++) acc[a][b] = 0.f;
    for (int k0 = 0; k0 < rows; k0 += GPTQ_HK) {
        for (int e = tid; e < GPTQ_HK * GPTQ_HT; e += 256) {
            int r = e / GPTQ_HT, c = e % GPTQ_HT;
            long row = (long) k0 + r;
            xi[r][c] = row < rows && i0 + c < n ? x[row * n + i0 + c] : 0.f;
            xj[r][c] = row < rows && j0 + c < n ? x[row * n + j0 + c] : 0.f;
        }
        __syncthreads();
        int kend = min(GPTQ_HK, rows - k0);
        for (int k = 0; k < kend; k++) {
            float av[GPTQ_HQ], bv[GPTQ_HQ];
#pragma unroll
            for (int q = 0; q < GPTQ_HQ; q++) {
                av[q] = xi[k][ty + 16 * q];
                bv[q] = xj[k][tx + 16 * q];
            }
#pragma unroll
            for (int a = 0; a < GPTQ_HQ; a++)
#pragma unroll
                for (int b = 0; b < GPTQ_HQ; b++) acc[a][b] = fmaf(av[a], bv[b], acc[a][b]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int a = 0; a < GPTQ_HQ; a++)
#pragma unroll
        for (int b = 0; b < GPTQ_HQ; b++) {
            int i = i0 + ty + 16 * a, j = j0 + tx + 16 * b;
            if (i >= n || j >= n || i > j) continue;
            double v = __dadd_rn(h[(long) i * n + j], __dmul_rn(weight, (double) acc[a][b]));
            h[(long) i * n + j] = v;
            h[(long) j * n + i] = v;
        }
}

// out[r][c - c0] = w[r][c] for c in [c0, c1): the columns the host fits a block's dynamic group grids on.
extern "C" __global__ void gptq_gather_columns(const double* w, int rows, int n, int c0, int c1, double* out) {
    long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    int span = c1 - c0;
    if (i >= (long) rows * span) return;
    long r = i / span;
    int c = (int) (i % span);
    out[i] = w[r * n + c0 + c];
}

// UniformQuantizer.code: clamp(rint(x / scale) + zero, 0, maxq), or rint((x - min) / scale) for the float-min grid.
__device__ __forceinline__ int gptq_code(double x, double scale, double zero, int maxq, int float_min) {
    double q;
    if (float_min) q = scale == 0 ? 0.0 : rint(__ddiv_rn(__dsub_rn(x, zero), scale));
    else q = __dadd_rn(rint(__ddiv_rn(x, scale)), zero);
    return (int) fmax(0.0, fmin((double) maxq, q));
}

// UniformQuantizer.value: the grid value of a code in double, unrounded to float.
__device__ __forceinline__ double gptq_value(int code, double scale, double zero, int float_min) {
    return float_min ? __dadd_rn(__dmul_rn(scale, (double) code), zero) : __dmul_rn(scale, __dsub_rn((double) code, zero));
}

// The in-block column loop of one lazy batch [i1, i1 + count), one warp per row of W (rows are independent given H^-1):
// per column, the code on the row's grid (scale/zero [rows][groups] at group_of[col]), q, the error e = (x - q) / d
// with d = Hinv[col][col], then w1[k] = fma(-e, Hinv[col][i1 + k], w1[k]) for k >= i, as Gptq.columnLoop's axpy. The
// block's columns live in shared memory (count doubles per warp); every lane computes the same code and error, lane 0
// stores them. codes [rows][n] are written at the column's original position perm[col]; err [rows][count] feeds the
// trailing update; row_loss[r] accumulates (x - q)^2 / d^2 / 2.
extern "C" __global__ void gptq_block(const double* w, int rows, int n, int i1, int count, const double* hinv,
                                      const double* scale, const double* zero, const int* group_of, int groups, int maxq,
                                      int float_min, const int* perm, unsigned char* codes, double* err, double* row_loss) {
    extern __shared__ double gptq_w1[];
    int warp = threadIdx.x / LOWBIT_WARP, lane = threadIdx.x % LOWBIT_WARP;
    long r = (long) blockIdx.x * (blockDim.x / LOWBIT_WARP) + warp;
    if (r >= rows) return;   // the whole warp leaves: the loop synchronizes warps only
    double* w1 = gptq_w1 + (long) warp * count;
    for (int k = lane; k < count; k += LOWBIT_WARP) w1[k] = w[r * n + i1 + k];
    __syncwarp();
    double loss = 0;
    for (int i = 0; i < count; i++) {
        int col = i1 + i;
        long g = r * groups + group_of[col];
        double s = scale[g], z = zero[g];
        double x = w1[i];
        int code = gptq_code(x, s, z, maxq, float_min);
        double q = gptq_value(code, s, z, float_min);
        const double* hrow = hinv + (long) col * n;
        double d = hrow[col];
        double diff = __dsub_rn(x, q);
        double e = __ddiv_rn(diff, d);
        if (lane == 0) {
            codes[r * n + perm[col]] = (unsigned char) code;
            err[r * count + i] = e;
            loss = __dadd_rn(loss, __ddiv_rn(__ddiv_rn(__dmul_rn(diff, diff), __dmul_rn(d, d)), 2.0));
        }
        __syncwarp();   // every lane has read w1[i] before it changes
        for (int k = i + lane; k < count; k += LOWBIT_WARP) w1[k] = fma(-e, hrow[i1 + k], w1[k]);
        __syncwarp();
    }
    if (lane == 0) row_loss[r] = __dadd_rn(row_loss[r], loss);
}

#define GPTQ_TT 32
#define GPTQ_TR 8

// The lazy batch update W[:, i2:] -= Err1 Hinv[i1:i2, i2:] as a tiled GEMM whose every element is the CPU's chain
// w = fma(-err[r][k], Hinv[i1 + k][c], w) for k = 0, 1, ..., count - 1 in order. Grid: (ceil((n - i2) / 32),
// ceil(rows / 32)); block (32, 8), each thread four rows of one column.
extern "C" __global__ void gptq_trailing(double* w, int rows, int n, int i1, int count, int i2, const double* err,
                                         const double* hinv) {
    __shared__ double es[GPTQ_TT][GPTQ_TT + 1];   // [row][k]
    __shared__ double hs[GPTQ_TT][GPTQ_TT + 1];   // [k][column]
    int tx = threadIdx.x, ty = threadIdx.y;
    long r0 = (long) blockIdx.y * GPTQ_TT;
    int c = i2 + blockIdx.x * GPTQ_TT + tx;
    bool col_in = c < n;
    double acc[GPTQ_TT / GPTQ_TR];
#pragma unroll
    for (int q = 0; q < GPTQ_TT / GPTQ_TR; q++) {
        long r = r0 + ty + GPTQ_TR * q;
        acc[q] = r < rows && col_in ? w[r * n + c] : 0.0;
    }
    for (int k0 = 0; k0 < count; k0 += GPTQ_TT) {
#pragma unroll
        for (int q = 0; q < GPTQ_TT / GPTQ_TR; q++) {
            int t = ty + GPTQ_TR * q;
            long r = r0 + t;
            es[t][tx] = r < rows && k0 + tx < count ? err[r * count + k0 + tx] : 0.0;
            hs[t][tx] = k0 + t < count && col_in ? hinv[(long) (i1 + k0 + t) * n + c] : 0.0;
        }
        __syncthreads();
        int kend = min(GPTQ_TT, count - k0);
        for (int k = 0; k < kend; k++) {
            double hk = hs[k][tx];
#pragma unroll
            for (int q = 0; q < GPTQ_TT / GPTQ_TR; q++) acc[q] = fma(-es[ty + GPTQ_TR * q][k], hk, acc[q]);
        }
        __syncthreads();
    }
#pragma unroll
    for (int q = 0; q < GPTQ_TT / GPTQ_TR; q++) {
        long r = r0 + ty + GPTQ_TR * q;
        if (r < rows && col_in) w[r * n + c] = acc[q];
    }
}
