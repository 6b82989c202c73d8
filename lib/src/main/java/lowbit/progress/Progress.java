package lowbit.progress;

import java.time.temporal.ChronoUnit;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/**
 * Progress of a long job, with rate and ETA. The terminal shows a bar on stderr; tests and batch callers
 * pass {@link #NONE}; notebooks plug in their own display.
 */
public interface Progress {
    /** Starts a task of {@code total} units ("tok", "layer", ...). */
    Task start(String name, long total, String unit);

    interface Task extends AutoCloseable {
        void step(long units);

        /** A short status shown next to the bar, e.g. the running perplexity. */
        default void message(String text) {}

        @Override
        void close();
    }

    Progress NONE = (name, total, unit) -> new Task() {
        @Override
        public void step(long units) {}

        @Override
        public void close() {}
    };

    /** A progress bar on stderr with speed and ETA. */
    static Progress terminal() {
        return (name, total, unit) -> {
            ProgressBar bar = new ProgressBarBuilder()
                    .setTaskName(name)
                    .setInitialMax(total)
                    .setUnit(" " + unit, 1)
                    .showSpeed()
                    .setSpeedUnit(ChronoUnit.SECONDS)
                    .setUpdateIntervalMillis(500)
                    .setStyle(ProgressBarStyle.ASCII)
                    .setConsumer(new me.tongfei.progressbar.ConsoleProgressBarConsumer(System.err))
                    .build(); // ETA: the library's linear estimate from elapsed time and progress
            return new Task() {
                @Override
                public void step(long units) {
                    bar.stepBy(units);
                }

                @Override
                public void message(String text) {
                    bar.setExtraMessage(" " + text);
                }

                @Override
                public void close() {
                    bar.close();
                }
            };
        };
    }
}
