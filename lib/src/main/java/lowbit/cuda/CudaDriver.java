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
import static jcuda.driver.JCudaDriver.cuFuncSetAttribute;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemGetInfo;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;

import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUfunction_attribute;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.JCudaDriver;

/** The CUDA driver API through JCuda: the first GPU's primary context. */
final class CudaDriver implements Driver {
    private final CUdevice device;
    private final CUcontext context;
    private final Info info;

    private CudaDriver(CUdevice device, CUcontext context) {
        this.device = device;
        this.context = context;
        byte[] n = new byte[256];
        Cuda.check(cuDeviceGetName(n, n.length, device), "reading the GPU's name");
        int end = 0;
        while (end < n.length && n[end] != 0) end++;
        long[] total = new long[1];
        Cuda.check(cuDeviceTotalMem(total, device), "reading the GPU's memory size");
        int[] v = new int[1];
        Cuda.check(cuDriverGetVersion(v), "reading the driver's version");
        this.info = new Info(new String(n, 0, end, java.nio.charset.StandardCharsets.US_ASCII), total[0],
                attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR),
                attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                attribute(CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT), v[0]);
    }

    static CudaDriver open() {
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
        Cuda.check(cuDeviceGetCount(count), "counting GPUs");
        if (count[0] == 0) throw new CudaException("no CUDA GPU: the driver found no device; use --device cpu");
        CUdevice dev = new CUdevice();
        Cuda.check(cuDeviceGet(dev, 0), "opening GPU 0");
        CUcontext ctx = new CUcontext();
        Cuda.check(cuDevicePrimaryCtxRetain(ctx, dev), "creating a context on GPU 0");
        Cuda.check(cuCtxSetCurrent(ctx), "making GPU 0's context current");
        return new CudaDriver(dev, ctx);
    }

    @Override
    public Info info() {
        return info;
    }

    @Override
    public void makeCurrent() {
        Cuda.check(cuCtxSetCurrent(context), "making the GPU's context current");
    }

    @Override
    public long freeMemory() {
        long[] free = new long[1], total = new long[1];
        Cuda.check(cuMemGetInfo(free, total), "reading free GPU memory");
        return free[0];
    }

    @Override
    public CUdeviceptr allocate(long bytes, String what) {
        CUdeviceptr p = new CUdeviceptr();
        int r = cuMemAlloc(p, bytes);
        if (r == CUresult.CUDA_ERROR_OUT_OF_MEMORY) return null;
        Cuda.check(r, "allocating " + bytes + " bytes for " + what);
        return p;
    }

    @Override
    public void free(CUdeviceptr p, long bytes) {
        cuMemFree(p);
    }

    @Override
    public void copyIn(CUdeviceptr dst, Object src, long n, String what) {
        Cuda.check(cuMemcpyHtoD(dst, host(src), n), "copying " + what + " to the GPU");
    }

    @Override
    public void copyOut(Object dst, CUdeviceptr src, long n, String what) {
        Cuda.check(cuMemcpyDtoH(host(dst), src, n), "copying " + what + " from the GPU");
    }

    private static Pointer host(Object array) {
        return switch (array) {
            case float[] a -> Pointer.to(a);
            case short[] a -> Pointer.to(a);
            case int[] a -> Pointer.to(a);
            case byte[] a -> Pointer.to(a);
            case double[] a -> Pointer.to(a);
            default -> throw new IllegalArgumentException("not a host array: " + array.getClass().getSimpleName());
        };
    }

    @Override
    public void memsetZero(CUdeviceptr p, long bytes, String what) {
        Cuda.check(cuMemsetD8(p, (byte) 0, bytes), "clearing " + what);
    }

    @Override
    public Object loadModule(String module, byte[] ptx) {
        CUmodule m = new CUmodule();
        int r = cuModuleLoadData(m, ptx);
        if (r != CUresult.CUDA_SUCCESS) {
            int dv = info.driverVersion();
            throw new CudaException("kernels/" + module + ".cu: the CUDA driver could not load its PTX (" + CUresult.stringFor(r) + ")"
                    + (r == CUresult.CUDA_ERROR_UNSUPPORTED_PTX_VERSION
                    ? "; the PTX was compiled by CUDA 13.0 (environment/requirements-cuda.txt), newer than this driver's CUDA "
                            + dv / 1000 + "." + dv % 1000 / 10 + ": update the NVIDIA driver, or use --device cpu"
                    : r == CUresult.CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUresult.CUDA_ERROR_INVALID_PTX
                    ? "; it targets compute_80 and the " + info.name() + " is sm_" + (info.major() * 10 + info.minor()) + ": use --device cpu"
                    : "; use --device cpu"));
        }
        return m;
    }

    @Override
    public Object function(Object module, String moduleName, String function) {
        CUfunction f = new CUfunction();
        int r = cuModuleGetFunction(f, (CUmodule) module, function);
        if (r != CUresult.CUDA_SUCCESS) throw Cuda.noKernel(moduleName, function, CUresult.stringFor(r));
        return f;
    }

    @Override
    public void allowShared(Object function, int bytes, String name) {
        Cuda.check(cuFuncSetAttribute((CUfunction) function, CUfunction_attribute.CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, bytes),
                "allowing " + bytes + " bytes of shared memory for " + name);
    }

    @Override
    public void launch(Object function, String name, Kernel.Grid g, Object[] args) {
        Pointer[] params = new Pointer[args.length];
        for (int i = 0; i < args.length; i++) params[i] = parameter(args[i]);
        Cuda.check(cuLaunchKernel((CUfunction) function, g.gx(), g.gy(), g.gz(), g.bx(), g.by(), g.bz(), g.sharedBytes(), null,
                Pointer.to(params), null), "launching " + name);
    }

    private static Pointer parameter(Object a) {
        return switch (a) {
            case null -> Pointer.to(new CUdeviceptr()); // an absent optional array (a bias): the kernel sees nullptr
            case DeviceBuffer b -> Pointer.to(b.pointer());
            case CUdeviceptr p -> Pointer.to(p);
            case Integer v -> Pointer.to(new int[] {v});
            case Long v -> Pointer.to(new long[] {v});
            case Float v -> Pointer.to(new float[] {v});
            case Double v -> Pointer.to(new double[] {v});
            default -> throw new IllegalArgumentException("not a device buffer or a number: " + a.getClass().getSimpleName());
        };
    }

    @Override
    public void synchronize(String doing) {
        Cuda.check(cuCtxSynchronize(), doing);
    }

    private int attribute(int attribute) {
        int[] v = new int[1];
        Cuda.check(cuDeviceGetAttribute(v, attribute, device), "reading a GPU attribute");
        return v[0];
    }

    private static String firstLine(String s) {
        if (s == null) return "no reason given";
        int cut = s.indexOf('\n');
        return (cut >= 0 ? s.substring(0, cut) : s).strip();
    }
}
