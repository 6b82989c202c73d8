package lowbit.cuda;

import java.util.Locale;

/**
 * Where a command computes: the CPU (the Vector API runtime) or a CUDA GPU. {@link #choose(String)} turns the
 * {@code --device} option into one: "auto" (the default) is the GPU when one can be opened, else the CPU.
 */
public enum Device {
    CPU, CUDA;

    /** The option's spelling: cpu or cuda. */
    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    /**
     * cpu, cuda or auto. cuda opens the GPU now, so that a missing driver or device is reported before any work starts
     * (a {@link CudaException} with one line); auto falls back to the CPU without a word.
     */
    public static Device choose(String option) {
        String s = option == null ? "auto" : option.strip().toLowerCase(Locale.ROOT);
        return switch (s) {
            case "cpu" -> CPU;
            case "cuda", "gpu" -> {
                Cuda.get();
                yield CUDA;
            }
            case "auto" -> Cuda.available() ? CUDA : CPU;
            default -> throw new IllegalArgumentException("--device must be cpu, cuda or auto, got '" + option + "'");
        };
    }
}
