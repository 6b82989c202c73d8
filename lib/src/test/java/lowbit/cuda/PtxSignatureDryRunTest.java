package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The launch checks of {@link PtxSignature} and {@link Kernel} on a hand-written PTX snippet (the parameter list nvcc
 * writes for {@code f(float *x, long n, int k, float a, double b)} plus a struct), on every real PTX of kernels/*.cu,
 * and the dry-run driver's memory (copies, offsets, bounds). No GPU needed.
 */
public class PtxSignatureDryRunTest {
    static final String SNIPPET = """
            .version 8.0
            .target sm_80
            .address_size 64
            .visible .entry f(
            \t.param .u64 f_param_0,
            \t.param .u64 f_param_1,
            \t.param .u32 f_param_2,
            \t.param .f32 f_param_3,
            \t.param .f64 f_param_4,
            \t.param .align 8 .b8 f_param_5[16]
            )
            .maxntid 256, 1, 1
            {
            \tret;
            }
            .visible .entry g()
            {
            \tret;
            }
            """;

    @Test
    void parsesTypesWidthsAndThreadBound() {
        Map<String, PtxSignature> s = PtxSignature.parse("snippet", SNIPPET);
        assertEquals(Set.of("f", "g"), s.keySet());
        PtxSignature f = s.get("f");
        assertEquals(List.of(new PtxSignature.Param("u64", 8), new PtxSignature.Param("u64", 8), new PtxSignature.Param("u32", 4),
                new PtxSignature.Param("f32", 4), new PtxSignature.Param("f64", 8), new PtxSignature.Param("b8", 16)), f.params());
        assertEquals(256, f.maxThreads());
        assertEquals(List.of(), s.get("g").params());
        assertEquals(1024, s.get("g").maxThreads());
    }

    @Test
    void refusesEachMismatchInOneLine() {
        PtxSignature f = PtxSignature.parse("gemm", SNIPPET.replace("f(", "gemm_f32(").replace("f_param", "gemm_f32_param"))
                .get("gemm_f32");
        CudaException e = assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7, 3, 1f, 2.0, null}));
        assertEquals("kernels/gemm.cu gemm_f32: argument 1 is an Integer (4 bytes), the kernel's parameter 1 is .u64 (a long or a pointer)",
                e.getMessage());
        assertEquals("kernels/gemm.cu gemm_f32: argument 2 is a Long (8 bytes), the kernel's parameter 2 is .u32 (an int)",
                assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7L, 3L, 1f, 2.0, null})).getMessage());
        assertEquals("kernels/gemm.cu gemm_f32: argument 3 is a Double, the kernel's parameter 3 is .f32 (a float)",
                assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7L, 3, 1.0, 2.0, null})).getMessage());
        assertEquals("kernels/gemm.cu gemm_f32: argument 4 is a Float, the kernel's parameter 4 is .f64 (a double)",
                assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7L, 3, 1f, 2f, null})).getMessage());
        assertEquals("kernels/gemm.cu gemm_f32: argument 5 is null (a pointer, 8 bytes), the kernel's parameter 5 is .b8 (16 bytes)",
                assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7L, 3, 1f, 2.0, null})).getMessage());
        assertEquals("kernels/gemm.cu gemm_f32: 2 arguments, the kernel takes 6",
                assertThrows(CudaException.class, () -> f.check(new Object[] {null, 7L})).getMessage());
    }

    @Test
    void everyRealKernelParsesWithScalarAndPointerParametersOnly() throws IOException {
        Path kernels = Path.of(System.getProperty("user.dir")).resolve("../kernels").normalize();
        List<String> modules;
        try (Stream<Path> s = Files.list(kernels)) {
            modules = s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".cu")).map(n -> n.substring(0, n.length() - 3)).sorted()
                    .toList();
        }
        assertFalse(modules.isEmpty());
        Set<String> scalar = Set.of("u32", "s32", "b32", "u64", "s64", "b64", "f32", "f64");
        int entries = 0;
        for (String m : modules) {
            byte[] ptx = Cuda.ptx(m);
            Map<String, PtxSignature> s = PtxSignature.parse(m, new String(ptx, 0, ptx.length - 1, StandardCharsets.US_ASCII));
            assertFalse(s.isEmpty(), m + ".ptx has no .entry");
            for (PtxSignature k : s.values()) {
                entries++;
                assertFalse(k.params().isEmpty(), k.kernel() + " has no parameters");
                for (PtxSignature.Param p : k.params()) assertTrue(scalar.contains(p.type()), k.kernel() + ": ." + p.type());
            }
        }
        // forward.cu's rms_norm_rows(const float *x, float *out, const float *w, int rows, int d, float eps), as written
        PtxSignature rms = PtxSignature.parse("forward", new String(Cuda.ptx("forward"), StandardCharsets.US_ASCII)).get("rms_norm_rows");
        assertEquals(List.of("u64", "u64", "u64", "u32", "u32", "f32"), rms.params().stream().map(PtxSignature.Param::type).toList());
        assertTrue(entries >= 30, entries + " kernels");
    }

    @Test
    void launchLimitsAreChecked() {
        Cuda cuda = Cuda.dryRun();
        assertTrue(cuda.isDryRun());
        assertTrue(cuda.describe().startsWith("dry run"), cuda.describe());
        Kernel k = cuda.kernel("elementwise", "add_inplace");
        try (DeviceBuffer y = cuda.floats(8, "y"); DeviceBuffer x = cuda.floats(8, "x")) {
            k.launch(Kernel.Grid.of(1, 256), y, x, 8L);
            String who = "kernels/elementwise.cu add_inplace: ";
            assertEquals(who + "block 2048 x 1 x 1 is outside CUDA's limits (positive, 1024 threads at most, z up to 64)",
                    assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(1, 2048), y, x, 8L)).getMessage());
            assertEquals(who + "grid 1 x 70000 x 1 is outside CUDA's limits (x 0..2^31-1, y and z 0..65535)",
                    assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(1, 70000, 32, 0), y, x, 8L)).getMessage());
            assertEquals(who + "block 0 x 1 x 1 is outside CUDA's limits (positive, 1024 threads at most, z up to 64)",
                    assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(1, 0), y, x, 8L)).getMessage());
            assertEquals(who + "232449 bytes of dynamic shared memory, CUDA allows 0..232448 (227 KiB)",
                    assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(1, 1, 32, 227 * 1024 + 1), y, x, 8L)).getMessage());
            assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.cover(1L << 42, 32), y, x, 8L));
            // gemm.cu's kernels are compiled with __launch_bounds__(256): 512 threads would fail to launch on the GPU
            Kernel gemm = cuda.kernel("gemm", "gemm_f32");
            assertEquals(256, gemm.signature().maxThreads());
            assertThrows(CudaException.class, () -> gemm.launch(Kernel.Grid.of(1, 1, 512, 0), x, x, null, y, 1, 1, 1));
            // an empty grid launches nothing, but its arguments are still checked
            k.launch(Kernel.Grid.of(0, 256), y, x, 8L);
            assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(0, 256), y, x, 8));
            assertEquals(1, cuda.launches().size());
            Kernel.Launch l = cuda.launches().get(0);
            assertEquals("elementwise.add_inplace", l.kernel());
            assertEquals(8L, l.args().get(2));
        }
    }

    @Test
    void missingKernelIsTheDriversError() {
        CudaException e = assertThrows(CudaException.class, () -> Cuda.dryRun().kernel("gemm", "gemm_f16"));
        assertEquals("kernels/gemm.cu has no kernel gemm_f16 (CUDA_ERROR_NOT_FOUND): the PTX in the jar is older than the code;"
                + " run ./lowbit setup", e.getMessage());
        assertTrue(assertThrows(CudaException.class, () -> Cuda.dryRun().kernel("nosuch", "f")).getMessage()
                .startsWith("the CUDA kernels are not built: lowbit/cuda/ptx/nosuch.ptx is not in the jar"));
    }

    @Test
    void dryRunMemoryKeepsWhatWasUploadedAndChecksBounds() {
        Cuda cuda = Cuda.dryRun();
        DeviceBuffer b = cuda.floats(4, "b");
        assertEquals(16, cuda.allocatedBytes());
        assertArrayEquals(new float[4], b.download(new float[4]), "never written: zeros");
        b.upload(new float[] {1, 2, 3, 4});
        assertArrayEquals(new float[] {3, 4}, b.download(2, new float[2]));
        b.upload(4, new float[] {9});
        assertArrayEquals(new float[] {1, 9, 3, 4}, b.download(new float[4]));
        byte[] raw = b.download(new byte[4]);
        assertArrayEquals(new byte[] {0, 0, (byte) 0x80, 0x3f}, raw, "1.0f little-endian, as on the GPU");
        assertThrows(IllegalArgumentException.class, () -> b.download(3, new float[2]));
        assertThrows(IllegalArgumentException.class, () -> b.upload(new float[5]));
        assertThrows(IllegalArgumentException.class, () -> b.at(17));
        b.at(16);   // one past the end is a valid pointer (an empty slice)
        // a pointer past a buffer's end given to a kernel is refused by the dry run
        Kernel k = cuda.kernel("elementwise", "add_inplace");
        assertThrows(CudaException.class, () -> k.launch(Kernel.Grid.of(1, 32), b.at(8).withByteOffset(4096), b, 1L));
        b.zero();
        assertArrayEquals(new float[4], b.download(new float[4]));
        b.close();
        assertEquals(0, cuda.allocatedBytes());
        assertThrows(IllegalStateException.class, () -> b.download(new float[1]));
        assertThrows(IllegalStateException.class, () -> k.launch(Kernel.Grid.of(1, 32), b, b, 1L));
    }
}
