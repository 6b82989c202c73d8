package lowbit.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUresult;

/**
 * The GPU, through JCuda's binding of the CUDA driver API: the first device's primary context, the kernels of
 * {@code kernels/*.cu} loaded from the PTX inside the jar (the driver compiles it for the GPU at hand), and device
 * memory. One per process ({@link #get()}); every method makes the context current on the calling thread first.
 * A machine without the driver or a GPU gets a {@link CudaException} with one line, never a JVM crash. Every launch is
 * checked against its kernel's PTX signature first ({@link PtxSignature}). {@link #dryRun()} gives one that runs the
 * host code without a GPU: memory in the host, launches checked and recorded, not executed.
 */
public final class Cuda {
    /** Where set-up puts the PTX inside the jar: lowbit/cuda/ptx/NAME.ptx for kernels/NAME.cu. */
    static final String PTX_RESOURCES = "/lowbit/cuda/ptx/";

    private static Cuda instance;
    private static CudaException unavailable;

    private final Driver driver;
    private final String name;
    private final long totalMemory;
    private final int major, minor, multiprocessors, driverVersion;
    private final Map<String, Object> modules = new HashMap<>();
    private final Map<String, Map<String, PtxSignature>> signatures = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    private final AtomicLong allocated = new AtomicLong();

    private Cuda(Driver driver) {
        this.driver = driver;
        Driver.Info i = driver.info();
        this.name = i.name();
        this.totalMemory = i.totalMemory();
        this.major = i.major();
        this.minor = i.minor();
        this.multiprocessors = i.multiprocessors();
        this.driverVersion = i.driverVersion();
    }

    /**
     * A dry run: no GPU is touched. Device memory is host memory at made-up addresses (downloads return what was uploaded,
     * or zeros), every copy and pointer is bounds-checked, kernels are looked up in the PTX, and each launch is checked
     * against its kernel's signature and recorded ({@link #launches()}), not executed. For tests and debugging of the host
     * code; {@link Device#choose} never picks it. A fresh one each call.
     */
    public static Cuda dryRun() {
        return new Cuda(new DryRunDriver());
    }

    /** Whether this is a {@link #dryRun()}. */
    public boolean isDryRun() {
        return driver.dryRun();
    }

    /** The launches a {@link #dryRun()} recorded, in order; an IllegalStateException on a GPU. */
    public List<Kernel.Launch> launches() {
        return driver.launches();
    }

    /** The GPU, opened at the first call; a {@link CudaException} (the same one every time) when there is none. */
    public static synchronized Cuda get() {
        if (instance != null) return instance;
        if (unavailable != null) throw unavailable;
        try {
            instance = open();
            return instance;
        } catch (CudaException e) {
            unavailable = e;
            throw e;
        }
    }

    /** Whether {@link #get()} would succeed. */
    public static boolean available() {
        try {
            get();
            return true;
        } catch (CudaException e) {
            return false;
        }
    }

    /** Why there is no GPU, or null when there is one. */
    public static String unavailableReason() {
        try {
            get();
            return null;
        } catch (CudaException e) {
            return e.getMessage();
        }
    }

    private static Cuda open() {
        return new Cuda(CudaDriver.open());
    }

    /** The device's name, e.g. "NVIDIA H200". */
    public String name() {
        return name;
    }

    public long totalMemory() {
        return totalMemory;
    }

    /** Free device memory now, in bytes. */
    public long freeMemory() {
        makeCurrent();
        return driver.freeMemory();
    }

    /** Compute capability as major * 10 + minor (90 for Hopper). */
    public int computeCapability() {
        return major * 10 + minor;
    }

    public int multiprocessors() {
        return multiprocessors;
    }

    /** The driver's CUDA version as major * 1000 + minor * 10 (13000 for 13.0). */
    public int driverVersion() {
        return driverVersion;
    }

    /** One line for provenance and logs: "NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0)". */
    public String describe() {
        if (isDryRun())
            return String.format(Locale.ROOT, "dry run: no GPU, kernels checked and recorded, not executed (as sm_%d, %d SMs, %.1f GiB)",
                    computeCapability(), multiprocessors, totalMemory / (double) (1L << 30));
        return String.format(Locale.ROOT, "%s (sm_%d, %d SMs, %.1f GiB, driver CUDA %d.%d)", name, computeCapability(), multiprocessors,
                totalMemory / (double) (1L << 30), driverVersion / 1000, driverVersion % 1000 / 10);
    }

    /** Bytes this process holds through {@link #allocate}. */
    public long allocatedBytes() {
        return allocated.get();
    }

    /**
     * Refuses, before anything is uploaded, work whose device memory would not fit: "{what} needs 12.3 GiB of GPU memory;
     * the NVIDIA H200 has 10.1 GiB free of 139.8 GiB".
     */
    public void require(long bytes, String what) {
        long free = freeMemory();
        if (bytes > free)
            throw new CudaException(String.format(Locale.ROOT, "%s needs %.2f GiB of GPU memory; the %s has %.2f GiB free of %.1f GiB%s", what,
                    bytes / (double) (1L << 30), name, free / (double) (1L << 30), totalMemory / (double) (1L << 30),
                    " (use --device cpu, bf16 weights, or a smaller model)"));
    }

    /** Device memory of {@code bytes}, not cleared; {@code what} names it in messages. */
    public DeviceBuffer allocate(long bytes, String what) {
        if (bytes <= 0) throw new IllegalArgumentException(what + ": a GPU buffer of " + bytes + " bytes");
        makeCurrent();
        CUdeviceptr p = driver.allocate(bytes, what);
        if (p == null) {
            require(bytes, what);
            check(CUresult.CUDA_ERROR_OUT_OF_MEMORY, "allocating " + bytes + " bytes for " + what);
        }
        allocated.addAndGet(bytes);
        return new DeviceBuffer(this, driver, p, bytes, what);
    }

    /** A buffer of {@code n} floats. */
    public DeviceBuffer floats(long n, String what) {
        return allocate(4 * n, what);
    }

    /** A buffer holding a copy of {@code values}. */
    public DeviceBuffer upload(float[] values, String what) {
        return floats(values.length, what).upload(values);
    }

    void released(long bytes) {
        allocated.addAndGet(-bytes);
    }

    /**
     * The kernel {@code function} (an {@code extern "C" __global__} function) of kernels/{@code module}.cu, loaded from
     * its PTX on first use.
     */
    public synchronized Kernel kernel(String module, String function) {
        String key = module + "/" + function;
        Kernel k = kernels.get(key);
        if (k != null) return k;
        makeCurrent();
        Object m = modules.get(module);
        if (m == null) {
            byte[] ptx = ptx(module);
            signatures.put(module, PtxSignature.parse(module, new String(ptx, 0, ptx.length - 1, StandardCharsets.US_ASCII)));
            m = driver.loadModule(module, ptx);
            modules.put(module, m);
        }
        Object f = driver.function(m, module, function);
        PtxSignature sig = signatures.get(module).get(function);
        if (sig == null) throw noKernel(module, function, "not in its PTX text");
        k = new Kernel(this, driver, module + "." + function, f, sig);
        kernels.put(key, k);
        return k;
    }

    /** The one message for a kernel the PTX lacks, from the driver or the dry run alike. */
    static CudaException noKernel(String module, String function, String why) {
        return new CudaException("kernels/" + module + ".cu has no kernel " + function + " (" + why
                + "): the PTX in the jar is older than the code; run ./lowbit setup");
    }

    /** The PTX text of kernels/{@code module}.cu, NUL-terminated as cuModuleLoadData wants it. */
    static byte[] ptx(String module) {
        try (InputStream in = Cuda.class.getResourceAsStream(PTX_RESOURCES + module + ".ptx")) {
            if (in == null)
                throw new CudaException("the CUDA kernels are not built: " + PTX_RESOURCES.substring(1) + module + ".ptx is not in the jar"
                        + " (./lowbit setup compiles kernels/" + module + ".cu with nvcc)");
            byte[] text = in.readAllBytes();
            return Arrays.copyOf(text, text.length + 1);
        } catch (IOException e) {
            throw new CudaException("reading the PTX of kernels/" + module + ".cu: " + e.getMessage(), e);
        }
    }

    /** Waits for every launched kernel; a failure inside one is reported here (CUDA reports them late). */
    public void synchronize() {
        makeCurrent();
        driver.synchronize("running the GPU's kernels");
    }

    /** Makes this context current on the calling thread (the driver API keeps one per thread). */
    public void makeCurrent() {
        driver.makeCurrent();
    }

    /** Throws a one-line {@link CudaException} naming what was being done when {@code result} is an error. */
    static void check(int result, String doing) {
        if (result != CUresult.CUDA_SUCCESS)
            throw new CudaException("CUDA failed " + doing + ": " + CUresult.stringFor(result)
                    + (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY ? " (use --device cpu, bf16 weights, or a smaller model)" : ""));
    }

}
