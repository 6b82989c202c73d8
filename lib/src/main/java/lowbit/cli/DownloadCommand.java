package lowbit.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import lowbit.io.DataDir;
import lowbit.io.hub.HubClient;
import lowbit.progress.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "download", mixinStandardHelpOptions = true,
        description = "Download a model snapshot from the Hugging Face Hub (HF_ENDPOINT, HF_TOKEN honoured) into data/models/hub/.")
final class DownloadCommand implements Callable<Integer> {
    @Option(names = "--repo", required = true, paramLabel = "ORG/NAME")
    String repo;

    @Option(names = "--revision", defaultValue = "main")
    String revision;

    @Override
    public Integer call() {
        Path dir = HubClient.snapshot(repo, revision, DataDir.root().resolve("models/hub"),
                terminalDownloadProgress());
        System.out.println(dir.toAbsolutePath());
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
