package lowbit.cli;

import lowbit.memory.MemoryEstimate;

/** A command whose heap ./lowbit sizes before starting it (see {@link MemoryPlan}). */
interface MemoryEstimated {
    /** The job's estimate from its options and the model's config; opens the checkpoint's header, loads nothing. */
    MemoryEstimate memoryEstimate();
}
