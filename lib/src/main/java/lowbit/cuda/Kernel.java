package lowbit.cuda;

import java.util.List;
import jcuda.driver.CUdeviceptr;

/**
 * One {@code __global__} function of a kernels/*.cu file. Arguments are passed in the order of its C signature:
 * {@link DeviceBuffer} or {@link CUdeviceptr} for pointers (null for nullptr), Integer, Long, Float and Double for scalars.
 * Each launch is checked first against the kernel's PTX signature and CUDA's launch limits (one-line {@link
 * CudaException}), because the driver would copy a wrong-sized argument's bytes without a word.
 * With the system property {@code lowbit.cuda.sync=true} every launch is followed by a synchronize, so that a kernel
 * that faults is named in the error (at the cost of speed: for the GPU check script and debugging).
 */
public final class Kernel {
    private static final boolean SYNC = Boolean.getBoolean("lowbit.cuda.sync");
    /** CUDA's limits on every GPU since compute capability 3.0. */
    static final int MAX_BLOCK_THREADS = 1024, MAX_BLOCK_Z = 64, MAX_GRID_YZ = 65535;
    /** Dynamic shared memory a block may opt into on Hopper (227 KiB); Ampere's A100 allows 163 KiB. */
    static final int MAX_SHARED_BYTES = 227 * 1024;

    private final Cuda cuda;
    private final Driver driver;
    private final String name;
    private final Object function;
    private final PtxSignature signature;
    private int sharedLimit = 48 * 1024;

    Kernel(Cuda cuda, Driver driver, String name, Object function, PtxSignature signature) {
        this.cuda = cuda;
        this.driver = driver;
        this.name = name;
        this.function = function;
        this.signature = signature;
    }

    /** A launch shape: grid and block dimensions, and dynamic shared memory in bytes. */
    public record Grid(int gx, int gy, int gz, int bx, int by, int bz, int sharedBytes) {
        public static Grid of(int blocks, int threads) {
            return new Grid(blocks, 1, 1, threads, 1, 1, 0);
        }

        public static Grid of(int gx, int gy, int threads, int sharedBytes) {
            return new Grid(gx, gy, 1, threads, 1, 1, sharedBytes);
        }

        /** One thread per element of {@code n}, {@code threads} per block. */
        public static Grid cover(long n, int threads) {
            long blocks = (n + threads - 1) / threads;
            // more than 2^31 - 1 blocks would wrap to a negative int: keep it out of range so that launch refuses it
            return of(blocks > Integer.MAX_VALUE ? -1 : (int) blocks, threads);
        }

        /** Threads per block. */
        public long threads() {
            return (long) bx * by * bz;
        }
    }

    /**
     * A launch a {@link Cuda#dryRun()} recorded: the kernel ("module.function"), its shape, its arguments, and for each
     * pointer argument the bytes from it to the end of its buffer (null for scalars and null pointers), so that a test can
     * check that each array the kernel reads or writes fits.
     */
    public record Launch(String kernel, Grid grid, List<Object> args, List<Long> room) {}

    public String name() {
        return name;
    }

    /** The kernel's parameters, from its PTX. */
    public PtxSignature signature() {
        return signature;
    }

    /** Launches on the default stream (asynchronous unless lowbit.cuda.sync is set). */
    public void launch(Grid g, Object... args) {
        check(g, args);
        if (g.gx() == 0 || g.gy() == 0 || g.gz() == 0) return; // nothing to do: an empty launch is an error in CUDA
        cuda.makeCurrent();
        if (g.sharedBytes() > sharedLimit) allowShared(g.sharedBytes());
        driver.launch(function, name, g, args);
        if (SYNC) driver.synchronize("running " + name);
    }

    /**
     * Refuses a launch the driver would refuse, or worse run with garbage: arguments that do not match the kernel's
     * parameters, a grid or block out of CUDA's limits or the kernel's compiled thread bound, too much shared memory.
     */
    void check(Grid g, Object[] args) {
        String who = "kernels/" + signature.module() + ".cu " + signature.kernel();
        signature.check(args);
        if (g.gx() < 0 || g.gy() < 0 || g.gz() < 0 || g.gy() > MAX_GRID_YZ || g.gz() > MAX_GRID_YZ)
            throw new CudaException(who + ": grid " + g.gx() + " x " + g.gy() + " x " + g.gz()
                    + " is outside CUDA's limits (x 0..2^31-1, y and z 0.." + MAX_GRID_YZ + ")");
        if (g.bx() <= 0 || g.by() <= 0 || g.bz() <= 0 || g.bz() > MAX_BLOCK_Z || g.threads() > MAX_BLOCK_THREADS)
            throw new CudaException(who + ": block " + g.bx() + " x " + g.by() + " x " + g.bz() + " is outside CUDA's limits (positive, "
                    + MAX_BLOCK_THREADS + " threads at most, z up to " + MAX_BLOCK_Z + ")");
        if (g.threads() > signature.maxThreads())
            throw new CudaException(who + ": " + g.threads() + " threads per block, the kernel was compiled for at most "
                    + signature.maxThreads() + " (.maxntid)");
        if (g.sharedBytes() < 0 || g.sharedBytes() > MAX_SHARED_BYTES)
            throw new CudaException(who + ": " + g.sharedBytes() + " bytes of dynamic shared memory, CUDA allows 0.."
                    + MAX_SHARED_BYTES + " (227 KiB)");
    }

    /** Kernels using more than 48 KiB of dynamic shared memory must say so first (Hopper allows up to 227 KiB). */
    private synchronized void allowShared(int bytes) {
        driver.allowShared(function, bytes, name);
        sharedLimit = bytes;
    }
}
