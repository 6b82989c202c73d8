package lowbit.quant.observer;

/** The running minimum and maximum of everything observed (torch.ao's MinMaxObserver). */
public final class MinMaxObserver implements Observer {
    private float min = Float.POSITIVE_INFINITY;
    private float max = Float.NEGATIVE_INFINITY;

    @Override
    public void observe(float[] x) {
        Range r = Observer.minMax(x);
        if (r == null) return;
        min = Math.min(min, r.min());
        max = Math.max(max, r.max());
    }

    @Override
    public Range range() {
        return new Range(min, max);
    }
}
