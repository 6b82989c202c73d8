package lowbit.train;

import java.util.List;
import java.util.function.Predicate;

import lowbit.model.ModelConfig;
import lowbit.model.Transformer;

public final class TrainableModel implements AutoCloseable {
    private TrainableModel() {}

    public static TrainableModel of(Transformer model) {
        throw new UnsupportedOperationException("TrainableModel: not yet");
    }

    public static TrainableModel of(Transformer model, int threads) {
        throw new UnsupportedOperationException("TrainableModel: not yet");
    }

    public ModelConfig config() { throw new UnsupportedOperationException(); }
    public List<Parameter> parameters() { throw new UnsupportedOperationException(); }
    public List<TrainLinear> linears() { throw new UnsupportedOperationException(); }
    public void setTrainable(Predicate<Parameter> which) { throw new UnsupportedOperationException(); }
    public List<Parameter> trainable() { throw new UnsupportedOperationException(); }
    public void setHook(TrainHook hook) { throw new UnsupportedOperationException(); }
    public double gradient(List<int[]> windows, Loss loss) { throw new UnsupportedOperationException(); }
    public float[] logits(int[] window) { throw new UnsupportedOperationException(); }
    public void copyInto(Transformer model) { throw new UnsupportedOperationException(); }
    public void setThreads(int threads) { throw new UnsupportedOperationException(); }
    @Override public void close() {}
}
