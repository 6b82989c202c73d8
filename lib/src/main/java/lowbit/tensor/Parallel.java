package lowbit.tensor;

import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntConsumer;

/**
 * Runs index ranges on a fixed number of threads: the caller plus threads-1 workers pull indices from a
 * shared counter. Every index is computed whole by one thread, so results are bitwise identical on 1 or
 * 64 threads. A forEach called from inside a body runs serially (no nested fan-out, no deadlock).
 */
public final class Parallel implements AutoCloseable {
    private static final ThreadLocal<Boolean> INSIDE = ThreadLocal.withInitial(() -> false);
    private final ExecutorService workers;
    private final int threads;

    public Parallel(int threads) {
        if (threads < 1) throw new IllegalArgumentException("threads must be >= 1, got " + threads);
        this.threads = threads;
        this.workers = threads == 1 ? null : Executors.newFixedThreadPool(threads - 1, r -> {
            Thread t = new Thread(r, "lowbit-compute");
            t.setDaemon(true);
            return t;
        });
    }

    public static int defaultThreads() {
        return Runtime.getRuntime().availableProcessors();
    }

    public int threads() {
        return threads;
    }

    /** body.accept(i) for i in [0, n), in any order. */
    public void forEach(int n, IntConsumer body) {
        if (workers == null || n <= 1 || INSIDE.get()) {
            for (int i = 0; i < n; i++) body.accept(i);
            return;
        }
        AtomicInteger next = new AtomicInteger();
        Runnable drain = () -> {
            INSIDE.set(true);
            try {
                for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) body.accept(i);
            } finally {
                INSIDE.set(false);
            }
        };
        int helpers = Math.min(threads - 1, n - 1);
        Future<?>[] running = new Future<?>[helpers];
        for (int t = 0; t < helpers; t++) running[t] = workers.submit(drain);
        RuntimeException failure = null;
        try {
            drain.run();
        } catch (RuntimeException e) {
            failure = e;
            next.set(n); // stop the others early
        }
        for (Future<?> f : running) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) failure = e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted", e);
            }
        }
        if (failure != null) throw failure;
    }

    @Override
    public void close() {
        if (workers != null) workers.shutdown();
    }
}
