package lowbit.cli;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.cuda.Device;
import lowbit.model.Transformer;
import lowbit.quant.QuantizedModel;
import lowbit.results.Backend;
import lowbit.results.CodeVersion;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/** --model, --threads, --device and --weights, shared by every command that runs a model. */
final class ModelOptions {
    @Option(names = "--model", defaultValue = "default", paramLabel = "PATH|default|hf:ORG/NAME[@REV]",
            description = "checkpoint: a Hugging Face directory, a .gguf file, a llama2.c .bin, 'default' "
                    + "(SmolLM2-135M-Instruct Q4_1) or hf:ORG/NAME to download from the Hub (default: ${DEFAULT-VALUE})")
    String model;

    @Spec(Spec.Target.MIXEE)
    CommandSpec command;

    private Integer threads;

    /**
     * More threads than cores only time-slice the same cores, and each holds its own buffers; past four per
     * processor the number is a typo, not a plan. Checked while parsing, before any file is opened.
     */
    @Option(names = "--threads", paramLabel = "N",
            description = "compute threads, 1 to 4 x the available processors (default: all cores)")
    void setThreads(int n) {
        int processors = Runtime.getRuntime().availableProcessors(), most = 4 * processors;
        if (n < 1 || n > most)
            throw new ParameterException(command.commandLine(), "--threads must be between 1 and " + most + " (4 x the "
                    + processors + " available processors), got " + n);
        threads = n;
    }

    int threads() {
        return threads != null ? threads : Parallel.defaultThreads();
    }

    @Option(names = "--device", defaultValue = "auto", paramLabel = "cpu|cuda|auto",
            description = "where to compute: cpu, cuda (the first GPU, through JCuda) or auto: cuda when a GPU is found, else cpu"
                    + " (default: ${DEFAULT-VALUE})")
    String deviceOption;

    private Device device;

    @Option(names = "--weights", defaultValue = "fp32", paramLabel = "fp32|bf16",
            description = "how linear weights are held: fp32, or bf16 (half the memory; products accumulate in fp32)"
                    + " (default: ${DEFAULT-VALUE})")
    String weightsOption;

    /** The --device choice, resolved once (cuda opens the GPU, so that a missing one is one line before any work). */
    Device device() {
        if (device == null) device = Device.choose(deviceOption);
        return device;
    }

    /** Whether --device was left to auto (the GPU when there is one, the CPU for a model the GPU path does not run). */
    boolean deviceIsAuto() {
        return deviceOption == null || deviceOption.strip().equalsIgnoreCase("auto");
    }

    WeightFormat weights() {
        return WeightFormat.parse(weightsOption);
    }

    /**
     * For a command with no GPU path ({@code what}: "qat", "bench awq"): the CPU, also under auto when a GPU is there;
     * --device cuda asked for explicitly is refused with one line before any work (rather than ignored, which would
     * leave a user believing a CPU timing was a GPU one). From then on {@link #device()} is the CPU.
     */
    Device cpuOnly(String what) {
        String asked = deviceOption.strip().toLowerCase(Locale.ROOT);
        // refused before the GPU is opened: on a machine without one this line says more than "no CUDA GPU"
        if (asked.equals("cuda") || asked.equals("gpu"))
            throw new IllegalArgumentException(what + " runs on the CPU only: drop --device " + deviceOption.strip() + " (auto uses the CPU for it)");
        if (!asked.equals("auto")) Device.choose(deviceOption); // cpu, or Device's one line for a name it does not know
        device = Device.CPU;
        return device;
    }

    /** Where this command computes and how it holds the weights, for provenance: {@link #device()}, {@link #weights()}, {@link #threads()}. */
    Backend backend() {
        return Backend.of(device(), weights(), threads());
    }

    Checkpoint open() {
        return Checkpoints.open(model, DownloadCommand.terminalDownloadProgress());
    }

    Transformer load(Checkpoint ckpt) {
        return Checkpoints.load(ckpt, threads(), weights());
    }

    /**
     * Refuses --weights bf16, before any work, for {@code what}: a job that writes weights (quantizers, rotations) or
     * measures the float model another job quantizes. bf16 holds float weights for evaluation only.
     */
    void requireFp32Weights(String what) {
        if (weights() == WeightFormat.BF16)
            throw new IllegalArgumentException("--weights bf16 holds float weights for evaluation; " + what
                    + " needs --weights fp32 (a quantizer's grid values are not exact in bf16)");
    }

    /**
     * Writes {@code quantized} (made from {@code model}, loaded from this --model) as a quantized directory at {@code out},
     * its manifest naming the --model as given (default, hf:...) or as an absolute path; first adds to the method's
     * {@code provenance} how it ran (threads, {@link #backend()}, Java, code version, seconds since {@code startNanos}).
     */
    Path writeQuantized(Path out, Checkpoint ckpt, Transformer model, QuantizedModel quantized, Map<String, Object> provenance,
                        long startNanos) {
        provenance.put("threads", model.threads());
        provenance.putAll(Backend.of(device(), weights(), model.threads()).provenance());
        provenance.put("java", Runtime.version().toString());
        provenance.put("code_version", CodeVersion.current().toString());
        provenance.put("seconds", (System.nanoTime() - startNanos) / 1e9);
        String source = this.model.equals(Checkpoints.DEFAULT) || this.model.startsWith(Checkpoints.HUB_PREFIX)
                ? this.model : Path.of(this.model).toAbsolutePath().normalize().toString();
        return QuantizedModelFiles.write(out, ckpt, source, model, quantized, provenance);
    }
}
