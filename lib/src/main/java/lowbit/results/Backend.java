package lowbit.results;

import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import lowbit.cuda.Cuda;
import lowbit.cuda.Device;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;

/**
 * Where a result was computed and how the weights were held: the device (the CPU's Vector API runtime or a CUDA GPU),
 * the weight format (fp32 or bf16) and a description of the machine. Every result row and quantized directory records
 * it ({@link #provenance()}), and results from different backends are different experiments ({@link #parameters(Map)}
 * for a store row's key, {@link #key(String)} for a journal's).
 *
 * <p>Everything lowbit measured before the GPU path existed ran on the CPU with float32 weights, and its rows say
 * {@code "backend": "cpu-java-vector"} without device or weights fields; that backend keeps this label and its keys
 * unchanged, so old rows and journals stay the same experiments as new CPU fp32 ones.
 *
 * @param device      cpu or cuda
 * @param weights     how the linear weights were held
 * @param description the machine: for the CPU "java-vector 2 threads, 256-bit vectors", for a GPU {@link Cuda#describe()}
 */
public record Backend(Device device, WeightFormat weights, String description) {
    /** The {@code backend} value of CPU rows, the same before and after the GPU path (old rows stay comparable). */
    public static final String CPU_LABEL = "cpu-java-vector";

    /** The {@code backend} value of GPU rows: our kernels through JCuda's driver API. */
    public static final String CUDA_LABEL = "cuda-jcuda";

    public Backend {
        Objects.requireNonNull(device, "device");
        Objects.requireNonNull(weights, "weights");
        Objects.requireNonNull(description, "description");
    }

    /** The backend of {@code device} with {@code weights}; the CPU's description counts the default threads. */
    public static Backend of(Device device, WeightFormat weights) {
        return of(device, weights, Parallel.defaultThreads());
    }

    /**
     * The backend of {@code device} with {@code weights}, the CPU running {@code threads} threads. For CUDA this opens the
     * GPU (a one-line {@link lowbit.cuda.CudaException} when there is none) to describe it.
     */
    public static Backend of(Device device, WeightFormat weights, int threads) {
        return switch (device) {
            case CPU -> new Backend(device, weights, cpuDescription(threads));
            case CUDA -> new Backend(device, weights, Cuda.get().describe());
        };
    }

    /** "java-vector 2 threads, 256-bit vectors": the Vector API's preferred width is what the CPU kernels run on. */
    static String cpuDescription(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        return String.format(Locale.ROOT, "java-vector %d thread%s, %d-bit vectors", threads, threads == 1 ? "" : "s",
                FloatVector.SPECIES_PREFERRED.vectorBitSize());
    }

    /** The provenance's {@code backend} value: {@value #CPU_LABEL} or {@value #CUDA_LABEL}; the weights are a field of their own. */
    public String label() {
        return device == Device.CPU ? CPU_LABEL : CUDA_LABEL;
    }

    /** One line for people: "cpu-java-vector fp32", "cuda NVIDIA H200 (sm_90, 132 SMs, 139.8 GiB, driver CUDA 13.0) bf16". */
    public String text() {
        return (device == Device.CPU ? CPU_LABEL : device.label() + " " + description) + " " + weights.label();
    }

    /** A notebook shows the backend it chose as this one line. */
    @Override
    public String toString() {
        return text();
    }

    /** Whether this is the CPU with float32 weights: the backend of every result made before the GPU path. */
    public boolean isReference() {
        return device == Device.CPU && weights == WeightFormat.FP32;
    }

    /** The fields every result row and quantized directory carries: backend, device, weights, device_description. */
    public Map<String, Object> provenance() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("backend", label());
        m.put("device", device.label());
        m.put("weights", weights.label());
        m.put("device_description", description);
        return m;
    }

    /**
     * A journal's or cache's configuration key made specific to this backend's device: unchanged on the CPU (the keys
     * written before the GPU path), else with "|cuda" appended; a GPU's log-probs differ from the CPU's in the last float
     * digits, so their windows are not interchangeable. The weight format is part of the model's own key
     * ({@code EvaluatedModel.key()}), since the model, not the device, holds the weights.
     */
    public String key(String configuration) {
        Objects.requireNonNull(configuration, "configuration");
        return device == Device.CPU ? configuration : configuration + "|" + device.label();
    }

    /**
     * An experiment's parameters made specific to this backend, for {@link Row#key(Map)}: unchanged on the CPU with fp32
     * weights, else with {@code device} and {@code weights} added (refused when the parameters already name other ones).
     */
    public Map<String, Object> parameters(Map<String, ?> params) {
        Map<String, Object> m = new LinkedHashMap<>(params);
        if (isReference()) return m;
        put(m, "device", device.label());
        put(m, "weights", weights.label());
        return m;
    }

    private static void put(Map<String, Object> m, String name, String value) {
        Object old = m.putIfAbsent(name, value);
        if (old != null && !old.equals(value))
            throw new IllegalArgumentException("the experiment's parameter " + name + "=" + old + " contradicts the backend's " + value);
    }
}
