// AWQ's scale-search loss on the GPU (lowbit.cuda.DeviceAwq): for one candidate alpha, the loss module's output
// y = x Wq^T (+ b) over every calibration token against the float module's output, as a sum of squared differences.
// Wq = Q(W s) / s is made on the host by the one RTN grid (lowbit.quant.Rtn) and uploaded; this kernel is the
// expensive part, tokens x out x in products per alpha. Products accumulate in float32 as the CPU's matmul does;
// the squared differences are summed in double per block and the block sums added on the host in a fixed order,
// so the loss does not depend on scheduling.
#include "common.cuh"

#define AWQ_T 64     // tokens and outputs per block tile
#define AWQ_K 16     // input columns per shared-memory step
#define AWQ_THREADS 256

// partial[blockIdx.y * gridDim.x + blockIdx.x] = sum over the tile of (float(y - ref))^2. Grid: (ceil(out / 64),
// ceil(tokens / 64)); block 256 threads, each a 4x4 patch of the 64x64 tile.
extern "C" __global__ void awq_loss(const float* x, long tokens, int in, const float* wq, int out, const float* bias,
                                    const float* ref, double* partial) {
    __shared__ float xs[AWQ_K][AWQ_T + 4];   // [k][token]
    __shared__ float ws[AWQ_K][AWQ_T + 4];   // [k][output]
    __shared__ double red[AWQ_THREADS / LOWBIT_WARP];
    int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    long t0 = (long) blockIdx.y * AWQ_T;
    int o0 = blockIdx.x * AWQ_T;
    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.f;
    for (int k0 = 0; k0 < in; k0 += AWQ_K) {
        for (int e = threadIdx.x; e < AWQ_T * AWQ_K; e += AWQ_THREADS) {
            int row = e / AWQ_K, k = e % AWQ_K, kk = k0 + k;
            long t = t0 + row;
            int o = o0 + row;
            xs[k][row] = t < tokens && kk < in ? x[t * in + kk] : 0.f;
            ws[k][row] = o < out && kk < in ? wq[(long) o * in + kk] : 0.f;
        }
        __syncthreads();
#pragma unroll
        for (int k = 0; k < AWQ_K; k++) {
            float a[4], b[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                a[i] = xs[k][ty * 4 + i];
                b[i] = ws[k][tx * 4 + i];
            }
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
        }
        __syncthreads();
    }
    double local = 0;
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) {
            long t = t0 + ty * 4 + i;
            int o = o0 + tx * 4 + j;
            if (t < tokens && o < out) {
                float y = bias ? acc[i][j] + bias[o] : acc[i][j];
                float d = y - ref[t * out + o];
                local += (double) d * d;
            }
        }
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) local += __shfl_xor_sync(0xffffffffu, local, o);
    int lane = threadIdx.x % LOWBIT_WARP, warp = threadIdx.x / LOWBIT_WARP;
    if (lane == 0) red[warp] = local;
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = 0;
        for (int w = 0; w < AWQ_THREADS / LOWBIT_WARP; w++) s += red[w];
        partial[(long) blockIdx.y * gridDim.x + blockIdx.x] = s;
    }
}
