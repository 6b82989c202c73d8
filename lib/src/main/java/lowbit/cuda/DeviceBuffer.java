package lowbit.cuda;

import static jcuda.driver.JCudaDriver.cuMemFree;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD8;

import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;

/**
 * One allocation in the GPU's memory, made by {@link Cuda#allocate}. Copies in and out take Java arrays; {@link #at}
 * gives a pointer into it for kernels that work on a part (one layer's slice of a stacked tensor).
 */
public final class DeviceBuffer implements AutoCloseable {
    private final Cuda cuda;
    private final CUdeviceptr pointer;
    private final long bytes;
    private final String what;
    private boolean closed;

    DeviceBuffer(Cuda cuda, CUdeviceptr pointer, long bytes, String what) {
        this.cuda = cuda;
        this.pointer = pointer;
        this.bytes = bytes;
        this.what = what;
    }

    public long bytes() {
        return bytes;
    }

    /** What it holds, for messages. */
    public String what() {
        return what;
    }

    /** The device pointer, for kernel arguments. */
    public CUdeviceptr pointer() {
        check(0);
        return pointer;
    }

    /** A pointer {@code byteOffset} bytes into the buffer. */
    public CUdeviceptr at(long byteOffset) {
        check(byteOffset);
        return pointer.withByteOffset(byteOffset);
    }

    public DeviceBuffer upload(float[] src) {
        return copyIn(Pointer.to(src), 4L * src.length);
    }

    public DeviceBuffer upload(short[] src) {
        return copyIn(Pointer.to(src), 2L * src.length);
    }

    public DeviceBuffer upload(int[] src) {
        return copyIn(Pointer.to(src), 4L * src.length);
    }

    public DeviceBuffer upload(byte[] src) {
        return copyIn(Pointer.to(src), src.length);
    }

    public DeviceBuffer upload(double[] src) {
        return copyIn(Pointer.to(src), 8L * src.length);
    }

    /** {@code src} into the buffer from byte {@code byteOffset} on (one part of a stacked tensor). */
    public DeviceBuffer upload(long byteOffset, float[] src) {
        return upload(byteOffset, src, src.length);
    }

    /** The first {@code count} floats of {@code src} into the buffer from byte {@code byteOffset} on. */
    public DeviceBuffer upload(long byteOffset, float[] src, int count) {
        if (count < 0 || count > src.length) throw new IllegalArgumentException(what + ": " + count + " of " + src.length + " floats");
        long n = 4L * count;
        if (byteOffset < 0 || byteOffset + n > bytes)
            throw new IllegalArgumentException(what + ": bytes " + byteOffset + ".." + (byteOffset + n) + " are outside its " + bytes);
        cuda.makeCurrent();
        Cuda.check(cuMemcpyHtoD(pointer.withByteOffset(byteOffset), Pointer.to(src), n), "copying " + what + " to the GPU");
        return this;
    }

    /** The first {@code dst.length} floats. */
    public float[] download(float[] dst) {
        copyOut(Pointer.to(dst), 0, 4L * dst.length);
        return dst;
    }

    /** {@code dst.length} floats starting at float {@code offset}. */
    public float[] download(long offset, float[] dst) {
        copyOut(Pointer.to(dst), 4 * offset, 4L * dst.length);
        return dst;
    }

    public short[] download(short[] dst) {
        copyOut(Pointer.to(dst), 0, 2L * dst.length);
        return dst;
    }

    public int[] download(int[] dst) {
        copyOut(Pointer.to(dst), 0, 4L * dst.length);
        return dst;
    }

    public double[] download(double[] dst) {
        copyOut(Pointer.to(dst), 0, 8L * dst.length);
        return dst;
    }

    public byte[] download(byte[] dst) {
        copyOut(Pointer.to(dst), 0, dst.length);
        return dst;
    }

    /** Sets every byte to zero. */
    public DeviceBuffer zero() {
        cuda.makeCurrent();
        Cuda.check(cuMemsetD8(pointer, (byte) 0, bytes), "clearing " + what);
        return this;
    }

    private DeviceBuffer copyIn(Pointer src, long n) {
        if (n > bytes) throw new IllegalArgumentException(what + ": " + n + " bytes do not fit its " + bytes);
        cuda.makeCurrent();
        Cuda.check(cuMemcpyHtoD(pointer, src, n), "copying " + what + " to the GPU");
        return this;
    }

    private void copyOut(Pointer dst, long offset, long n) {
        if (offset < 0 || offset + n > bytes)
            throw new IllegalArgumentException(what + ": bytes " + offset + ".." + (offset + n) + " are outside its " + bytes);
        cuda.makeCurrent();
        Cuda.check(cuMemcpyDtoH(dst, pointer.withByteOffset(offset), n), "copying " + what + " from the GPU");
    }

    private void check(long offset) {
        if (closed) throw new IllegalStateException(what + ": the GPU buffer was freed");
        if (offset < 0 || offset > bytes) throw new IllegalArgumentException(what + ": offset " + offset + " outside its " + bytes + " bytes");
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        cuda.makeCurrent();
        cuMemFree(pointer);
        cuda.released(bytes);
    }
}
