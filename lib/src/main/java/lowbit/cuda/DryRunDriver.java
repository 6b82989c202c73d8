package lowbit.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * The driver without a GPU: device memory is host byte arrays at made-up device addresses (copies in and out work and
 * are bounds-checked; what was never written reads as zeros), kernels are looked up in the PTX text, and launches,
 * already checked by {@link Kernel} against the kernel's PTX signature, are checked for pointers into live buffers and
 * recorded, never executed. It lets a test drive the host code of every GPU class on a machine without one. Not
 * thread-safe beyond what its synchronized methods give; one per test.
 */
final class DryRunDriver implements Driver {
    /** Where the made-up addresses start: high enough that a small integer passed as a pointer is never one. */
    private static final long BASE = 0x7f00_0000_0000L;
    /** Between buffers, so that a pointer one past a buffer's end belongs to no other. */
    private static final long GAP = 4096;
    private static final long TOTAL = 80L << 30;

    private final Info info = new Info("dry run (no GPU)", TOTAL, 9, 0, 132, 13000);
    private final TreeMap<Long, byte[]> memory = new TreeMap<>();
    private final List<Kernel.Launch> launches = Collections.synchronizedList(new ArrayList<>());
    private long next = BASE;
    private long allocated;

    /** The made-up address a pointer of this driver stands for (its JCuda byte offset; the native pointer is 0). */
    private static final class Address extends Pointer {
        Address(Pointer p) {
            super(p);
        }

        static long of(CUdeviceptr p, String what) {
            Address a = new Address(p);
            if (a.getNativePointer() != 0)
                throw new CudaException(what + ": a real GPU pointer was given to a dry run");
            return a.getByteOffset();
        }
    }

    @Override
    public Info info() {
        return info;
    }

    @Override
    public boolean dryRun() {
        return true;
    }

    @Override
    public List<Kernel.Launch> launches() {
        synchronized (launches) {
            return List.copyOf(launches);
        }
    }

    @Override
    public void makeCurrent() {}

    @Override
    public synchronized long freeMemory() {
        return TOTAL - allocated;
    }

    @Override
    public synchronized CUdeviceptr allocate(long bytes, String what) {
        if (bytes > Integer.MAX_VALUE - 16)
            throw new CudaException("dry run: " + what + " asks for " + bytes + " bytes, more than one host array holds");
        if (bytes > TOTAL - allocated) return null;
        long address = next;
        memory.put(address, new byte[(int) bytes]);
        next += (bytes + GAP + 255) / 256 * 256;
        allocated += bytes;
        return new CUdeviceptr().withByteOffset(address);
    }

    @Override
    public synchronized void free(CUdeviceptr p, long bytes) {
        long a = Address.of(p, "freeing");
        if (memory.remove(a) == null) throw new CudaException("dry run: freeing " + Long.toHexString(a) + ", not an allocation");
        allocated -= bytes;
    }

    /** The buffer a pointer falls in and the offset into it; refuses pointers outside every live buffer. */
    private record Place(byte[] bytes, int offset) {}

    private synchronized Place place(CUdeviceptr p, long n, String what) {
        long a = Address.of(p, what);
        Map.Entry<Long, byte[]> e = memory.floorEntry(a);
        if (e == null || a - e.getKey() > e.getValue().length)
            throw new CudaException("dry run: " + what + ": address 0x" + Long.toHexString(a) + " is in no live GPU buffer");
        long off = a - e.getKey();
        if (off + n > e.getValue().length)
            throw new CudaException("dry run: " + what + ": bytes " + off + ".." + (off + n) + " are outside a buffer of "
                    + e.getValue().length);
        return new Place(e.getValue(), (int) off);
    }

    @Override
    public void copyIn(CUdeviceptr dst, Object src, long n, String what) {
        Place p = place(dst, n, "copying " + what + " to the GPU");
        ByteBuffer b = ByteBuffer.wrap(p.bytes(), p.offset(), (int) n).order(ByteOrder.LITTLE_ENDIAN);
        switch (src) {
            case float[] a -> b.asFloatBuffer().put(a, 0, (int) (n / 4));
            case short[] a -> b.asShortBuffer().put(a, 0, (int) (n / 2));
            case int[] a -> b.asIntBuffer().put(a, 0, (int) (n / 4));
            case double[] a -> b.asDoubleBuffer().put(a, 0, (int) (n / 8));
            case byte[] a -> b.put(a, 0, (int) n);
            default -> throw new IllegalArgumentException("not a host array: " + src.getClass().getSimpleName());
        }
    }

    @Override
    public void copyOut(Object dst, CUdeviceptr src, long n, String what) {
        Place p = place(src, n, "copying " + what + " from the GPU");
        ByteBuffer b = ByteBuffer.wrap(p.bytes(), p.offset(), (int) n).order(ByteOrder.LITTLE_ENDIAN);
        switch (dst) {
            case float[] a -> b.asFloatBuffer().get(a, 0, (int) (n / 4));
            case short[] a -> b.asShortBuffer().get(a, 0, (int) (n / 2));
            case int[] a -> b.asIntBuffer().get(a, 0, (int) (n / 4));
            case double[] a -> b.asDoubleBuffer().get(a, 0, (int) (n / 8));
            case byte[] a -> b.get(a, 0, (int) n);
            default -> throw new IllegalArgumentException("not a host array: " + dst.getClass().getSimpleName());
        }
    }

    @Override
    public void memsetZero(CUdeviceptr p, long bytes, String what) {
        Place at = place(p, bytes, "clearing " + what);
        Arrays.fill(at.bytes(), at.offset(), at.offset() + (int) bytes, (byte) 0);
    }

    /** A module is its PTX text; kernels are looked up in it as the driver would. */
    @Override
    public Object loadModule(String module, byte[] ptx) {
        int end = ptx.length;
        while (end > 0 && ptx[end - 1] == 0) end--;
        return PtxSignature.parse(module, new String(ptx, 0, end, StandardCharsets.US_ASCII));
    }

    @Override
    public Object function(Object module, String moduleName, String function) {
        @SuppressWarnings("unchecked")
        Map<String, PtxSignature> entries = (Map<String, PtxSignature>) module;
        PtxSignature s = entries.get(function);
        if (s == null) throw Cuda.noKernel(moduleName, function, "CUDA_ERROR_NOT_FOUND");
        return s;
    }

    @Override
    public void allowShared(Object function, int bytes, String name) {}

    @Override
    public void launch(Object function, String name, Kernel.Grid g, Object[] args) {
        Long[] room = new Long[args.length];
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            CUdeviceptr p = a instanceof DeviceBuffer b ? b.pointer() : a instanceof CUdeviceptr c ? c : null;
            if (p == null) continue;
            Place at = place(p, 0, name + " argument " + i);
            room[i] = (long) at.bytes().length - at.offset();
        }
        launches.add(new Kernel.Launch(name, g, Collections.unmodifiableList(Arrays.asList(args.clone())),
                Collections.unmodifiableList(Arrays.asList(room))));
    }

    @Override
    public void synchronize(String doing) {}
}
