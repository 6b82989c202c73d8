package lowbit.tensor;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * Runs index ranges on a fixed number of threads: the caller plus threads-1 workers pull indices from a
 * shared counter. Every index is computed whole by one thread, so results are bitwise identical on 1 or
 * 64 threads. A forEach called from inside a body runs serially (no nested fan-out, no deadlock).
 *
 * <p>The caller waits only for indices a worker has actually claimed, never for a worker to wake up: on a
 * busy machine a worker may get the CPU late, and by then the caller has done its share as well.
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
        AtomicInteger finished = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        CountDownLatch allDone = new CountDownLatch(1);
        Runnable drain = () -> {
            INSIDE.set(true);
            try {
                for (int i = next.getAndIncrement(); i < n; i = next.getAndIncrement()) {
                    try {
                        if (failure.get() == null) body.accept(i);
                    } catch (RuntimeException | Error e) {
                        failure.compareAndSet(null, e);
                    } finally {
                        if (finished.incrementAndGet() == n) allDone.countDown();
                    }
                }
            } finally {
                INSIDE.set(false);
            }
        };
        for (int t = 0, helpers = Math.min(threads - 1, n - 1); t < helpers; t++) workers.execute(drain);
        drain.run();
        try {
            allDone.await(); // counted down by whoever finishes the last index, often this thread
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for compute threads", e);
        }
        Throwable e = failure.get();
        if (e instanceof RuntimeException re) throw re;
        if (e instanceof Error err) throw err;
    }

    @Override
    public void close() {
        if (workers != null) workers.shutdown();
    }
}
