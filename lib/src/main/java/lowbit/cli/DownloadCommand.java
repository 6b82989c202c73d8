package lowbit.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import lowbit.io.DataDir;
import lowbit.io.hub.HubClient;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;
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

    /** One terminal bar per file. */
    static HubClient.Progress terminalDownloadProgress() {
        return new HubClient.Progress() {
            private ProgressBar bar;
            private String file;

            @Override
            public void update(String name, long done, long total) {
                if (!name.equals(file)) {
                    if (bar != null) bar.close();
                    file = name;
                    bar = new ProgressBarBuilder().setTaskName(name).setInitialMax(Math.max(total, 1))
                            .setUnit(" MB", 1 << 20).setStyle(ProgressBarStyle.ASCII).setConsumer(
                                    new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err)).showSpeed().build();
                }
                bar.stepTo(done);
                if (done >= total && total > 0) {
                    bar.close();
                    bar = null;
                    file = null;
                }
            }
        };
    }
}
