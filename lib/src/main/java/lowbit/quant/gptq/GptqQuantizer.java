package lowbit.quant.gptq;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import lowbit.calibration.InputHessians;
import lowbit.calibration.SequentialCalibration;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;

import lowbit.model.ForwardHook;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.tensor.Parallel;

/**
 * GPTQ over a whole model: the sequential protocol, one {@link Gptq} per distinct linear input (q/k/v share
 * one Hessian, gate/up another), every linear of every block quantized, lm_head left in float. With
 * true-sequential the block is re-run between the groups q/k/v, o, up/gate, down so that each group is
 * calibrated on inputs produced by the already-quantized groups before it.
 */
public final class GptqQuantizer {
    private final QuantConfig config;
    private final java.util.function.Function<String, QuantConfig> configs;
    private final Gptq.Options options;
    private final boolean trueSequential;
    private final Device device;

    public GptqQuantizer(QuantConfig config, Gptq.Options options, boolean trueSequential) {
        this(config, name -> config, options, trueSequential);
    }

    /** Each linear on its own grid ({@code configs} by module name, e.g. from a bits map); {@code config} is the default recorded. */
    public GptqQuantizer(QuantConfig config, java.util.function.Function<String, QuantConfig> configs, Gptq.Options options,
                         boolean trueSequential) {
        this(config, configs, options, trueSequential, Device.CPU);
    }

    /**
     * On {@link Device#CUDA} each distinct input's Hessian is accumulated on the GPU and every linear's column loop runs
     * there ({@link DeviceGptq}, codes identical to the CPU's); the calibration forward passes that produce the inputs stay
     * on the CPU runtime (lowbit.model.cuda.DeviceModel does not take hooks), as do the grids fitted before the loop and the
     * inverse factor of H.
     */
    public GptqQuantizer(QuantConfig config, java.util.function.Function<String, QuantConfig> configs, Gptq.Options options,
                         boolean trueSequential, Device device) {
        this.config = config;
        this.configs = configs;
        this.options = options;
        this.trueSequential = trueSequential;
        this.device = device == null ? Device.CPU : device;
    }

    static final List<List<String>> TRUE_SEQUENTIAL = List.of(List.of("attn_in"), List.of("attn_out"), List.of("mlp_in"), List.of("mlp_act"));
    static final List<List<String>> ALL_AT_ONCE = List.of(List.of("attn_in", "attn_out", "mlp_in", "mlp_act"));

    public QuantizedModel quantize(Transformer model, int[][] windows, Progress progress) {
        Map<String, lowbit.quant.QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, Map<String, Object>> layers = new LinkedHashMap<>();
        double[] seconds = new double[3];   // hessian, cholesky, column loop
        List<List<String>> order = trueSequential ? TRUE_SEQUENTIAL : ALL_AT_ONCE;
        SequentialCalibration.Timing timing;
        try (Parallel par = new Parallel(model.threads())) {
            timing = SequentialCalibration.run(model, windows, new SequentialCalibration.BlockStep() {
                @Override
                public void process(SequentialCalibration.Block block) {
                    for (List<String> group : order) quantizeGroup(block, group, par, weights, layers, seconds);
                }

                @Override
                public int passes() {
                    return order.size();
                }
            }, progress);
        }
        Map<String, Double> timings = new LinkedHashMap<>();
        timings.put("forward_capture_seconds", timing.captureSeconds() - seconds[0]);
        timings.put("hessian_seconds", seconds[0]);
        timings.put("cholesky_seconds", seconds[1]);
        timings.put("column_loop_seconds", seconds[2]);
        timings.put("block_output_seconds", timing.outputSeconds());
        Map<String, Object> opts = new LinkedHashMap<>();
        opts.put("percdamp", options.percdamp());
        opts.put("block_size", options.blockSize());
        opts.put("act_order", options.actOrder());
        opts.put("static_groups", options.staticGroups());
        opts.put("true_sequential", trueSequential);
        return new QuantizedModel("gptq", config, opts, weights, layers, timings);
    }

    private void quantizeGroup(SequentialCalibration.Block block, List<String> inputs, Parallel par,
                               Map<String, lowbit.quant.QuantizedWeight> weights, Map<String, Map<String, Object>> layers,
                               double[] seconds) {
        List<Linear> targets = new ArrayList<>();
        for (Linear lin : block.linears()) if (inputs.contains(lin.input())) targets.add(lin);
        if (device == Device.CUDA) {
            try (DeviceHessians hessians = new DeviceHessians(block.layer(), targets)) {
                block.forward(hessians);
                seconds[0] += hessians.seconds();
                for (Linear lin : targets)
                    record(lin, hessians.of(lin).quantize(lin.name(), lin.weight(), lin.outFeatures(), configs.apply(lin.name()), options, par),
                            weights, layers, seconds);
            }
            return;
        }
        InputHessians hessians = new InputHessians(block.layer(), targets, par);
        block.forward(hessians);
        seconds[0] += hessians.seconds();
        for (Linear lin : targets)
            record(lin, new Gptq(hessians.of(lin)).quantize(lin.name(), lin.weight(), lin.outFeatures(), configs.apply(lin.name()), options, par),
                    weights, layers, seconds);
    }

    private static void record(Linear lin, Gptq.Result r, Map<String, lowbit.quant.QuantizedWeight> weights,
                               Map<String, Map<String, Object>> layers, double[] seconds) {
        lin.setWeight(r.weight().dequantize());
        weights.put(lin.name(), r.weight());
        Map<String, Object> facts = new LinkedHashMap<>();
        facts.put("loss", r.loss());
        facts.put("percdamp", r.percdamp());
        facts.put("damp_attempts", r.dampAttempts());
        facts.put("dead_columns", r.deadColumns());
        facts.put("bits_per_weight", r.weight().bitsPerWeight());
        layers.put(lin.name(), facts);
        seconds[1] += r.choleskySeconds();
        seconds[2] += r.loopSeconds();
    }

    /**
     * {@link InputHessians} on the GPU: one {@link DeviceGptq} per distinct input of the block's targets, fed by the first
     * linear that reads it, so a shared input (q/k/v, gate/up) is added once per sequence.
     */
    private static final class DeviceHessians implements ForwardHook, AutoCloseable {
        private final int layer;
        private final Map<String, Linear> readers = new LinkedHashMap<>();
        private final Map<String, DeviceGptq> gptq = new LinkedHashMap<>();

        DeviceHessians(int layer, List<Linear> linears) {
            this.layer = layer;
            Cuda cuda = Cuda.get();
            try {
                for (Linear lin : linears)
                    if (readers.putIfAbsent(lin.input(), lin) == null) gptq.put(lin.input(), new DeviceGptq(cuda, lin.inFeatures()));
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        @Override
        public void linearInput(Linear linear, float[] x, int rows) {
            if (linear.layer() == layer && readers.get(linear.input()) == linear) gptq.get(linear.input()).addBatch(x, rows);
        }

        DeviceGptq of(Linear lin) {
            return gptq.get(lin.input());
        }

        double seconds() {
            double s = 0;
            for (DeviceGptq g : gptq.values()) s += g.hessianSeconds();
            return s;
        }

        @Override
        public void close() {
            for (DeviceGptq g : gptq.values()) g.close();
        }
    }
}
