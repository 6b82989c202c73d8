package lowbit.tensor;

/** Per-thread scratch arrays for kernels run on {@link Parallel}'s workers, reused instead of allocated per task. */
public final class Scratch {
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);

    private Scratch() {}

    /** A per-thread array of at least n floats, contents undefined. */
    public static float[] floats(int n) {
        float[] s = FLOATS.get();
        if (s.length < n) FLOATS.set(s = new float[n]);
        return s;
    }
}
