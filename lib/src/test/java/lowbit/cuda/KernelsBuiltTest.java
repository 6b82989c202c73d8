package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * CI has no GPU, but it compiles every kernel: set-up runs nvcc on kernels/*.cu (environment/build_kernels.sh), and this
 * test checks that the jar's resources hold the PTX of every source file with an entry for every {@code extern "C"
 * __global__} function in it, so a kernel that failed to compile, or was never compiled, fails the build's tests.
 */
class KernelsBuiltTest {
    private static final Pattern KERNEL = Pattern.compile("extern\\s+\"C\"\\s+__global__\\s+(?:__launch_bounds__\\([^)]*\\)\\s+)?void\\s+(\\w+)\\s*\\(");

    @Test
    void everyKernelHasItsPtxInTheJar() throws IOException {
        Path kernels = Path.of(System.getProperty("user.dir")).resolve("../kernels").normalize();
        List<Path> sources;
        try (Stream<Path> s = Files.list(kernels)) {
            sources = s.filter(p -> p.toString().endsWith(".cu")).sorted().toList();
        }
        assertFalse(sources.isEmpty(), "no kernels/*.cu under " + kernels);
        List<String> missing = new ArrayList<>();
        int entries = 0;
        for (Path src : sources) {
            String module = src.getFileName().toString().replace(".cu", "");
            String ptx;
            try {
                ptx = new String(Cuda.ptx(module), StandardCharsets.US_ASCII);
            } catch (CudaException e) {
                missing.add(e.getMessage() + " (run environment/build_kernels.sh, then mvn package)");
                continue;
            }
            Matcher m = KERNEL.matcher(Files.readString(src));
            while (m.find()) {
                entries++;
                if (!ptx.contains(".entry " + m.group(1) + "("))
                    missing.add(module + ".ptx has no entry " + m.group(1) + ": it is older than kernels/" + module + ".cu");
            }
            assertTrue(ptx.contains(".target sm_80"), module + ".ptx should target compute_80 (JIT-compiled for Hopper and newer)");
        }
        assertTrue(missing.isEmpty(), String.join("; ", missing));
        assertTrue(entries > 0, "no extern \"C\" __global__ kernels found in kernels/*.cu");
    }
}
