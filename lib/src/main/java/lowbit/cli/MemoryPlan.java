package lowbit.cli;

import lowbit.memory.MemoryBudget;
import lowbit.memory.MemoryEstimate;
import picocli.CommandLine;

/**
 * Run by ./lowbit in a short JVM before the job's own, with the job's arguments: prints the -Xmx option sized
 * from the job's {@link MemoryEstimate} (nothing when LOWBIT_JAVA_OPTS fixes the heap or the command has no
 * estimate), a warning on stderr when the fit is close, and refuses with exit 2 a job that cannot fit. A JVM
 * cannot change its own heap limit once started, hence the second JVM. Arguments it cannot parse, or a model
 * it cannot open, are left to the job itself to report, so each error has one wording.
 */
public final class MemoryPlan {
    private MemoryPlan() {}

    public static void main(String[] args) {
        MemoryEstimate estimate;
        try {
            CommandLine.ParseResult parsed = Main.commandLine().parseArgs(args);
            while (parsed.hasSubcommand()) parsed = parsed.subcommand();
            if (parsed.isUsageHelpRequested() || parsed.isVersionHelpRequested()
                    || !(parsed.commandSpec().userObject() instanceof MemoryEstimated job)) return;
            estimate = job.memoryEstimate();
        } catch (RuntimeException e) {
            return;
        }
        try {
            MemoryBudget.Plan plan = MemoryBudget.current().plan(estimate);
            if (plan.warning() != null) System.err.println("lowbit: " + plan.warning());
            System.out.println(plan.javaOption());
        } catch (MemoryBudget.DoesNotFit e) {
            System.err.println("lowbit: " + e.getMessage());
            System.exit(2);
        }
    }
}
