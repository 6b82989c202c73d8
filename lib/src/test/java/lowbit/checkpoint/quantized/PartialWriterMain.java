package lowbit.checkpoint.quantized;

import java.nio.file.Path;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.tokenizer.Tokenizer;

/**
 * Writes a quantized model from the checkpoint in args[0] to args[1] and stops, for good, inside the write (once
 * the partial directory exists), saying "writing" on stdout: the test kills it there.
 */
public final class PartialWriterMain {
    public static void main(String[] args) throws Exception {
        try (Checkpoint c = Checkpoints.open(Path.of(args[0])); Transformer m = Checkpoints.load(c, 1)) {
            Checkpoint stalled = new Checkpoint() {
                @Override public ModelConfig config() { return c.config(); }
                @Override public Map<String, TensorInfo> tensors() { return c.tensors(); }
                @Override public float[] floats(String name) { return c.floats(name); }
                @Override public Tokenizer tokenizer() { return c.tokenizer(); }
                @Override public String source() { return c.source(); }
                @Override public void close() {}

                @Override
                public String sha256() {
                    System.out.println("writing");
                    System.out.flush();
                    try {
                        Thread.sleep(Long.MAX_VALUE);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    }
                    return c.sha256();
                }
            };
            QuantizedModelFiles.write(Path.of(args[1]), stalled, args[0], m, QuantizedModel.rtn(m, QuantConfig.group(4, 4)), Map.of());
        }
    }
}
