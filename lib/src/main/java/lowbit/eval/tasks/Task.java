package lowbit.eval.tasks;

import java.nio.file.Path;
import java.util.List;
import lowbit.io.DataDir;

/**
 * A zero-shot task as lm-evaluation-harness defines it, read from the shipped file(s) under the data directory.
 *
 * @param name    lm-eval's task name
 * @param files   paths relative to the data directory; the first holds the documents
 * @param output  multiple choice (argmax of the choices' log-likelihoods) or a single loglikelihood request
 * @param metrics the metrics lm-eval reports for the task, in its order
 * @param reader  builds lm-eval's requests from the shipped layout (see the package documentation)
 */
public record Task(String name, List<String> files, Output output, List<String> metrics, Reader reader) {
    public enum Output { MULTIPLE_CHOICE, LOGLIKELIHOOD }

    /** Turns the task's files into items, in file order; malformed content is a FormatException naming file and line. */
    @FunctionalInterface
    public interface Reader {
        List<Item> read(List<Path> files);
    }

    public Task {
        files = List.copyOf(files);
        metrics = List.copyOf(metrics);
    }

    /** The task's files under the data directory; a missing one is a one-line error naming it. */
    public List<Path> paths() {
        return files.stream().map(DataDir::require).toList();
    }

    public List<Item> load() {
        return reader.read(paths());
    }

    public boolean reportsAccNorm() {
        return metrics.contains("acc_norm");
    }
}
