package lowbit.cuda;

import jcuda.driver.CUdeviceptr;

/**
 * One allocation in the GPU's memory, made by {@link Cuda#allocate}. Copies in and out take Java arrays; {@link #at}
 * gives a pointer into it for kernels that work on a part (one layer's slice of a stacked tensor).
 */
public final class DeviceBuffer implements AutoCloseable {
    private final Cuda cuda;
    private final Driver driver;
    private final CUdeviceptr pointer;
    private final long bytes;
    private final String what;
    private boolean closed;

    DeviceBuffer(Cuda cuda, Driver driver, CUdeviceptr pointer, long bytes, String what) {
        this.cuda = cuda;
        this.driver = driver;
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
        return copyIn(src, 4L * src.length);
    }

    public DeviceBuffer upload(short[] src) {
        return copyIn(src, 2L * src.length);
    }

    public DeviceBuffer upload(int[] src) {
        return copyIn(src, 4L * src.length);
    }

    public DeviceBuffer upload(byte[] src) {
        return copyIn(src, src.length);
    }

    public DeviceBuffer upload(double[] src) {
        return copyIn(src, 8L * src.length);
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
        check(0);
        cuda.makeCurrent();
        driver.copyIn(pointer.withByteOffset(byteOffset), src, n, what);
        return this;
    }

    /** The first {@code dst.length} floats. */
    public float[] download(float[] dst) {
        copyOut(dst, 0, 4L * dst.length);
        return dst;
    }

    /** {@code dst.length} floats starting at float {@code offset}. */
    public float[] download(long offset, float[] dst) {
        copyOut(dst, 4 * offset, 4L * dst.length);
        return dst;
    }

    public short[] download(short[] dst) {
        copyOut(dst, 0, 2L * dst.length);
        return dst;
    }

    public int[] download(int[] dst) {
        copyOut(dst, 0, 4L * dst.length);
        return dst;
    }

    public double[] download(double[] dst) {
        copyOut(dst, 0, 8L * dst.length);
        return dst;
    }

    public byte[] download(byte[] dst) {
        copyOut(dst, 0, dst.length);
        return dst;
    }

    /** Sets every byte to zero. */
    public DeviceBuffer zero() {
        check(0);
        cuda.makeCurrent();
        driver.memsetZero(pointer, bytes, what);
        return this;
    }

    private DeviceBuffer copyIn(Object src, long n) {
        if (n > bytes) throw new IllegalArgumentException(what + ": " + n + " bytes do not fit its " + bytes);
        check(0);
        cuda.makeCurrent();
        driver.copyIn(pointer, src, n, what);
        return this;
    }

    private void copyOut(Object dst, long offset, long n) {
        if (offset < 0 || offset + n > bytes)
            throw new IllegalArgumentException(what + ": bytes " + offset + ".." + (offset + n) + " are outside its " + bytes);
        check(0);
        cuda.makeCurrent();
        driver.copyOut(dst, pointer.withByteOffset(offset), n, what);
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
        driver.free(pointer, bytes);
        cuda.released(bytes);
    }
}
