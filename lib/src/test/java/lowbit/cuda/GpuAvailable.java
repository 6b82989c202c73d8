package lowbit.cuda;

import org.junit.jupiter.api.Assumptions;

/** Tests that need a GPU call {@link #require()} first: skipped, with the reason, where there is none. */
public final class GpuAvailable {
    private GpuAvailable() {}

    /** The GPU, or the test is skipped with "no GPU: ..." (the driver's or JCuda's reason). */
    public static Cuda require() {
        String reason = Cuda.unavailableReason();
        Assumptions.assumeTrue(reason == null, () -> "GPU test skipped: " + reason);
        return Cuda.get();
    }
}
