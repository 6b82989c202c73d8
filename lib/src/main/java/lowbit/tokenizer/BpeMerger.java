package lowbit.tokenizer;

import java.util.PriorityQueue;

/**
 * The BPE merge loop shared by all tokenizers here: repeatedly merge the adjacent pair with the best
 * (lowest) priority, leftmost first among equals, until no pair merges. With merge ranks as priorities
 * this is HF tokenizers' BPE; with ranks derived from piece scores it is sentencepiece's BPE and
 * llama.cpp's SPM tokenizer (which llama2.c's greedy best-score loop also computes, only in O(n^2)).
 */
final class BpeMerger {
    private BpeMerger() {}

    /** A pair's merge: {@code (long) priority << 32 | mergedId}, or -1 when the pair does not merge. */
    @FunctionalInterface
    interface Table {
        long lookup(int left, int right);
    }

    private record Candidate(int priority, int left, int right, int leftId, int rightId, int merged)
            implements Comparable<Candidate> {
        @Override
        public int compareTo(Candidate o) {
            int c = Integer.compare(priority, o.priority);
            return c != 0 ? c : Integer.compare(left, o.left);
        }
    }

    static int[] merge(int[] symbols, Table table) {
        int n = symbols.length;
        if (n < 2) return symbols.clone();
        int[] ids = symbols.clone();
        int[] prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) {
            prev[i] = i - 1;
            next[i] = i + 1 < n ? i + 1 : -1;
        }
        PriorityQueue<Candidate> queue = new PriorityQueue<>();
        for (int i = 0; i + 1 < n; i++) offer(queue, table, ids, i, i + 1);
        int alive = n;
        while (!queue.isEmpty()) {
            Candidate c = queue.poll();
            // stale: one side was merged away or changed since this pair was queued
            if (ids[c.left] != c.leftId || ids[c.right] != c.rightId || next[c.left] != c.right) continue;
            ids[c.left] = c.merged;
            ids[c.right] = -1;
            int after = next[c.right];
            next[c.left] = after;
            if (after >= 0) prev[after] = c.left;
            next[c.right] = -2;
            alive--;
            if (prev[c.left] >= 0) offer(queue, table, ids, prev[c.left], c.left);
            if (after >= 0) offer(queue, table, ids, c.left, after);
        }
        int[] out = new int[alive];
        for (int i = 0, k = 0; i >= 0; i = next[i]) out[k++] = ids[i];
        return out;
    }

    private static void offer(PriorityQueue<Candidate> queue, Table table, int[] ids, int left, int right) {
        if (ids[left] < 0 || ids[right] < 0) return;
        long m = table.lookup(ids[left], ids[right]);
        if (m < 0) return;
        queue.add(new Candidate((int) (m >>> 32), left, right, ids[left], ids[right], (int) m));
    }
}
