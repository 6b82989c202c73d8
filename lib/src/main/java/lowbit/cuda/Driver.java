package lowbit.cuda;

import java.util.List;
import jcuda.driver.CUdeviceptr;

/**
 * What {@link Cuda}, {@link DeviceBuffer} and {@link Kernel} ask of the CUDA driver: the real one through JCuda
 * ({@link CudaDriver}) or a dry run in host memory ({@link DryRunDriver}) that lets the host code of every GPU class run
 * on a machine without a GPU, its launches checked and recorded. Failures are one-line {@link CudaException}s.
 */
interface Driver {
    /** The device as {@link Cuda#describe()} shows it. */
    record Info(String name, long totalMemory, int major, int minor, int multiprocessors, int driverVersion) {}

    Info info();

    void makeCurrent();

    long freeMemory();

    /** {@code bytes} of device memory, or a CudaException (CUDA_ERROR_OUT_OF_MEMORY is reported by {@link Cuda#allocate}). */
    CUdeviceptr allocate(long bytes, String what);

    void free(CUdeviceptr p, long bytes);

    /** {@code n} bytes of the Java array {@code src} (float[], short[], int[], byte[], double[]) to {@code dst}. */
    void copyIn(CUdeviceptr dst, Object src, long n, String what);

    /** {@code n} bytes from {@code src} into the Java array {@code dst}. */
    void copyOut(Object dst, CUdeviceptr src, long n, String what);

    void memsetZero(CUdeviceptr p, long bytes, String what);

    /** A loaded module (its PTX text NUL-terminated), an opaque handle. */
    Object loadModule(String module, byte[] ptx);

    /** The kernel {@code function} of a loaded module, or a CudaException naming it. */
    Object function(Object module, String moduleName, String function);

    void allowShared(Object function, int bytes, String name);

    void launch(Object function, String name, Kernel.Grid g, Object[] args);

    void synchronize(String doing);

    /** Whether this is a dry run. */
    default boolean dryRun() {
        return false;
    }

    /** The launches a dry run recorded. */
    default List<Kernel.Launch> launches() {
        throw new IllegalStateException("launches are recorded only by a dry run (Cuda.dryRun())");
    }
}
