package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class ParallelTest {
    @Test
    void everyIndexRunsExactlyOnce() {
        try (Parallel par = new Parallel(3)) {
            for (int round = 0; round < 50; round++) {
                int n = 1 + round * 7;
                AtomicIntegerArray seen = new AtomicIntegerArray(n);
                par.forEach(n, seen::incrementAndGet);
                for (int i = 0; i < n; i++) assertEquals(1, seen.get(i), "index " + i + " of " + n);
            }
        }
    }

    @Test
    void aFailureInAnyThreadReachesTheCaller() {
        IllegalArgumentException boom = new IllegalArgumentException("boom");
        try (Parallel par = new Parallel(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> par.forEach(100, i -> {
                if (i == 77) throw boom;
            }));
            assertSame(boom, e);
            AtomicIntegerArray seen = new AtomicIntegerArray(10);
            par.forEach(10, seen::incrementAndGet); // still usable afterwards
            for (int i = 0; i < 10; i++) assertEquals(1, seen.get(i));
        }
    }

    @Test
    void nestedCallsRunInline() {
        try (Parallel par = new Parallel(2)) {
            AtomicIntegerArray seen = new AtomicIntegerArray(16);
            par.forEach(4, i -> par.forEach(4, j -> seen.incrementAndGet(i * 4 + j)));
            for (int i = 0; i < 16; i++) assertEquals(1, seen.get(i));
        }
    }
}
