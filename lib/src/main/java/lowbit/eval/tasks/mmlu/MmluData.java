package lowbit.eval.tasks.mmlu;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SequencedMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import lowbit.io.DataDir;
import lowbit.io.FormatException;

/**
 * MMLU in the original release's layout, the folder {@code mmlu/} of the data directory:
 * {@code dev/{subject}_dev.csv} (the few-shot examples), {@code test/{subject}_test.csv} (the items evaluated) and,
 * when present, {@code val/{subject}_val.csv}. lm-eval's {@code cais/mmlu} dataset is these files read row by row,
 * so the items here are its items, in its order.
 *
 * <p>A subject is present when it has a test file. Every such subject must be one of lm-eval's 57 and have a dev
 * file with at least five items (the 5-shot prompt needs them); anything else is an error naming the file, so a
 * damaged copy never produces a number for fewer subjects than it seems to.
 */
public final class MmluData {
    /** The folder under the data directory. */
    public static final String FOLDER = "mmlu";
    /** How a user gets the data. */
    public static final String DOWNLOAD_COMMAND = "./lowbit download mmlu";

    public record Subject(String name, List<MmluItem> dev, List<MmluItem> test, List<MmluItem> val) {
        public Subject {
            dev = List.copyOf(dev);
            test = List.copyOf(test);
            val = List.copyOf(val);
        }

        public MmluCategory category() {
            return MmluSubjects.category(name);
        }
    }

    private final Path dir;
    private final SequencedMap<String, Subject> subjects;

    private MmluData(Path dir, SequencedMap<String, Subject> subjects) {
        this.dir = dir;
        this.subjects = subjects;
    }

    /**
     * Why MMLU cannot be evaluated from this data directory, in one line naming what is missing and the command
     * that downloads it; empty when {@code mmlu/test/} has at least one test file. The CLI and the study print it
     * and go on with the other tasks.
     */
    public static Optional<String> absence(Path dataRoot) {
        Path testDir = dataRoot.resolve(FOLDER).resolve("test");
        if (!testFiles(testDir).isEmpty()) return Optional.empty();
        return Optional.of("MMLU skipped: no " + testDir + "/*_test.csv (run " + DOWNLOAD_COMMAND
                + " to fetch the original release, or put its dev/ and test/ folders under " + dataRoot.resolve(FOLDER) + ")");
    }

    /** The data directory's copy ({@link DataDir#root()}/mmlu); when it is absent, the error is {@link #absence}'s line. */
    public static MmluData fromDataDir() {
        Path root = DataDir.root();
        Optional<String> missing = absence(root);
        if (missing.isPresent()) throw new FormatException(root.resolve(FOLDER), missing.get());
        return load(root.resolve(FOLDER));
    }

    /** Reads and checks every subject under {@code dir} (a folder with dev/ and test/). */
    public static MmluData load(Path dir) {
        Path testDir = dir.resolve("test");
        List<String> names = testFiles(testDir);
        if (names.isEmpty())
            throw new FormatException(testDir, "no MMLU test files ({subject}_test.csv); expected the original release's layout"
                    + " dev/, test/ (run " + DOWNLOAD_COMMAND + ")");
        for (String name : names)
            if (!MmluSubjects.known(name))
                throw new FormatException(testDir.resolve(name + "_test.csv"), "not one of lm-eval's 57 MMLU subjects,"
                        + " so it has no category (expected names such as abstract_algebra_test.csv ... world_religions_test.csv)");
        SequencedMap<String, Subject> subjects = new LinkedHashMap<>();
        for (String name : MmluSubjects.all()) {
            if (!names.contains(name)) continue;
            Path devFile = dir.resolve("dev").resolve(name + "_dev.csv");
            if (!Files.isRegularFile(devFile))
                throw new FormatException(devFile, "missing: MMLU subject " + name + " has a test file but no dev file,"
                        + " which holds its " + MmluPrompt.SHOTS + " few-shot examples");
            List<MmluItem> dev = MmluCsv.read(devFile, name);
            if (dev.size() < MmluPrompt.SHOTS)
                throw new FormatException(devFile, "MMLU subject " + name + " has " + dev.size() + " dev items; expected at least "
                        + MmluPrompt.SHOTS + " (the 5-shot prompt's examples)");
            Path testFile = testDir.resolve(name + "_test.csv");
            List<MmluItem> test = MmluCsv.read(testFile, name);
            if (test.isEmpty()) throw new FormatException(testFile, "no items; expected rows question,A,B,C,D,answer");
            Path valFile = dir.resolve("val").resolve(name + "_val.csv");
            List<MmluItem> val = Files.isRegularFile(valFile) ? MmluCsv.read(valFile, name) : List.of();
            subjects.put(name, new Subject(name, dev, test, val));
        }
        return new MmluData(dir, subjects);
    }

    public Path dir() {
        return dir;
    }

    /** The subjects present, in lm-eval's order. */
    public List<String> subjects() {
        return List.copyOf(subjects.keySet());
    }

    public Subject subject(String name) {
        Subject s = subjects.get(name);
        if (s == null) {
            MmluSubjects.category(name); // an unknown name gets the error that lists what is known
            throw new IllegalArgumentException("MMLU subject " + name + " is not in " + dir + " (present: "
                    + String.join(", ", subjects.keySet()) + ")");
        }
        return s;
    }

    /** The items evaluated for a subject (its test split), in file order. */
    public List<MmluItem> items(String subject) {
        return subject(subject).test();
    }

    /** The number of test items per subject present, in lm-eval's order. */
    public Map<String, Integer> sizes() {
        Map<String, Integer> m = new LinkedHashMap<>();
        subjects.forEach((k, v) -> m.put(k, v.test().size()));
        return m;
    }

    /** The prompt for one test item with {@code shots} dev examples (5 for standard MMLU); score {@link MmluPrompt#CONTINUATIONS} after it. */
    public String context(MmluItem item, int shots) {
        return MmluPrompt.context(subject(item.subject()).dev(), shots, item);
    }

    /** Subject names of the {@code *_test.csv} files in a folder, sorted; empty when the folder is missing. */
    private static List<String> testFiles(Path testDir) {
        if (!Files.isDirectory(testDir)) return List.of();
        try (Stream<Path> files = Files.list(testDir)) {
            TreeSet<String> names = new TreeSet<>();
            files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith("_test.csv"))
                    .forEach(n -> names.add(n.substring(0, n.length() - "_test.csv".length())));
            return new ArrayList<>(names);
        } catch (IOException e) {
            throw new FormatException(testDir, "cannot list: " + e, e);
        }
    }
}
