package lowbit.calibration;

import java.util.List;
import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;

/**
 * The sequential protocol of GPTQ (and AWQ): blocks are processed in order, and the calibration inputs of
 * block l are the outputs of blocks 0..l-1 after they were quantized. Memory holds one block's input for
 * every calibration window (windows x seqlen x hidden floats: 604 MB for 128 x 2048 on a 576-wide model)
 * plus whatever the method keeps for the block it is working on.
 */
public final class SequentialCalibration {
    private SequentialCalibration() {}

    /** What a method does with one block; it may change the block's weights, the next blocks see the result. */
    public interface BlockStep {
        void process(Block block);

        /** Forward passes over the calibration windows {@link #process} makes (for the progress estimate). */
        default int passes() {
            return 1;
        }
    }

    /** One block and its calibration inputs. */
    public static final class Block {
        private final Transformer model;
        private final int layer;
        private final float[][] inputs;
        private final int seqlen;
        private final Progress.Task task;
        private long forwardNanos;

        Block(Transformer model, int layer, float[][] inputs, int seqlen, Progress.Task task) {
            this.model = model;
            this.layer = layer;
            this.inputs = inputs;
            this.seqlen = seqlen;
            this.task = task;
        }

        public int layer() {
            return layer;
        }

        public Transformer model() {
            return model;
        }

        public List<Linear> linears() {
            return model.blockLinears(layer);
        }

        public int windows() {
            return inputs.length;
        }

        public int seqlen() {
            return seqlen;
        }

        /** The block's input for one window, [seqlen][hidden]; read only. */
        public float[] input(int window) {
            return inputs[window];
        }

        /** Runs the block on a copy of every window's input with {@code hook} attached; the inputs stay as they are. */
        public void forward(ForwardHook hook) {
            long t0 = System.nanoTime();
            try (AutoCloseable h = model.addHook(hook)) {
                for (float[] x : inputs) {
                    model.block(layer, x.clone(), seqlen);
                    task.step(1);
                }
            } catch (RuntimeException e) {
                throw e;
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
            forwardNanos += System.nanoTime() - t0;
        }
    }

    /** Seconds spent in calibration forward passes (hooks included) and in producing each block's outputs. */
    public record Timing(double captureSeconds, double outputSeconds) {}

    public static Timing run(Transformer model, int[][] windows, BlockStep step, Progress progress) {
        if (windows.length == 0) throw new IllegalArgumentException("no calibration windows");
        int seqlen = windows[0].length;
        for (int[] w : windows)
            if (w.length != seqlen) throw new IllegalArgumentException("calibration windows differ in length: " + w.length + " vs " + seqlen);
        int layers = model.config().numLayers();
        float[][] x = new float[windows.length][];
        for (int i = 0; i < windows.length; i++) x[i] = model.embed(windows[i]);
        long capture = 0, output = 0;
        try (Progress.Task task = progress.start("calibrate", (long) layers * windows.length * (step.passes() + 1), "win")) {
            for (int l = 0; l < layers; l++) {
                task.message("block " + (l + 1) + "/" + layers);
                Block block = new Block(model, l, x, seqlen, task);
                step.process(block);
                capture += block.forwardNanos;
                long t0 = System.nanoTime();
                for (float[] xi : x) {
                    model.block(l, xi, seqlen);
                    task.step(1);
                }
                output += System.nanoTime() - t0;
            }
        }
        return new Timing(capture / 1e9, output / 1e9);
    }
}
