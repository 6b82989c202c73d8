package lowbit.notebook;

import java.util.Locale;
import java.util.function.BiConsumer;
import java.util.function.Function;
import java.util.function.LongSupplier;
import lowbit.progress.Progress;

/**
 * Progress bars that update in place in a notebook cell's output: each task shows one output and then replaces
 * it (Jupyter's display id / update_display_data), at most every {@code interval} milliseconds and once more when
 * it closes, so a long run leaves one finished line per task rather than thousands of lines.
 *
 * <p>The kernel is reached through two functions, so the library does not depend on it: {@code show} displays
 * a MIME bundle and returns its display id (JJava: {@code display(...)}), {@code update} replaces the output
 * with that id (JJava: {@code updateDisplay(id, ...)}). The startup script wires both.
 */
public final class NotebookProgress implements Progress {
    private final Function<Display.Bundle, String> show;
    private final BiConsumer<String, Display.Bundle> update;
    private final long intervalNanos;
    private final LongSupplier clock;

    public NotebookProgress(Function<Display.Bundle, String> show, BiConsumer<String, Display.Bundle> update) {
        this(show, update, 250, System::nanoTime);
    }

    NotebookProgress(Function<Display.Bundle, String> show, BiConsumer<String, Display.Bundle> update,
                     long intervalMillis, LongSupplier clock) {
        this.show = show;
        this.update = update;
        this.intervalNanos = intervalMillis * 1_000_000L;
        this.clock = clock;
    }

    @Override
    public Task start(String name, long total, String unit) {
        return new Bar(name, total, unit);
    }

    private final class Bar implements Task {
        private final String name;
        private final long total;
        private final String unit;
        private final long started;
        private final String id;
        private long done;
        private String message = "";
        private long lastShown;
        private boolean closed;

        Bar(String name, long total, String unit) {
            this.name = name;
            this.total = total;
            this.unit = unit;
            this.started = clock.getAsLong();
            this.lastShown = started;
            this.id = show.apply(render(started, false));
        }

        @Override
        public synchronized void step(long units) {
            done += units;
            refresh(false);
        }

        @Override
        public synchronized void message(String text) {
            message = text == null ? "" : text;
            refresh(false);
        }

        @Override
        public synchronized void close() {
            if (closed) return;
            closed = true;
            update.accept(id, render(clock.getAsLong(), true));
        }

        private void refresh(boolean force) {
            long now = clock.getAsLong();
            if (closed || (!force && now - lastShown < intervalNanos)) return;
            lastShown = now;
            update.accept(id, render(now, false));
        }

        private Display.Bundle render(long now, boolean finished) {
            return NotebookProgress.render(name, done, total, unit, message, (now - started) / 1e9, finished);
        }
    }

    /** The bundle for one bar: an HTML {@code <progress>} with the counts, rate and ETA, and the same as text. */
    static Display.Bundle render(String name, long done, long total, String unit, String message, double seconds,
                                      boolean finished) {
        double rate = seconds > 0 ? done / seconds : 0;
        String counts = total > 0 ? done + "/" + total + " " + unit : done + " " + unit;
        String timing = finished
                ? String.format(Locale.ROOT, "done in %s", clock(seconds))
                : String.format(Locale.ROOT, "%s elapsed", clock(seconds))
                  + (rate > 0 && total > done ? ", ETA " + clock((total - done) / rate) : "");
        String speed = rate > 0 ? String.format(Locale.ROOT, ", %.3g %s/s", rate, unit) : "";
        String text = name + " " + counts + speed + ", " + timing + (message.isEmpty() ? "" : " | " + message);
        long max = Math.max(total, 1);
        String html = "<div class=\"lowbit-progress\" style=\"font-family:monospace;font-size:12px\">"
                + "<progress value=\"" + Math.min(done, max) + "\" max=\"" + max + "\" style=\"width:280px;vertical-align:middle\"></progress> "
                + escape(text) + "</div>";
        return Display.bundle(html, text);
    }

    static String clock(double seconds) {
        long s = Math.round(seconds);
        return s >= 3600 ? String.format(Locale.ROOT, "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
                : String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
    }

    private static String escape(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;");
    }
}
