// The quantizers' grids on the GPU: RTN's grid fit and codes per group (twin of lowbit.quant.UniformQuantizer and Rtn),
// activation fake quantization per token and per tensor (twin of ActivationQuantizer.quantizePerToken and
// quantizeWithScale) and KV-cache fake quantization on qllm-eval's grid (twin of KvCacheQuantizer.quantizeGroups).
//
// The CPU twins compute in double with Java's strict IEEE arithmetic, so these kernels do too, and give the same bits:
// every product that feeds a sum is written with __dmul_rn/__fmul_rn, which nvcc never contracts into an FMA (Java never
// fuses); division, rint (round half to even, as Math.rint) and double->float conversion are correctly rounded in both.
// Java's Math.min/max propagate NaN and order -0.0 below 0.0, unlike fmin/fmax, hence jmin/jmax.
#include "common.cuh"
#include <cuda_fp16.h>

__device__ __forceinline__ double jmax(double a, double b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a == 0.0 && b == 0.0) return signbit(a) ? b : a;
    return a > b ? a : b;
}

__device__ __forceinline__ double jmin(double a, double b) {
    if (a != a) return a;
    if (b != b) return b;
    if (a == 0.0 && b == 0.0) return signbit(a) ? a : b;
    return a < b ? a : b;
}

// ---------------------------------------------------------------------------------------------------------------------
// Activations: x := scale * clamp(rint(x / scale), -qmax, qmax) in double, rounded once to float.

__device__ __forceinline__ float fake_symmetric(float x, double scale, int qmax) {
    double q = rint((double) x / scale);
    if (q > qmax) q = qmax;
    else if (q < -qmax) q = -qmax;
    return __double2float_rn(__dmul_rn(q, scale));
}

// One block per row of x [rows][cols]: absmax of the row in float (NaN when the row has one), scale in double.
extern "C" __global__ void act_per_token(float* x, int rows, int cols, int qmax, float minAbsmax) {
    __shared__ float scratch[32];
    __shared__ int nan_seen;
    long off = (long) blockIdx.x * cols;
    if (threadIdx.x == 0) nan_seen = 0;
    __syncthreads();
    float m = 0.f;
    bool nan = false;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) {
        float a = fabsf(x[off + i]);
        if (a != a) nan = true;
        else m = fmaxf(m, a);
    }
    if (nan) nan_seen = 1;
    m = block_max(m, scratch);   // synchronizes before reading nan_seen
    float absmax = nan_seen ? __int_as_float(0x7fc00000) : fmaxf(m, minAbsmax);
    double scale = (double) absmax / (double) qmax;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) x[off + i] = fake_symmetric(x[off + i], scale, qmax);
}

// Every element of x [n] on one fixed scale (a static, calibrated activation scale).
extern "C" __global__ void act_per_tensor(float* x, long n, float scale, int qmax) {
    long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fake_symmetric(x[i], (double) scale, qmax);
}

// ---------------------------------------------------------------------------------------------------------------------
// KV cache: every run of `group` consecutive values on its own asymmetric grid (qllm-eval's pseudo_quantize_tensor):
// one warp per group, min and max over the warp, then each lane rewrites its values.
extern "C" __global__ void kv_groups(float* x, long groups, int group, int maxint, double minRange) {
    long g = ((long) blockIdx.x * blockDim.x + threadIdx.x) / LOWBIT_WARP;
    int lane = threadIdx.x % LOWBIT_WARP;
    if (g >= groups) return;   // whole warps leave together: the group count is per warp
    float* a = x + g * group;
    float lo = INFINITY, hi = -INFINITY;
    int nan = 0;
    for (int i = lane; i < group; i += LOWBIT_WARP) {
        float v = a[i];
        if (v != v) nan = 1;
        else {
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
        }
    }
    for (int o = LOWBIT_WARP / 2; o > 0; o >>= 1) {
        lo = fminf(lo, __shfl_xor_sync(0xffffffffu, lo, o));
        hi = fmaxf(hi, __shfl_xor_sync(0xffffffffu, hi, o));
        nan |= __shfl_xor_sync(0xffffffffu, nan, o);
    }
    if (nan) {   // keep a NaN visible instead of quantizing around it
        for (int i = lane; i < group; i += LOWBIT_WARP) a[i] = __int_as_float(0x7fc00000);
        return;
    }
    if (lo == hi) return;   // a constant group stays exact
    // the sign of a zero lo or hi cannot change the result: the zero point is clamped with Java's max, so it is +0.0
    double dlo = lo, dhi = hi;
    double scale = jmax(dhi - dlo, minRange) / maxint;
    double zero = jmax(0.0, jmin((double) maxint, -rint(dlo / scale)));
    for (int i = lane; i < group; i += LOWBIT_WARP) {
        double q = jmax(0.0, jmin((double) maxint, rint((double) a[i] / scale) + zero));
        a[i] = __double2float_rn(__dmul_rn(scale, q - zero));
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// RTN: UniformQuantizer.fit and code per group. Zero-point kinds as QuantConfig.ZeroPoint's ordinals.
#define ZP_INTEGER 0
#define ZP_FLOAT_MIN 1
#define ZP_ABSMAX 2
#define ZP_AWQ 3
#define MSE_GRID 100
#define MSE_CANDIDATES 80
#define MSE_NORM 2.4

struct Grid {
    int zp, maxq, symmetric, f16;
};

// (scale, zero-or-min) of the grid on [lo, hi] shrunk by p, exactly as UniformQuantizer.shrinkable's lambdas.
__device__ void shrink(const Grid& g, double lo, double hi, double p, double* scale, double* zero) {
    double half = (double) ((g.maxq + 1) / 2);
    switch (g.zp) {
    case ZP_FLOAT_MIN:
        *scale = __dmul_rn(hi - lo, p) / g.maxq;
        *zero = __dmul_rn(p, lo);
        return;
    case ZP_ABSMAX: {
        double amax = jmax(fabs(lo), fabs(hi));
        *scale = jmax(__dmul_rn(amax, p), 1e-5) / (half - 1);
        *zero = half;
        return;
    }
    case ZP_AWQ: {
        double s = jmax(__dmul_rn(p, hi - lo), 1e-5) / g.maxq;
        *scale = s;
        *zero = jmax(0.0, jmin((double) g.maxq, -rint(__dmul_rn(p, lo) / s))) + 0.0;
        return;
    }
    default: {
        double xmin = jmin(lo, 0.0), xmax = jmax(hi, 0.0);
        if (g.symmetric) {
            xmax = jmax(fabs(xmin), xmax);
            if (xmin < 0) xmin = -xmax;
        }
        if (xmin == 0 && xmax == 0) {
            xmin = -1;
            xmax = 1;
        }
        double pa = __dmul_rn(p, xmin), s = __dsub_rn(__dmul_rn(p, xmax), pa) / g.maxq;
        *scale = s;
        *zero = g.symmetric ? half : rint(-pa / s) + 0.0;   // + 0.0: no negative zero
    }
    }
}

__device__ __forceinline__ int grid_code(const Grid& g, double x, double scale, double zero) {
    double q;
    if (g.zp == ZP_FLOAT_MIN) q = scale == 0 ? 0 : rint((x - zero) / scale);
    else q = rint(x / scale) + zero;
    q = jmax(0.0, jmin((double) g.maxq, q));
    return q != q ? 0 : (int) q;   // Java's (int) NaN is 0
}

__device__ __forceinline__ double grid_value(const Grid& g, int code, double scale, double zero) {
    return g.zp == ZP_FLOAT_MIN ? __dadd_rn(__dmul_rn(scale, (double) code), zero) : __dmul_rn(scale, (double) code - zero);
}

__device__ __forceinline__ double round_format(double v, int f16) {
    float f = __double2float_rn(v);
    return f16 ? (double) __half2float(__float2half_rn(f)) : (double) f;
}

// One block per group (a contiguous run of n weights from `start`: a row's group, a row, or the whole tensor); the
// block finds its range, then fits the grid (with the MSE clip search: thread i < 80 sums candidate p = 1 - i/100's
// error over the group in the CPU's order, so the sums agree except where pow's last bit differs), then writes the
// stored scale and zero-or-min (as the Builder stores them: rounded to float) and every code.
extern "C" __global__ void rtn_fit_codes(const float* w, int rows, int cols, int groupSize, int perTensor, int zp, int maxq,
                                         int symmetric, int f16, int mse, float* scales, float* zeros, uint8_t* codes) {
    __shared__ float scratch[32];
    __shared__ double err[MSE_CANDIDATES];
    __shared__ double params[2];
    Grid g{zp, maxq, symmetric, f16};
    int groups = perTensor ? 1 : groupSize > 0 ? (cols + groupSize - 1) / groupSize : 1;
    long row = perTensor ? 0 : blockIdx.x / groups;
    int gi = perTensor ? 0 : blockIdx.x % groups;
    int gcols = groupSize > 0 ? groupSize : cols;
    long start = perTensor ? 0 : row * cols + (long) gi * gcols;
    long n = perTensor ? (long) rows * cols : min((long) gcols, (long) cols - (long) gi * gcols);

    float lo = INFINITY, hi = -INFINITY;   // the host refused non-finite weights; min and max are exact in float
    for (long i = threadIdx.x; i < n; i += blockDim.x) {
        float v = w[start + i];
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
    }
    hi = block_max(hi, scratch);
    lo = -block_max(-lo, scratch);
    if (lo == 0 || hi == 0) {
        // The CPU keeps the first element equal to the min (max), so a zero bound has the sign of the group's first zero;
        // FLOAT_MIN stores that sign in its min (and in a zero scale), so find it
        __shared__ unsigned long long first;
        if (threadIdx.x == 0) first = ~0ull;
        __syncthreads();
        for (long i = threadIdx.x; i < n; i += blockDim.x)
            if (w[start + i] == 0) {
                atomicMin(&first, (unsigned long long) i);
                break;
            }
        __syncthreads();
        float z = w[start + first];
        if (lo == 0) lo = z;
        if (hi == 0) hi = z;
    }

    if (mse) {
        if (threadIdx.x < MSE_CANDIDATES) {
            double p = 1 - (double) threadIdx.x / MSE_GRID, s, z, e = 0;
            shrink(g, lo, hi, p, &s, &z);
            for (long i = 0; i < n; i++) {
                double x = w[start + i];
                e += pow(fabs(grid_value(g, grid_code(g, x, s, z), s, z) - x), MSE_NORM);
            }
            err[threadIdx.x] = e;
        }
        __syncthreads();
        if (threadIdx.x == 0) {
            int best = 0;   // the first candidate with the least error, as the CPU's strict '<'
            for (int i = 1; i < MSE_CANDIDATES; i++)
                if (err[i] < err[best]) best = i;
            double s, z;
            shrink(g, lo, hi, 1 - (double) best / MSE_GRID, &s, &z);
            params[0] = s;
            params[1] = z;
        }
    } else if (threadIdx.x == 0) {
        double s, z;
        shrink(g, lo, hi, 1.0, &s, &z);
        params[0] = s;
        params[1] = z;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        double s = round_format(params[0], f16);
        if (s == 0 && params[0] > 0) s = ldexp(1.0, f16 ? -24 : -149);   // the smallest half, Float.MIN_VALUE, exactly
        double z = zp == ZP_FLOAT_MIN ? round_format(params[1], f16) : params[1];
        params[0] = s;
        params[1] = z;
        long p = perTensor ? 0 : row * groups + gi;
        scales[p] = __double2float_rn(s);
        if (zeros != nullptr) zeros[p] = __double2float_rn(z);
    }
    __syncthreads();
    double s = params[0], z = params[1];
    for (long i = threadIdx.x; i < n; i += blockDim.x) codes[start + i] = (uint8_t) grid_code(g, (double) w[start + i], s, z);
}
