// The Llama family's forward pass outside the products and the attention, as lowbit.model.Transformer computes it:
// token embeddings, RMSNorm (also Qwen3's per-head q/k norm), RoPE in transformers' rotate_half convention, and
// SiLU(gate) * up. The residual add is elementwise.cu's add_inplace.
#include "common.cuh"

// x[t][0..dim) = table[tokens[t]][0..dim); grid (rows), threads any multiple of 32. Token ids were checked on the host.
extern "C" __global__ void embed_rows(float* x, const float* table, const int* tokens, int rows, int dim) {
    int t = blockIdx.x;
    if (t >= rows) return;
    const float* src = table + (long) tokens[t] * dim;
    float* dst = x + (long) t * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) dst[j] = src[j];
}

// The same from a bf16 table (embeddings held in bf16 with --weights bf16).
extern "C" __global__ void embed_rows_bf16(float* x, const uint16_t* table, const int* tokens, int rows, int dim) {
    int t = blockIdx.x;
    if (t >= rows) return;
    const uint16_t* src = table + (long) tokens[t] * dim;
    float* dst = x + (long) t * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x) dst[j] = bf16_to_float(src[j]);
}

// out[r] = w * (x[r] * inv), inv = 1 / sqrt(mean(x[r]^2) + eps), as lowbit.tensor.RmsNorm (float32 sum of squares, the
// inverse root in double, then rounded). One block per row; out may be x (each thread rewrites only what it read).
// Rows of the hidden size (norms in front of attention and MLP, the final norm) and rows of head_dim (Qwen3's q_norm and
// k_norm over each head of q and k) are both this kernel.
extern "C" __global__ void rms_norm_rows(const float* x, float* out, const float* w, int rows, int d, float eps) {
    __shared__ float scratch[32];
    long r = blockIdx.x;
    if (r >= rows) return;
    const float* xr = x + r * d;
    float ss = 0.f;
    for (int j = threadIdx.x; j < d; j += blockDim.x) ss = fmaf(xr[j], xr[j], ss);
    ss = block_sum(ss, scratch);
    float inv = (float) (1.0 / sqrt((double) (ss / d + eps)));
    float* o = out + r * d;
    for (int j = threadIdx.x; j < d; j += blockDim.x) o[j] = w[j] * (xr[j] * inv);
}

// RoPE on x [rows][heads][headDim] in place, row t at position t (a window from position 0): dimension i pairs with
// i + headDim/2; cos and sin are lowbit.model.RotaryTables' [position][headDim/2], so the angles are the CPU's bit for bit.
// grid (rows), threads cover heads * headDim/2 pairs.
extern "C" __global__ void rope_rows(float* x, const float* cos_t, const float* sin_t, int rows, int heads, int head_dim) {
    int t = blockIdx.x;
    if (t >= rows) return;
    int half = head_dim / 2;
    const float* c = cos_t + (long) t * half;
    const float* s = sin_t + (long) t * half;
    float* row = x + (long) t * heads * head_dim;
    for (int p = threadIdx.x; p < heads * half; p += blockDim.x) {
        int h = p / half, i = p % half;
        float* v = row + h * head_dim;
        float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
    }
}

// g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u, the gated MLP's product, in place.
extern "C" __global__ void silu_mul(float* g, const float* u, long n) {
    long i = (long) blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        float v = g[i];
        g[i] = v / (1.f + expf(-v)) * u[i];
    }
}
