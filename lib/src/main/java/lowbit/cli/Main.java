package lowbit.cli;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.List;
import lowbit.io.FormatException;
import lowbit.io.hub.HubException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.UnmatchedArgumentException;

/**
 * The command line. Every error a user can fix (a wrong option, a bad file, a model whose loss turns NaN) ends
 * the same way for every command: one line on stderr, {@code lowbit: } first, naming the option or file and
 * what was expected, exit status 2. Anything else is a bug in lowbit and keeps its stack trace.
 */
@Command(name = "lowbit", mixinStandardHelpOptions = true, version = "lowbit 0.1.0",
        description = "Low-bit quantization workbench for LLMs.",
        subcommands = {PplCommand.class, EvalCommand.class, QuantizeCommand.class, AllocateCommand.class, ExportCommand.class, ImatrixCommand.class, BenchCommand.class, InfoCommand.class, DownloadCommand.class, QatCommand.class,
                StudyCommand.class})
public final class Main implements Runnable {
    static final int USER_ERROR = 2;

    @Override
    public void run() {
        new CommandLine(this).usage(System.out);
    }

    public static void main(String[] args) {
        // Warnings (the result store's skipped lines, for one) as one prefixed line each, like the errors.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null)
            System.setProperty("java.util.logging.SimpleFormatter.format", "lowbit: warning: %5$s%n");
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
        cli.setParameterExceptionHandler((ex, args) -> {
            ex.getCommandLine().getErr().println("lowbit: " + parameterError(ex));
            return USER_ERROR;
        });
        cli.setExecutionExceptionHandler((ex, cmd, parsed) -> {
            if (ex instanceof IllegalArgumentException || ex instanceof IllegalStateException || ex instanceof FormatException
                    || ex instanceof UncheckedIOException || ex instanceof HubException) {
                cmd.getErr().println("lowbit: " + errorLine(ex));
                return USER_ERROR;
            }
            throw ex;
        });
        return cli;
    }

    /** picocli's own message is one line and names the option; what it lacks is where to look next. */
    static String parameterError(ParameterException ex) {
        CommandLine cmd = ex.getCommandLine();
        boolean top = cmd.getParent() == null;
        String name = cmd.getCommandName();
        for (CommandLine c = cmd.getParent(); c != null && c.getParent() != null; c = c.getParent()) name = c.getCommandName() + " " + name;
        String help = top ? "./lowbit help" : "./lowbit " + name + " --help";
        if (ex instanceof UnmatchedArgumentException u && !u.getUnmatched().isEmpty()) {
            String first = u.getUnmatched().get(0);
            List<String> suggestions = u.getSuggestions();
            String didYouMean = suggestions.isEmpty() ? "" : " (did you mean " + String.join(" or ", suggestions) + "?)";
            if (top && !first.startsWith("-"))
                return "unknown command '" + first + "'" + didYouMean + "; " + help + " lists the commands";
            return (top ? "" : name + ": ") + (first.startsWith("-") ? "unknown option '" : "unexpected argument '")
                    + first + "'" + didYouMean + "; " + help + " lists the options";
        }
        return (top ? "" : name + ": ") + firstLine(ex.getMessage()) + "; " + help + " lists the options";
    }

    /**
     * One line for a failed command: the exception's own message, without the location boilerplate a JSON parser
     * appends (replaced by line and column), and with the operating system's reason when a file operation failed.
     */
    static String errorLine(Throwable ex) {
        String message = firstLine(stripJsonSource(String.valueOf(ex.getMessage())));
        JsonProcessingException json = causeOf(ex, JsonProcessingException.class);
        if (json != null) {
            JsonLocation at = json.getLocation();
            if (at != null && at.getLineNr() > 0 && !message.contains("line " + at.getLineNr()))
                message += " (at line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
        } else {
            IOException io = causeOf(ex instanceof IOException ? ex : ex.getCause(), IOException.class);
            if (io != null) {
                String reason = reason(io);
                // createDirectories names the path component that is in the way, which may not be the file asked for
                if (io instanceof FileSystemException f && f.getFile() != null && !mentions(message, f.getFile()))
                    reason = f.getFile() + ": " + reason;
                if (!message.contains(reason)) message += ": " + reason;
            }
        }
        return message;
    }

    /** What went wrong with a file, in the words of the system call rather than the Java exception class. */
    static String reason(IOException e) {
        if (e instanceof AccessDeniedException) return "permission denied";
        if (e instanceof NoSuchFileException) return "no such file or directory";
        if (e instanceof FileAlreadyExistsException) return "already exists";
        if (e instanceof NotDirectoryException) return "not a directory";
        if (e instanceof DirectoryNotEmptyException) return "directory not empty";
        if (e instanceof FileSystemException f && f.getReason() != null) return f.getReason();
        if (e.getMessage() != null) return firstLine(stripJsonSource(e.getMessage()));
        return e.getClass().getSimpleName();
    }

    private static boolean mentions(String message, String file) {
        return message.contains(file + ":") || message.contains(file + " ") || message.endsWith(file);
    }

    private static <T extends Throwable> T causeOf(Throwable ex, Class<T> type) {
        for (Throwable t = ex; t != null; t = t.getCause() == t ? null : t.getCause())
            if (type.isInstance(t)) return type.cast(t);
        return null;
    }

    /** Jackson's "[Source: ...; line: 1, column: 5]" and "(start marker at [Source: ...])" say nothing a user can use. */
    private static String stripJsonSource(String s) {
        return s.replaceAll(" ?\\(start marker at \\[Source: [^\\]]*\\]\\)", "")
                .replaceAll("\\s*at \\[Source: [^\\]]*\\]", "");
    }

    private static String firstLine(String s) {
        int cut = s.indexOf('\n');
        return (cut >= 0 ? s.substring(0, cut) : s).strip();
    }
}
