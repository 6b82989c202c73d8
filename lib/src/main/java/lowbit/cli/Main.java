package lowbit.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

@Command(name = "lowbit", mixinStandardHelpOptions = true, version = "lowbit 0.1.0",
        description = "Low-bit quantization workbench for LLMs.",
        subcommands = {PplCommand.class, QuantizeCommand.class, BenchCommand.class, InfoCommand.class, DownloadCommand.class,
                StudyCommand.class})
public final class Main implements Runnable {
    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        try {
            System.exit(commandLine().execute(args));
        } catch (OutOfMemoryError e) {
            System.err.println("lowbit: " + lowbit.memory.MemoryBudget.outOfMemory(args.length > 0 ? args[0] : "lowbit"));
            System.exit(3);
        }
    }

    /** The command line with lowbit's error handling, for main and for tests. */
    static CommandLine commandLine() {
        CommandLine cli = new CommandLine(new Main());
        // A wrong option or a bad file is the user's to fix: one clear line, not a stack trace.
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof IllegalArgumentException || ex instanceof IllegalStateException || ex instanceof lowbit.io.FormatException
                    || ex instanceof java.io.UncheckedIOException || ex instanceof lowbit.io.hub.HubException) {
                cmd.getErr().println("lowbit: " + ex.getMessage());
                return 2;
            }
            throw ex;
        });
        return cli;
    }
}
