package lowbit.model.cuda;

import lowbit.cuda.Cuda;
import lowbit.cuda.Kernel;

import jcuda.driver.CUdeviceptr;

/**
 * One Java call per kernel of the forward pass (kernels/forward.cu, attention.cu, logits.cu, elementwise.cu), with its
 * launch shape: {@link DeviceModel} composes them, and a GPU test can run each alone against its CPU twin.
 */
final class ForwardKernels {
    private ForwardKernels() {}

    private static final int THREADS = 256;
    /** attention.cu's ATT_Q, ATT_K and ATT_DMAX. */
    static final int ATT_Q = 32, ATT_K = 64, ATT_DMAX = 256;

    /** x[t] = table[tokens[t]] for rows tokens; the table in fp32, or in bf16 when {@code bf16}. */
    static void embed(Cuda cuda, CUdeviceptr x, CUdeviceptr table, boolean bf16, CUdeviceptr tokens, int rows, int dim) {
        cuda.kernel("forward", bf16 ? "embed_rows_bf16" : "embed_rows").launch(Kernel.Grid.of(rows, 128), x, table, tokens, rows, dim);
    }

    /** out[r] = w * x[r] / rms(x[r]) over rows of d values (out may be x): lowbit.tensor.RmsNorm's twin. */
    static void rmsNorm(Cuda cuda, CUdeviceptr x, CUdeviceptr out, CUdeviceptr w, int rows, int d, float eps) {
        cuda.kernel("forward", "rms_norm_rows").launch(Kernel.Grid.of(rows, d >= 1024 ? THREADS : d >= 128 ? 128 : 32), x, out, w, rows, d, eps);
    }

    /** RoPE on x [rows][heads][headDim] in place, row t at position t, with RotaryTables' cos and sin. */
    static void rope(Cuda cuda, CUdeviceptr x, CUdeviceptr cos, CUdeviceptr sin, int rows, int heads, int headDim) {
        cuda.kernel("forward", "rope_rows").launch(Kernel.Grid.of(rows, Math.min(THREADS, Math.max(32, heads * headDim / 2))),
                x, cos, sin, rows, heads, headDim);
    }

    /** g = silu(g) * u over n values. */
    static void siluMul(Cuda cuda, CUdeviceptr g, CUdeviceptr u, long n) {
        cuda.kernel("forward", "silu_mul").launch(Kernel.Grid.cover(n, THREADS), g, u, n);
    }

    /** y += x over n values (the residual connection). */
    static void addInPlace(Cuda cuda, CUdeviceptr y, CUdeviceptr x, long n) {
        cuda.kernel("elementwise", "add_inplace").launch(Kernel.Grid.cover(n, THREADS), y, x, n);
    }

    /** Causal attention: q [T][heads][d], k and v [T][kvHeads][d], out [T][heads][d]; lowbit.tensor.Attention#causal's twin. */
    static void attention(Cuda cuda, CUdeviceptr q, CUdeviceptr k, CUdeviceptr v, CUdeviceptr out, int T, int heads, int kvHeads, int d) {
        int shared = 4 * (ATT_Q * d + ATT_K * (d + 1) + ATT_K * d);
        cuda.kernel("attention", "attention_causal").launch(Kernel.Grid.of((T + ATT_Q - 1) / ATT_Q, heads, 128, shared),
                q, k, v, out, T, heads, kvHeads, d, (float) (1.0 / Math.sqrt(d)));
    }

    /** nll[r] = logsumexp(logits[r]) - logits[r][targets[r]] (doubles) for rows of vocab logits. */
    static void nll(Cuda cuda, CUdeviceptr logits, CUdeviceptr targets, CUdeviceptr nll, int rows, int vocab) {
        cuda.kernel("logits", "nll_rows").launch(Kernel.Grid.of(rows, THREADS), logits, targets, nll, rows, vocab);
    }

    /** logits[r] := log_softmax(logits[r]) in place. */
    static void logSoftmax(Cuda cuda, CUdeviceptr logits, int rows, int vocab) {
        cuda.kernel("logits", "log_softmax_rows").launch(Kernel.Grid.of(rows, THREADS), logits, rows, vocab);
    }
}
