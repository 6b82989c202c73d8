package lowbit.cuda;

import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuCtxSynchronize;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuDriverGetVersion;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/**
 * The GPU, through JCuda's binding of the CUDA driver API: the first device's primary context, the kernels of
 * {@code kernels/*.cu} loaded from the PTX inside the jar (the driver compiles it for the GPU at hand), and device
 * memory. One per process ({@link #get()}); every method makes the context current on the calling thread first.
 * A machine without the driver or a GPU gets a {@link CudaException} with one line, never a JVM crash.
 */
public final class Cuda {
    /** Where set-up puts the PTX inside the jar: lowbit/cuda/ptx/NAME.ptx for kernels/NAME.cu. */
    static final String PTX_RESOURCES = "/lowbit/cuda/ptx/";

    private static Cuda instance;
    private static CudaException unavailable;

    private final CUdevice device;
    private final CUcontext context;
    private final String name;
    private final long totalMemory;
    private final int major, minor, multiprocessors, driverVersion;
    private final Map<String, CUmodule> modules = new HashMap<>();
    private final Map<String, Kernel> kernels = new HashMap<>();
    private final AtomicLong allocated = new AtomicLong();

    private Cuda(CUdevice device, CUcontext context) {
        this.device = device;
        this.context = context;
        byte[] n = new byte[256];
        check(cuDeviceGetName(n, n.length, device), "reading the GPU's name");
        int end = 0;
        while (end < n.length && n[end] != 0) end++;
        this.name = new String(n, 0, end, java.nio.charset.StandardCharsets.US_ASCII);
        long[] total = new long[1];
        check(cuDeviceTotalMem(total, device), "reading the GPU's memory size");
        this.totalMemory = total[0];
        this.major = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
        this.minor = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
        this.multiprocessors = attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        int[] v = new int[1];
        check(cuDriverGetVersion(v), "reading the driver's version");
        this.driverVersion = v[0];
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
        try {
            JCudaDriver.setExceptionsEnabled(false);
        } catch (LinkageError e) {
            // JCuda's native library links against the driver's libcuda.so.1: on a machine without the NVIDIA driver it
            // does not load (UnsatisfiedLinkError, or NoClassDefFoundError when the class failed to initialize before)
            throw new CudaException("no CUDA GPU: the NVIDIA driver's libcuda.so.1 could not be loaded (" + firstLine(e.getMessage())
                    + "); install the driver, or use --device cpu");
        }
        int r = cuInit(0);
        if (r != CUresult.CUDA_SUCCESS)
            throw new CudaException(r == CUresult.CUDA_ERROR_NO_DEVICE
                    ? "no CUDA GPU: the driver is installed but found no device (cuInit: CUDA_ERROR_NO_DEVICE); use --device cpu"
                    : "no CUDA GPU: the driver did not start (cuInit: " + CUresult.stringFor(r) + "); use --device cpu");
        int[] count = new int[1];
        check(cuDeviceGetCount(count), "counting GPUs");
        if (count[0] == 0) throw new CudaException("no CUDA GPU: the driver found no device; use --device cpu");
        CUdevice dev = new CUdevice();
        check(cuDeviceGet(dev, 0), "opening GPU 0");
        CUcontext ctx = new CUcontext();
        check(cuDevicePrimaryCtxRetain(ctx, dev), "creating a context on GPU 0");
        check(cuCtxSetCurrent(ctx), "making GPU 0's context current");
        return new Cuda(dev, ctx);
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
        long[] free = new long[1], total = new long[1];
        check(cuMemGetInfo(free, total), "reading free GPU memory");
        return free[0];
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
        CUdeviceptr p = new CUdeviceptr();
        int r = cuMemAlloc(p, bytes);
        if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) require(bytes, what);
        check(r, "allocating " + bytes + " bytes for " + what);
        allocated.addAndGet(bytes);
        return new DeviceBuffer(this, p, bytes, what);
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
        CUmodule m = modules.get(module);
        if (m == null) {
            m = new CUmodule();
            int r = cuModuleLoadData(m, ptx(module));
            if (r != CUresult.CUDA_SUCCESS)
                throw new CudaException("kernels/" + module + ".cu: the CUDA driver could not load its PTX (" + CUresult.stringFor(r) + ")"
                        + (r == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                        ? "; the PTX was compiled by CUDA 13.0 (environment/requirements-cuda.txt), newer than this driver's CUDA "
                                + driverVersion / 1000 + "." + driverVersion % 1000 / 10 + ": update the NVIDIA driver, or use --device cpu"
                        : r == CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUresult.CUDA_ERROR_INVALID_PTX
                        ? "; it targets compute_80 and the " + name + " is sm_" + computeCapability() + ": use --device cpu"
                        : "; use --device cpu"));
            modules.put(module, m);
        }
        CUfunction f = new CUfunction();
        int r = cuModuleGetFunction(f, m, function);
        if (r != CUresult.CUDA_SUCCESS)
            throw new CudaException("kernels/" + module + ".cu has no kernel " + function + " (" + CUresult.stringFor(r)
                    + "): the PTX in the jar is older than the code; run ./lowbit setup");
        k = new Kernel(this, module + "." + function, f);
        kernels.put(key, k);
        return k;
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
        check(cuCtxSynchronize(), "running the GPU's kernels");
    }

    /** Makes this context current on the calling thread (the driver API keeps one per thread). */
    public void makeCurrent() {
        check(cuCtxSetCurrent(context), "making the GPU's context current");
    }

    private int attribute(int attribute) {
        int[] v = new int[1];
        check(cuDeviceGetAttribute(v, attribute, device), "reading a GPU attribute");
        return v[0];
    }

    /** Throws a one-line {@link CudaException} naming what was being done when {@code result} is an error. */
    static void check(int result, String doing) {
        if (result != CUresult.CUDA_SUCCESS)
            throw new CudaException("CUDA failed " + doing + ": " + CUresult.stringFor(result)
                    + (result == CUresult.CUDA_ERROR_OUT_OF_MEMORY ? " (use --device cpu, bf16 weights, or a smaller model)" : ""));
    }

    private static String firstLine(String s) {
        if (s == null) return "no reason given";
        int cut = s.indexOf('\n');
        return (cut >= 0 ? s.substring(0, cut) : s).strip();
    }
}
