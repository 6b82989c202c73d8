// Log-softmax and next-token NLL by rows of logits [rows][vocab], one block per row, as lowbit.model.Transformer's
// logSumExpOf: the row's max, the float32 sum of exp(logit - max), then lse = max + log(sum) in double. The CPU adds
// the exponentials in one float32 sequence; here each thread sums a strided part in float32 and the parts are added in
// double, which is at least as accurate (both well inside 1e-6 relative on a 49152-token vocabulary).
#include "common.cuh"

__device__ __forceinline__ double block_sum_double(double v, double* scratch) {
    int lane = threadIdx.x % LOWBIT_WARP, warp = threadIdx.x / LOWBIT_WARP, warps = blockDim.x / LOWBIT_WARP;
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double row_log_sum_exp(const float* z, int vocab) {
    __shared__ float fscratch[32];
    __shared__ double dscratch[32];
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) mx = fmaxf(mx, z[j]);
    mx = block_max(mx, fscratch);
    float s = 0.f;
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += expf(z[j] - mx);
    double sum = block_sum_double((double) s, dscratch);
    return (double) mx + log(sum);
}

// nll[r] = lse(logits[r]) - logits[r][targets[r]] in double; grid (rows), 256 threads.
extern "C" __global__ void nll_rows(const float* logits, const int* targets, double* nll, int rows, int vocab) {
    int r = blockIdx.x;
    if (r >= rows) return;
    const float* z = logits + (long) r * vocab;
    double lse = row_log_sum_exp(z, vocab);
    if (threadIdx.x == 0) nll[r] = lse - (double) z[targets[r]];
}

// logits[r][j] := (float) (logits[r][j] - lse(logits[r])) in place: the float32 log-softmax rows Transformer.logProbs
// returns. grid (rows), 256 threads.
extern "C" __global__ void log_softmax_rows(float* logits, int rows, int vocab) {
    int r = blockIdx.x;
    if (r >= rows) return;
    float* z = logits + (long) r * vocab;
    double lse = row_log_sum_exp(z, vocab);
    __syncthreads();  // every thread has read the row's max and sum before any entry is overwritten
    for (int j = threadIdx.x; j < vocab; j += blockDim.x) z[j] = (float) ((double) z[j] - lse);
}
