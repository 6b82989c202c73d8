package lowbit.memory;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Whether a job's {@link MemoryEstimate} fits this machine, and the heap to give it. The heap is sized from the
 * estimate, not from the machine: the JVM's default (a quarter of RAM) let a study's heap drift to 6 GB of
 * mostly garbage, and two such processes exhausted a 24 GB machine.
 *
 * @param availableBytes what the kernel says a new process can take without swapping (MemAvailable), or the room
 *                       left under the container's cgroup memory.max when that is less
 * @param fixedHeapBytes the heap limit the user set with -Xmx (LOWBIT_JAVA_OPTS), or 0 when lowbit chooses
 */
public record MemoryBudget(long availableBytes, long fixedHeapBytes) {
    /**
     * Heap = estimate x HEADROOM + SLACK. The parallel collector needs a young generation beside the live set;
     * the memory test measures that a job runs in this heap and not in a fraction of its estimate.
     */
    static final double HEADROOM = 1.5;
    static final long SLACK = 512L << 20;

    /** The job does not fit: its one-line explanation is the message. */
    public static final class DoesNotFit extends RuntimeException {
        DoesNotFit(String message) {
            super(message);
        }
    }

    /** What to run with: the heap (-Xmx, 0 when the user fixed it) and a warning line when the fit is close (else null). */
    public record Plan(long heapBytes, String warning) {
        /** The JVM option for the heap, empty when the user's -Xmx stands. */
        public String javaOption() {
            return heapBytes == 0 ? "" : "-Xmx" + Math.ceilDiv(heapBytes, 1L << 20) + "m";
        }
    }

    /** This machine now (its MemAvailable, or the room left under a container's memory.max when less), and -Xmx when given. */
    public static MemoryBudget current() {
        List<String> args = ManagementFactory.getRuntimeMXBean().getInputArguments();
        boolean fixed = args.stream().anyMatch(a -> a.startsWith("-Xmx") || a.startsWith("-XX:MaxHeapSize"));
        long available = Math.min(memAvailable(Path.of("/proc/meminfo")), cgroupRoom(ownCgroup()));
        return new MemoryBudget(available, fixed ? Runtime.getRuntime().maxMemory() : 0);
    }

    /** This process's cgroup v2 directory ("0::/path" in /proc/self/cgroup), or null. */
    private static Path ownCgroup() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/cgroup")))
                if (line.startsWith("0::")) return Path.of("/sys/fs/cgroup", line.substring(3));
        } catch (IOException | RuntimeException e) {
            // not Linux, or no cgroup v2: MemAvailable alone
        }
        return null;
    }

    /** memory.max - memory.current of a cgroup v2 directory; Long.MAX_VALUE without a limit (or without the files). */
    static long cgroupRoom(Path cgroup) {
        if (cgroup == null) return Long.MAX_VALUE;
        try {
            String max = Files.readString(cgroup.resolve("memory.max")).trim();
            if (max.equals("max")) return Long.MAX_VALUE;
            return Math.max(0, Long.parseLong(max) - Long.parseLong(Files.readString(cgroup.resolve("memory.current")).trim()));
        } catch (IOException | NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    /** Bytes of MemAvailable in a /proc/meminfo file; without one (not Linux), the free physical memory the JVM reports. */
    static long memAvailable(Path meminfo) {
        if (!Files.isReadable(meminfo)) {
            var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
            return os.getFreeMemorySize();
        }
        try {
            for (String line : Files.readAllLines(meminfo))
                if (line.startsWith("MemAvailable:")) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length != 3 || !f[2].equals("kB"))
                        throw new IllegalStateException(meminfo + ": expected 'MemAvailable: N kB', got '" + line + "'");
                    return Long.parseLong(f[1]) * 1024;
                }
        } catch (IOException e) {
            throw new UncheckedIOException(meminfo + ": " + e.getMessage(), e);
        }
        throw new IllegalStateException(meminfo + ": no MemAvailable line");
    }

    /** The heap for {@code e}, or {@link DoesNotFit} naming the estimate, the available figure and what to change. */
    public Plan plan(MemoryEstimate e) {
        String smaller = "use " + e.remedy();
        long need = e.bytes();
        long wanted = (long) (need * HEADROOM) + SLACK;
        if (fixedHeapBytes != 0) {
            if (need > fixedHeapBytes)
                throw new DoesNotFit(e.job() + " needs about " + e.describe() + " of heap but -Xmx gives it "
                        + MemoryEstimate.gb(fixedHeapBytes) + ": raise -Xmx in LOWBIT_JAVA_OPTS or " + smaller);
            if (need > availableBytes)
                throw new DoesNotFit(e.job() + " needs about " + e.describe() + " and " + MemoryEstimate.gb(availableBytes)
                        + " is available: free memory or " + smaller);
            String warning = wanted > Math.min(fixedHeapBytes, availableBytes)
                    ? closeFit(e, Math.min(fixedHeapBytes, availableBytes)) : null;
            return new Plan(0, warning);
        }
        if (need > availableBytes)
            throw new DoesNotFit(e.job() + " needs about " + e.describe() + " and " + MemoryEstimate.gb(availableBytes)
                    + " is available: free memory (another lowbit or notebook kernel?) or " + smaller);
        if (wanted > availableBytes) return new Plan(availableBytes, closeFit(e, availableBytes));
        return new Plan(wanted, null);
    }

    /** The one line for a job that ran out of heap anyway (the estimate missed, or the heap was fixed too small). */
    public static String outOfMemory(String job) {
        long heap = Runtime.getRuntime().maxMemory();
        // qat's memory follows its training window, not a calibration set
        String smaller = job.equals("qat") ? "a smaller --seqlen" : "a smaller --nsamples or --calib-seqlen";
        return job + " ran out of Java heap (" + MemoryEstimate.gb(heap) + "): give it more with LOWBIT_JAVA_OPTS=-Xmx"
                + Math.max(1, Math.ceilDiv(2 * heap, 1L << 30)) + "g, or use " + smaller;
    }

    private static String closeFit(MemoryEstimate e, long limit) {
        return "warning: " + e.job() + " needs about " + MemoryEstimate.gb(e.bytes()) + " of heap and " + MemoryEstimate.gb(limit)
                + " is available: it may run slowly (garbage collection) or be killed if other processes grow";
    }
}
