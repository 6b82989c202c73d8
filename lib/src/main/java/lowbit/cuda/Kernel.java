package lowbit.cuda;

import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;

/**
 * One {@code __global__} function of a kernels/*.cu file. Arguments are passed in the order of its C signature:
 * {@link DeviceBuffer} or {@link CUdeviceptr} for pointers (null for nullptr), Integer, Long, Float and Double for scalars.
 * With the system property {@code lowbit.cuda.sync=true} every launch is followed by a synchronize, so that a kernel
 * that faults is named in the error (at the cost of speed: for the GPU check script and debugging).
 */
public final class Kernel {
    private static final boolean SYNC = Boolean.getBoolean("lowbit.cuda.sync");

    private final Cuda cuda;
    private final String name;
    private final CUfunction function;
    private int sharedLimit = 48 * 1024;

    Kernel(Cuda cuda, String name, CUfunction function) {
        this.cuda = cuda;
        this.name = name;
        this.function = function;
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
            return of((int) ((n + threads - 1) / threads), threads);
        }
    }

    public String name() {
        return name;
    }

    /** Launches on the default stream (asynchronous unless lowbit.cuda.sync is set). */
    public void launch(Grid g, Object... args) {
        if (g.gx() <= 0 || g.gy() <= 0 || g.gz() <= 0) return; // nothing to do: an empty launch is an error in CUDA
        cuda.makeCurrent();
        if (g.sharedBytes() > sharedLimit) allowShared(g.sharedBytes());
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) params[i] = parameter(args[i], i);
        Cuda.check(cuLaunchKernel(function, g.gx(), g.gy(), g.gz(), g.bx(), g.by(), g.bz(), g.sharedBytes(), null,
                Pointer.to(params), null), "launching " + name);
        if (SYNC) Cuda.check(jcuda.driver.JCudaDriver.cuCtxSynchronize(), "running " + name);
    }

    /** Kernels using more than 48 KiB of dynamic shared memory must say so first (Hopper allows up to 227 KiB). */
    private synchronized void allowShared(int bytes) {
        Cuda.check(cuFuncSetAttribute(function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                "allowing " + bytes + " bytes of shared memory for " + name);
        sharedLimit = bytes;
    }

    private Pointer parameter(Object a, int index) {
        if (a == null) return Pointer.to(new CUdeviceptr()); // an absent optional array (a bias): the kernel sees nullptr
        if (a instanceof DeviceBuffer b) return Pointer.to(b.pointer());
        if (a instanceof CUdeviceptr p) return Pointer.to(p);
        if (a instanceof Integer v) return Pointer.to(new int[] {v});
        if (a instanceof Long v) return Pointer.to(new long[] {v});
        if (a instanceof Float v) return Pointer.to(new float[] {v});
        if (a instanceof Double v) return Pointer.to(new double[] {v});
        throw new IllegalArgumentException(name + ": argument " + index + " is a " + (a == null ? "null" : a.getClass().getSimpleName())
                + ", not a device buffer or a number");
    }
}
