package lowbit.calibration;

import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.tensor.Parallel;

/**
 * A forward hook that accumulates one {@link Hessian} per distinct input ({@link Linear#input()}) of a set of
 * linears in one block: q/k/v read one input and share one Hessian, as do gate/up. The first linear of each
 * input (in the order given) is the one whose input is measured, so a shared input is added once per sequence.
 */
public final class InputHessians implements ForwardHook {
    private final int layer;
    private final Parallel par;
    private final Map<String, Linear> readers = new LinkedHashMap<>();
    private final Map<String, Hessian> hessians = new LinkedHashMap<>();
    private long nanos;

    /** Accumulates the inputs of {@code linears}, all of block {@code layer}; Gram products run on {@code par}. */
    public InputHessians(int layer, Collection<Linear> linears, Parallel par) {
        this.layer = layer;
        this.par = par;
        for (Linear lin : linears) {
            if (lin.layer() != layer) throw new IllegalArgumentException(lin.name() + " is not in block " + layer);
            if (readers.putIfAbsent(lin.input(), lin) == null) hessians.put(lin.input(), new Hessian(lin.inFeatures()));
        }
    }

    @Override
    public void linearInput(Linear linear, float[] x, int rows) {
        if (linear.layer() != layer || readers.get(linear.input()) != linear) return;
        long t0 = System.nanoTime();
        hessians.get(linear.input()).add(x, rows, par);
        nanos += System.nanoTime() - t0;
    }

    /** The Hessian of the input {@code lin} reads. */
    public Hessian of(Linear lin) {
        return of(lin.input());
    }

    public Hessian of(String input) {
        Hessian h = hessians.get(input);
        if (h == null) throw new IllegalArgumentException("no Hessian accumulated for input " + input + " of block " + layer);
        return h;
    }

    /** By input name, in the order the inputs' first readers were given. */
    public Map<String, Hessian> byInput() {
        return Collections.unmodifiableMap(hessians);
    }

    /** Seconds spent accumulating (inside the forward passes). */
    public double seconds() {
        return nanos / 1e9;
    }
}
