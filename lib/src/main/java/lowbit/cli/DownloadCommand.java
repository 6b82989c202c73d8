package lowbit.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import lowbit.eval.tasks.mmlu.MmluDownload;
import lowbit.io.DataDir;
import lowbit.io.hub.HubClient;
import lowbit.progress.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "download", mixinStandardHelpOptions = true,
        description = {"Download a model snapshot from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN honoured) into data/models/hub/,",
                "or a data set into the data directory: mmlu (the original MMLU release, into data/mmlu/)."})
final class DownloadCommand implements Callable<Integer> {
    @Option(names = "--repo", paramLabel = "ORG/NAME", description = "a model repository on the Hub")
    String repo;

    @Parameters(paramLabel = "DATASET", arity = "0..1", description = "mmlu: the original MMLU release (dev, val and test splits)")
    String dataset;

    @Option(names = "--revision", defaultValue = "main")
    String revision;

    @Override
    public Integer call() {
        if ((repo == null) == (dataset == null))
            throw new IllegalArgumentException("download needs either --repo ORG/NAME (a model) or a data set: mmlu (./lowbit download --help)");
        if (dataset != null) return dataset(dataset);
        Path dir = HubClient.snapshot(repo, revision, DataDir.root().resolve("models/hub"),
                terminalDownloadProgress());
        System.out.println(dir.toAbsolutePath());
        return 0;
    }

    private static int dataset(String name) {
        if (!name.equals("mmlu"))
            throw new IllegalArgumentException("download: unknown data set '" + name + "' (known: mmlu; a model: --repo ORG/NAME)");
        MmluDownload.Result r = MmluDownload.download(DataDir.root(), Progress.terminal());
        System.out.println(r.dir().toAbsolutePath() + (r.downloaded() ? "" : " (already present)") + ": MMLU, "
                + r.subjects() + " subjects, " + r.testItems() + " test items");
        return 0;
    }

    /** One terminal bar per file, in KiB. */
    static HubClient.Progress terminalDownloadProgress() {
        Progress terminal = Progress.terminal();
        return new HubClient.Progress() {
            private Progress.Task task;
            private String file;
            private long shownKib;

            @Override
            public void update(String name, long done, long total) {
                if (!name.equals(file)) {
                    if (task != null) task.close();
                    file = name;
                    shownKib = 0;
                    task = terminal.start(name, Math.max(1, (total + 1023) / 1024), "KiB");
                }
                long kib = done / 1024;
                task.step(kib - shownKib);
                shownKib = kib;
                if (total > 0 && done >= total) {
                    task.close();
                    task = null;
                    file = null;
                }
            }
        };
    }
}
