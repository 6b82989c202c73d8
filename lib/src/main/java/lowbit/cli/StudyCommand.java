package lowbit.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import lowbit.progress.Progress;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * The main job. Until the studies land it evaluates the default model's WikiText-2 perplexity, resumably,
 * and writes the result with its provenance under results/.
 */
@Command(name = "study", mixinStandardHelpOptions = true,
        description = "The main study (for now: the default model's WikiText-2 perplexity), written to results/.")
final class StudyCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--out", defaultValue = "results", description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--windows", defaultValue = "0", description = "limit the windows, for a quick look (0: all)")
    int windows;

    @Option(names = "--seqlen", defaultValue = "2048")
    int seqlen;

    @Override
    public Integer call() throws Exception {
        Files.createDirectories(out);
        Path journal = out.resolve("ppl-windows.tsv");
        PplCommand.Run run = PplCommand.run(modelOptions, null, "wikitext2", seqlen, windows, journal, Progress.terminal());
        Path result = out.resolve("ppl-wikitext2.json");
        Path tmp = out.resolve("ppl-wikitext2.json.part");
        Files.writeString(tmp, run.json().toPrettyString() + "\n");
        Files.move(tmp, result, java.nio.file.StandardCopyOption.REPLACE_EXISTING, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        System.out.println(run.summary());
        System.out.println("wrote " + result.toAbsolutePath() + " (per-window NLL in " + journal.toAbsolutePath() + ")");
        return 0;
    }
}
