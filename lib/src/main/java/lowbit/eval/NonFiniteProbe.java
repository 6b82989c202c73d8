package lowbit.eval;

import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;

/**
 * Runs one window again with a hook that records the first place a NaN or infinity appears, in forward order:
 * a linear's input (so it came from the embedding, a norm, attention or the residual stream before that linear),
 * a linear's output from a finite input (its weights, scales or bias), or a layer's keys and values (RoPE or
 * Qwen3's k-norm). Costs one forward pass plus a scan of every activation, so it runs only after a failure.
 */
public final class NonFiniteProbe {
    private NonFiniteProbe() {}

    /** Where a non-finite value was first seen. */
    public enum Site { LINEAR_INPUT, LINEAR_OUTPUT, KEYS_VALUES }

    /**
     * @param site  what held the value
     * @param name  the linear's name (model.layers.3.mlp.down_proj, lm_head); for keys and values, model.layers.L
     * @param layer the transformer block, -1 outside the blocks
     */
    public record Origin(Site site, String name, int layer) {
        @Override
        public String toString() {
            return switch (site) {
                case LINEAR_INPUT -> "the input of " + name + " (layer " + layer
                        + "; from the embedding, a norm, attention or the residual stream before it)";
                case LINEAR_OUTPUT -> "the output of " + name + " (layer " + layer + ") from a finite input (its weights, scales or bias)";
                case KEYS_VALUES -> "the keys or values of layer " + layer + " (after RoPE and any k-norm)";
            };
        }
    }

    /** The first non-finite value in the forward pass of {@code window}, or null if every value was finite. */
    public static Origin locate(Transformer model, int[] window) {
        int kvDim = model.config().kvDim();
        Origin[] first = new Origin[1];
        ForwardHook hook = new ForwardHook() {
            @Override
            public void linearInput(Linear linear, float[] x, int rows) {
                if (first[0] == null && !finite(x, rows * linear.inFeatures()))
                    first[0] = new Origin(Site.LINEAR_INPUT, linear.name(), linear.layer());
            }

            @Override
            public void linearOutput(Linear linear, float[] y, int rows) {
                if (first[0] == null && !finite(y, rows * linear.outFeatures()))
                    first[0] = new Origin(Site.LINEAR_OUTPUT, linear.name(), linear.layer());
            }

            @Override
            public void keyValue(int layer, float[] keys, float[] values, int rows) {
                if (first[0] == null && !(finite(keys, rows * kvDim) && finite(values, rows * kvDim)))
                    first[0] = new Origin(Site.KEYS_VALUES, "model.layers." + layer, layer);
            }
        };
        try (AutoCloseable ignored = model.addHook(hook)) {
            model.nll(window);
        } catch (Exception e) {
            throw new IllegalStateException("re-running the window to locate a non-finite value failed: " + e.getMessage(), e);
        }
        return first[0];
    }

    private static boolean finite(float[] a, int n) {
        for (int i = 0; i < n; i++) if (!Float.isFinite(a[i])) return false;
        return true;
    }
}
