package lowbit.quant.observer;

/**
 * Exponential moving averages of each tensor's minimum and maximum (torch.ao's MovingAverageMinMaxObserver):
 * the first tensor sets them, each later one moves them by {@code c * (current - running)}. Computed in float32, in
 * torch's order of operations, so the running values match torch's bit for bit.
 */
public final class MovingAverageMinMaxObserver implements Observer {
    /** torch.ao's default averaging constant. */
    public static final float DEFAULT_AVERAGING_CONSTANT = 0.01f;

    private final float c;
    private float min = Float.POSITIVE_INFINITY;
    private float max = Float.NEGATIVE_INFINITY;

    public MovingAverageMinMaxObserver() {
        this(DEFAULT_AVERAGING_CONSTANT);
    }

    public MovingAverageMinMaxObserver(float averagingConstant) {
        if (!(averagingConstant > 0 && averagingConstant <= 1))
            throw new IllegalArgumentException("moving-average observer's averaging constant must be in (0, 1], got " + averagingConstant);
        this.c = averagingConstant;
    }

    @Override
    public void observe(float[] x) {
        Range r = Observer.minMax(x);
        if (r == null) return;
        if (min == Float.POSITIVE_INFINITY && max == Float.NEGATIVE_INFINITY) {
            min = r.min();
            max = r.max();
        } else {
            min = min + c * (r.min() - min);
            max = max + c * (r.max() - max);
        }
    }

    @Override
    public Range range() {
        return new Range(min, max);
    }
}
