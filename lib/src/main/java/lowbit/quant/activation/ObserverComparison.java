package lowbit.quant.activation;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.observer.Observer;
import lowbit.quant.observer.ObserverSpec;
import tech.tablesaw.api.DoubleColumn;
import tech.tablesaw.api.IntColumn;
import tech.tablesaw.api.LongColumn;
import tech.tablesaw.api.StringColumn;
import tech.tablesaw.api.Table;

/**
 * Observers side by side on real activation ranges (notebook 09): for chosen block linears, each observer's range of
 * that linear's input over the calibration windows, fed exactly as static calibration feeds it (one observe() per
 * window), then, from a second pass over the same windows, what the static scale does to that input at b bits on
 * {@link ActivationQuantizer}'s symmetric grid: the fraction of values beyond the range (the grid saturates them at
 * ±q_max, within half a step) and the mean squared fake-quantization error.
 */
public final class ObserverComparison {
    /** Inputs that differ in kind: after the attention norm, before o_proj, after the MLP norm, after the gated activation. */
    public static final List<String> DEFAULT_MODULES = List.of("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.down_proj");

    private ObserverComparison() {}

    /** {@link #DEFAULT_MODULES} of the first, middle and last block. */
    public static List<String> defaultLinears(Transformer model) {
        int layers = model.config().numLayers();
        Set<Integer> picked = new java.util.TreeSet<>(List.of(0, layers / 2, layers - 1));
        List<String> names = new ArrayList<>();
        for (int l : picked)
            for (String m : DEFAULT_MODULES) names.add("model.layers." + l + "." + m);
        return names;
    }

    /**
     * One row per (linear, observer): linear, layer, observer, bits, lo, hi (the observer's range), scale (the static
     * scale {@link ActivationQuantizer#calibrate} would use), clipped (fraction of values with |x| > max(|lo|, |hi|)),
     * mse (mean of (x - fake_quant(x))^2) and values (how many were seen).
     */
    public static Table compare(Transformer model, int[][] windows, List<String> linears, List<ObserverSpec> observers, int bits,
                                Progress progress) {
        int qmax = ActivationQuantizer.qmax(ActivationQuantizer.checkBits(bits));
        if (observers.isEmpty()) throw new IllegalArgumentException("observer comparison needs at least one observer");
        Set<String> wanted = new HashSet<>(linears);
        Map<String, Integer> layerOf = new LinkedHashMap<>();
        for (int l = 0; l < model.config().numLayers(); l++) for (Linear lin : model.blockLinears(l)) layerOf.put(lin.name(), l);
        for (String name : linears)
            if (!layerOf.containsKey(name))
                throw new IllegalArgumentException("observer comparison: " + name + " is not a block linear of this model (e.g. "
                        + model.blockLinears(0).get(0).name() + "; lm_head's input is not quantized)");

        Map<String, List<Observer>> seen = ActivationQuantizer.observe(model, windows, lin -> wanted.contains(lin.name()), (lin, count) -> {
            List<Observer> list = new ArrayList<>();
            for (ObserverSpec o : observers) list.add(o.create(bits, count));
            return list;
        }, "observe", progress);

        Map<String, float[]> absmax = new LinkedHashMap<>();
        Map<String, float[]> scales = new LinkedHashMap<>();
        for (String name : linears) {
            List<Observer> obs = seen.get(name);
            float[] a = new float[observers.size()], s = new float[observers.size()];
            for (int k = 0; k < a.length; k++) {
                a[k] = ActivationQuantizer.absmax(obs.get(k).range());
                s[k] = ActivationQuantizer.scale(a[k], qmax);
            }
            absmax.put(name, a);
            scales.put(name, s);
        }

        Map<String, long[]> clipped = new LinkedHashMap<>();
        Map<String, double[]> sqErr = new LinkedHashMap<>();
        Map<String, Long> counts = new LinkedHashMap<>();
        ForwardHook measure = new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] x, int rows) {
                if (linear.layer() < 0 || !wanted.contains(linear.name())) return;
                int n = rows * linear.inFeatures();
                float[] a = absmax.get(linear.name()), s = scales.get(linear.name());
                long[] c = clipped.computeIfAbsent(linear.name(), k -> new long[a.length]);
                double[] e = sqErr.computeIfAbsent(linear.name(), k -> new double[a.length]);
                counts.merge(linear.name(), (long) n, Long::sum);
                float[] q = new float[n];
                for (int k = 0; k < a.length; k++) {
                    System.arraycopy(x, 0, q, 0, n);
                    ActivationQuantizer.quantizeWithScale(q, 0, n, s[k], qmax);
                    for (int i = 0; i < n; i++) {
                        if (Math.abs(x[i]) > a[k]) c[k]++;
                        double d = (double) x[i] - q[i];
                        e[k] += d * d;
                    }
                }
            }
        };
        try (AutoCloseable h = model.addHook(measure); Progress.Task t = progress.start("measure", windows.length, "win")) {
            for (int[] w : windows) {
                model.hidden(w);
                t.step(1);
            }
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }

        StringColumn linear = StringColumn.create("linear"), observer = StringColumn.create("observer");
        IntColumn layer = IntColumn.create("layer"), bitsCol = IntColumn.create("bits");
        DoubleColumn lo = DoubleColumn.create("lo"), hi = DoubleColumn.create("hi"), scale = DoubleColumn.create("scale"),
                clip = DoubleColumn.create("clipped"), mse = DoubleColumn.create("mse");
        LongColumn values = LongColumn.create("values");
        for (String name : linears) {
            List<Observer> obs = seen.get(name);
            long n = counts.get(name);
            for (int k = 0; k < observers.size(); k++) {
                Observer.Range r = obs.get(k).range();
                linear.append(name);
                layer.append(layerOf.get(name));
                observer.append(observers.get(k).text());
                bitsCol.append(bits);
                lo.append(r.min());
                hi.append(r.max());
                scale.append(scales.get(name)[k]);
                clip.append(clipped.get(name)[k] / (double) n);
                mse.append(sqErr.get(name)[k] / n);
                values.append(n);
            }
        }
        return Table.create("observer ranges", linear, layer, observer, bitsCol, lo, hi, scale, clip, mse, values);
    }
}
