package lowbit.results;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Child process for {@link ResultStoreProcessesTest}: {@code StoreWriterMain FILE ID DISTINCT SHARED GO_FILE}.
 * Opens the store, prints "ready", waits until GO_FILE exists (so all children write at the same time), then
 * appends DISTINCT rows with keys of its own and, interleaved, tries SHARED rows whose keys every child uses.
 * Prints "won N" followed by the shared keys it stored.
 */
public final class StoreWriterMain {
    public static void main(String[] args) throws Exception {
        Path file = Path.of(args[0]);
        String id = args[1];
        int distinct = Integer.parseInt(args[2]);
        int shared = Integer.parseInt(args[3]);
        Path go = Path.of(args[4]);
        ResultStore store = ResultStore.open(file);
        System.out.println("ready");
        System.out.flush();
        long deadline = System.nanoTime() + 30_000_000_000L;
        while (!Files.exists(go)) {
            if (System.nanoTime() > deadline) throw new IllegalStateException("no go signal");
            Thread.sleep(1);
        }
        StringBuilder won = new StringBuilder();
        int wins = 0;
        int every = Math.max(1, distinct / Math.max(1, shared));
        int s = 0;
        for (int i = 0; i < distinct; i++) {
            store.append(Row.of("p" + id + "-" + i).with("writer", id).with("i", i)
                    .with("payload", "x".repeat(200 + (i * 37) % 3000)));
            if (i % every == 0 && s < shared) {
                String key = "shared-" + s++;
                if (store.tryAppend(Row.of(key).with("writer", id))) {
                    wins++;
                    won.append(' ').append(key);
                }
            }
        }
        while (s < shared) {
            String key = "shared-" + s++;
            if (store.tryAppend(Row.of(key).with("writer", id))) {
                wins++;
                won.append(' ').append(key);
            }
        }
        System.out.println("won " + wins + won);
    }
}
