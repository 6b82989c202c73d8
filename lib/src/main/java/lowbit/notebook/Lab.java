package lowbit.notebook;

import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import lowbit.cuda.Device;
import lowbit.eval.tasks.mmlu.MmluData;
import lowbit.io.DataDir;
import lowbit.progress.Progress;
import lowbit.results.Backend;
import lowbit.tensor.WeightFormat;

/**
 * The notebook session: where progress goes, where models run ({@link #device(String)}, {@link #weights(String)}) and
 * how numbers are published. The kernel's startup script calls
 * {@link #useProgress} with bars that update in the cell; outside a kernel (a test, jshell) progress goes
 * nowhere.
 */
public final class Lab {
    private Lab() {}

    /** Prefix of the lines {@link #result} prints; environment/check_reproducible.py reads them back. */
    public static final String RESULT_PREFIX = "RESULT ";

    /**
     * Prefix of the line {@link #skip} prints; environment/run_notebooks.py reports a notebook that printed it as
     * skipped, with the reason, instead of "ok".
     */
    public static final String SKIPPED_PREFIX = "SKIPPED ";

    private static volatile Progress progress = Progress.NONE;

    public static Progress progress() {
        return progress;
    }

    public static void useProgress(Progress p) {
        progress = Objects.requireNonNull(p, "progress");
    }

    private static volatile Device device = Device.CPU;
    private static volatile WeightFormat weights = WeightFormat.FP32;

    /**
     * Picks where this session's evaluations and quantizations run: "cpu", "cuda" (opens the GPU now: one line when there
     * is none) or "auto" (cuda when a GPU opens, else cpu). Returns the backend chosen, which a cell shows as one line
     * ("cuda NVIDIA H200 (sm_90, ...) fp32"). A session starts on the CPU, unlike the CLI's auto, so that committed
     * outputs re-run to the same digits on any machine until a cell asks for the GPU.
     */
    public static Backend device(String option) {
        device = Device.choose(option);
        return backend();
    }

    /** The session's device: the CPU unless {@link #device(String)} chose another. */
    public static Device device() {
        return device;
    }

    /**
     * How models loaded from now on hold their linear weights: "fp32" or "bf16" (half the memory; products accumulate
     * in float32). Returns the session's backend.
     */
    public static Backend weights(String format) {
        weights = WeightFormat.parse(format);
        return backend();
    }

    /** The session's weight format: fp32 unless {@link #weights(String)} chose bf16. */
    public static WeightFormat weights() {
        return weights;
    }

    /** The session's device and weight format, as results record them. */
    public static Backend backend() {
        return Backend.of(device, weights);
    }

    /** Loads a model by name: "default", "stories260K", a path, or hf:ORG/NAME (see {@link Model#resolve}). */
    public static Model load(String name) {
        return Model.load(name);
    }

    /**
     * Why MMLU cannot be evaluated here ({@link MmluData#absence}'s one line, with the data directory shown as
     * "data" so that committed outputs name no machine's paths), or empty when data/mmlu holds its test files.
     */
    public static Optional<String> mmluAbsence() {
        String root = DataDir.root().toString();
        return MmluData.absence(DataDir.root()).map(line -> line.replace(root, "data"));
    }

    /**
     * Prints {@code RESULT name=value} with every digit of the double (Java's shortest round-trip form), so a
     * re-run of the notebook can be checked against the committed outputs.
     */
    public static void result(String name, double value) {
        System.out.println(resultLine(name, value));
    }

    /** Says that the notebook skips its work and why (e.g. weights that are not there), as one {@code SKIPPED reason} line. */
    public static void skip(String reason) {
        System.out.println(skipLine(reason));
    }

    static String skipLine(String reason) {
        if (reason == null || reason.isBlank()) throw new IllegalArgumentException("a skip needs a reason");
        return SKIPPED_PREFIX + reason.strip().replaceAll("\\s*\\R\\s*", " ");
    }

    static String resultLine(String name, double value) {
        if (name == null || !name.matches("[A-Za-z0-9_.:/-]+"))
            throw new IllegalArgumentException("result name '" + name + "' must be letters, digits and _ . : / -");
        return RESULT_PREFIX + name + "=" + Double.toString(value).toLowerCase(Locale.ROOT);
    }
}
