package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

/**
 * The bytes each array argument of a kernel must hold, from its scalar arguments, as the kernels/*.cu sources index
 * them: a dry run ({@link Cuda#dryRun()}) records how much room each pointer has to its buffer's end, and this checks
 * that every array fits. Written from the kernels' signatures and loops, independently of the host code under test.
 */
public final class DryRunExtents {
    private DryRunExtents() {}

    private static int i(Kernel.Launch l, int k) {
        return (Integer) l.args().get(k);
    }

    private static long j(Kernel.Launch l, int k) {
        return (Long) l.args().get(k);
    }

    /** Bytes needed per argument (0: a scalar or not checked) for the kernel of {@code l}. */
    static long[] needed(Kernel.Launch l) {
        String f = l.kernel().substring(l.kernel().indexOf('.') + 1);
        Function<Integer, Integer> I = k -> i(l, k);
        if (f.startsWith("dq_gemv") || f.startsWith("dq_gemm")) {
            // words, scales, zeros, gidx, out, in, groups, groupSize, perTensor, fixedZero, mode, x, M, bias, y
            int bits = Integer.parseInt(f.substring(f.lastIndexOf('b') + 1));
            long out = I.apply(4), in = I.apply(5), groups = I.apply(6), rows = I.apply(12);
            long scaleRows = I.apply(8) == 1 ? 1 : out;
            return new long[] {4 * out * ((in + 31) / 32 * bits), 4 * scaleRows * groups, 4 * scaleRows * groups, 4 * in, 0, 0, 0, 0, 0, 0, 0,
                    4 * rows * in, 0, 4 * out, 4 * rows * out};
        }
        return switch (f) {
            case "gemm_f32", "gemm_bf16", "gemm_bf16_tc" -> {
                long rows = I.apply(4), out = I.apply(5), in = I.apply(6);
                yield new long[] {4 * rows * in, (f.equals("gemm_f32") ? 4 : 2) * out * in, 4 * out, 4 * rows * out, 0, 0, 0};
            }
            case "embed_rows", "embed_rows_bf16" -> new long[] {4L * I.apply(3) * I.apply(4), 0, 4L * I.apply(3), 0, 0};
            case "rms_norm_rows" -> new long[] {4L * I.apply(3) * I.apply(4), 4L * I.apply(3) * I.apply(4), 4L * I.apply(4), 0, 0, 0};
            case "rope_rows" -> {
                long rows = I.apply(3), heads = I.apply(4), d = I.apply(5);
                yield new long[] {4 * rows * heads * d, 4 * rows * (d / 2), 4 * rows * (d / 2), 0, 0, 0};
            }
            case "silu_mul", "add_inplace" -> new long[] {4 * j(l, 2), 4 * j(l, 2), 0};
            case "attention_causal" -> {
                long t = I.apply(4), h = I.apply(5), kv = I.apply(6), d = I.apply(7);
                yield new long[] {4 * t * h * d, 4 * t * kv * d, 4 * t * kv * d, 4 * t * h * d, 0, 0, 0, 0, 0};
            }
            case "nll_rows" -> new long[] {4L * I.apply(3) * I.apply(4), 4L * I.apply(3), 8L * I.apply(3), 0, 0};
            case "log_softmax_rows" -> new long[] {4L * I.apply(1) * I.apply(2), 0, 0};
            case "act_per_token" -> new long[] {4L * I.apply(1) * I.apply(2), 0, 0, 0, 0};
            case "act_per_tensor" -> new long[] {4 * j(l, 1), 0, 0, 0};
            case "kv_groups" -> new long[] {4 * j(l, 1) * I.apply(2), 0, 0, 0, 0};
            case "rtn_fit_codes" -> {
                long rows = I.apply(1), cols = I.apply(2), g = I.apply(3);
                long params = I.apply(4) == 1 ? 1 : rows * (g == 0 ? 1 : (cols + g - 1) / g);
                yield new long[] {4 * rows * cols, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4 * params, 4 * params, rows * cols};
            }
            case "awq_loss" -> {
                long t = j(l, 1), in = I.apply(2), out = I.apply(4);
                long blocks = (long) l.grid().gx() * l.grid().gy();
                yield new long[] {4 * t * in, 0, 0, 4 * out * in, 0, 4 * out, 4 * t * out, 8 * blocks};
            }
            case "gptq_hessian_scale" -> new long[] {8 * j(l, 1), 0, 0};
            case "gptq_hessian_add" -> {
                long rows = I.apply(2), n = I.apply(3);
                yield new long[] {8 * n * n, 4 * rows * n, 0, 0, 0};
            }
            case "gptq_gather_columns" -> {
                long rows = I.apply(1), n = I.apply(2);
                yield new long[] {8 * rows * n, 0, 0, 0, 0, 8 * rows * (I.apply(4) - I.apply(3))};
            }
            case "gptq_block" -> {
                long rows = I.apply(1), n = I.apply(2), count = I.apply(4), groups = I.apply(9);
                yield new long[] {8 * rows * n, 0, 0, 0, 0, 8 * n * n, 8 * rows * groups, 8 * rows * groups, 4 * n, 0, 0, 0, 4 * n, rows * n,
                        8 * rows * count, 8 * rows};
            }
            case "gptq_trailing" -> {
                long rows = I.apply(1), n = I.apply(2), count = I.apply(4);
                yield new long[] {8 * rows * n, 0, 0, 0, 0, 0, 8 * rows * count, 8 * n * n};
            }
            default -> throw new AssertionError("no extents written for " + l.kernel());
        };
    }

    /** One line per array argument of {@code launches} that is smaller than its kernel reads or writes. */
    public static List<String> violations(List<Kernel.Launch> launches) {
        List<String> out = new ArrayList<>();
        for (Kernel.Launch l : launches) {
            long[] need = needed(l);
            assertEquals(l.args().size(), need.length, l.kernel() + ": extents for every argument");
            for (int k = 0; k < need.length; k++) {
                Long room = l.room().get(k);
                if (room != null && need[k] > room)
                    out.add(l.kernel() + " argument " + k + ": needs " + need[k] + " bytes, its buffer has " + room + " from there");
            }
        }
        return out;
    }

    /** Fails naming every array argument that does not fit. */
    public static void assertFit(List<Kernel.Launch> launches) {
        List<String> v = violations(launches);
        assertEquals(List.of(), v.subList(0, Math.min(10, v.size())), v.size() + " arrays too small");
    }
}
