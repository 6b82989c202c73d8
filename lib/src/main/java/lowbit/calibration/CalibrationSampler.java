package lowbit.calibration;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.SplittableRandom;
import lowbit.calibration.CalibrationSet.Draw;
import lowbit.tensor.Parallel;
import lowbit.tokenizer.Tokenizer;

/**
 * Draws calibration windows (METHODS.md section 1, "Calibration data").
 *
 * <pre>{@code
 * CalibrationSet set = CalibrationSampler.of(tokenizer).source("c4").nsamples(128).seqlen(2048).seed(0).sample();
 * }</pre>
 *
 * <p>{@link Mode#DOCUMENTS} is GPTQ's {@code get_c4}: for each window, draw a document uniformly until one has more
 * than {@code seqlen} tokens, then a uniform offset in {@code [0, count - seqlen - 1]} (Python's
 * {@code randint(0, count - seqlen - 1)}, so the last possible window is never taken, as in the reference). Each
 * document is tokenized alone as the reference does, {@code tokenizer(text).input_ids}: with BOS in front where the
 * tokenizer adds one ({@link Tokenizer#encodeWithSpecials}). The reference accepts a document of exactly
 * {@code seqlen} tokens and then fails in {@code randint(0, -1)}; we require more than {@code seqlen}.
 *
 * <p>{@link Mode#CONCATENATED} joins all documents with a separator ("\n\n" unless set), tokenizes the whole
 * string once (BOS only at its start, where the tokenizer adds one), and draws offsets the same way, with
 * replacement, as GPTQ's wikitext2/ptb loaders do. Windows may span documents.
 *
 * <p>The random numbers come from {@link SplittableRandom} seeded with {@code seed}, so draws are deterministic
 * but not those of Python's {@code random.seed(0)} (we could not match them anyway: we ship 1000 documents, not
 * the shard). Every draw is recorded in the {@link CalibrationSet}.
 *
 * <p>Tokenizations are kept by the sampler: changing only nsamples, seqlen, seed or mode does not tokenize again.
 * Not thread-safe.
 */
public final class CalibrationSampler {
    public enum Mode {
        DOCUMENTS, CONCATENATED;

        public String label() {
            return this == DOCUMENTS ? CalibrationSet.DOCUMENTS : CalibrationSet.CONCATENATED;
        }

        /** "documents" or "concatenated", as a user types it. */
        public static Mode parse(String s) {
            for (Mode m : values()) if (m.label().equalsIgnoreCase(s) || m.name().equalsIgnoreCase(s)) return m;
            throw new IllegalArgumentException("unknown calibration mode '" + s + "' (known: documents, concatenated)");
        }
    }

    public static final int DEFAULT_NSAMPLES = 128;
    public static final int DEFAULT_SEQLEN = 2048;
    public static final long DEFAULT_SEED = 0;
    public static final String DEFAULT_SEPARATOR = "\n\n";

    private final Tokenizer tokenizer;
    private Documents documents;
    private int nsamples = DEFAULT_NSAMPLES;
    private int seqlen = DEFAULT_SEQLEN;
    private long seed = DEFAULT_SEED;
    private Mode mode = Mode.DOCUMENTS;
    private String separator = DEFAULT_SEPARATOR;
    private int threads = Parallel.defaultThreads();

    private int[][] documentTokens; // per document, for `documents`
    private int[] stream; // the concatenation of `documents` with `streamSeparator`
    private String streamSeparator;

    private CalibrationSampler(Tokenizer tokenizer) {
        this.tokenizer = Objects.requireNonNull(tokenizer, "tokenizer");
    }

    public static CalibrationSampler of(Tokenizer tokenizer) {
        return new CalibrationSampler(tokenizer);
    }

    /** "c4" (the shipped C4 train slice), or a path to a .jsonl file or a plain text file; see {@link Documents}. */
    public CalibrationSampler source(String source) {
        return documents(Documents.load(source));
    }

    /** A .jsonl file (documents = "text" fields) or plain text (documents = paragraphs between blank lines). */
    public CalibrationSampler textFile(Path file) {
        return documents(Documents.read(file));
    }

    public CalibrationSampler documents(Documents docs) {
        if (docs != documents) {
            documents = Objects.requireNonNull(docs, "documents");
            documentTokens = null;
            stream = null;
        }
        return this;
    }

    public CalibrationSampler nsamples(int n) {
        if (n < 1) throw new IllegalArgumentException("calibration nsamples must be >= 1, got " + n);
        nsamples = n;
        return this;
    }

    public CalibrationSampler seqlen(int len) {
        if (len < 2) throw new IllegalArgumentException("calibration seqlen must be >= 2 tokens, got " + len);
        seqlen = len;
        return this;
    }

    public CalibrationSampler seed(long s) {
        seed = s;
        return this;
    }

    public CalibrationSampler mode(Mode m) {
        mode = Objects.requireNonNull(m, "mode");
        return this;
    }

    /** What joins documents in the concatenated mode ("\n\n" by default, as GPTQ's Pile loader; its wikitext2 loader uses " "). */
    public CalibrationSampler separator(String sep) {
        separator = Objects.requireNonNull(sep, "separator");
        return this;
    }

    /** Threads that tokenize documents (results do not depend on it). */
    public CalibrationSampler threads(int n) {
        if (n < 1) throw new IllegalArgumentException("threads must be >= 1, got " + n);
        threads = n;
        return this;
    }

    public CalibrationSet sample() {
        requireSource();
        return mode == Mode.DOCUMENTS ? sampleDocuments() : sampleConcatenated();
    }

    /** Token count of every document, tokenized alone with the tokenizer's specials. */
    public int[] documentTokenCounts() {
        int[][] toks = documentTokens();
        int[] counts = new int[toks.length];
        for (int i = 0; i < counts.length; i++) counts[i] = toks[i].length;
        return counts;
    }

    /** Documents the documents mode can cut a {@code seqlen}-token window from: more than {@code seqlen} tokens. */
    public int eligibleDocuments(int seqlen) {
        return eligibleDocuments(documentTokenCounts(), seqlen);
    }

    public static int eligibleDocuments(int[] tokenCounts, int seqlen) {
        int n = 0;
        for (int c : tokenCounts) if (eligible(c, seqlen)) n++;
        return n;
    }

    // One rule for counting and for drawing, so the draw loop cannot spin on a count that said "eligible".
    private static boolean eligible(int tokenCount, int seqlen) {
        return tokenCount > seqlen;
    }

    private CalibrationSet sampleDocuments() {
        int[][] toks = documentTokens();
        int[] counts = documentTokenCounts();
        int eligible = eligibleDocuments(counts, seqlen);
        long total = 0;
        int longest = 0;
        for (int c : counts) {
            total += c;
            longest = Math.max(longest, c);
        }
        if (eligible == 0) {
            String hint = longest > 2 ? "use --calib-seqlen " + (longest - 1) + " or less, or " : "use ";
            throw new IllegalArgumentException("calibration source " + documents.name() + ": none of its " + counts.length
                    + " documents has more than seqlen " + seqlen + " tokens (the longest has " + longest + "); " + hint
                    + "the concatenated mode (--calib-mode concatenated)");
        }
        SplittableRandom rng = new SplittableRandom(seed);
        List<Draw> draws = new ArrayList<>(nsamples);
        int[][] windows = new int[nsamples][];
        int rejected = 0;
        for (int s = 0; s < nsamples; s++) {
            int doc;
            while (!eligible(counts[doc = rng.nextInt(counts.length)], seqlen)) rejected++;
            int offset = rng.nextInt(counts[doc] - seqlen);
            draws.add(new Draw(doc, offset, seqlen));
            windows[s] = Arrays.copyOfRange(toks[doc], offset, offset + seqlen);
        }
        return new CalibrationSet(documents.name(), documents.sha256(), CalibrationSet.DOCUMENTS, null, nsamples, seqlen,
                seed, counts.length, eligible, total, rejected, draws, windows);
    }

    private CalibrationSet sampleConcatenated() {
        int[] ids = stream();
        if (ids.length <= seqlen)
            throw new IllegalArgumentException("calibration source " + documents.name() + ": its " + documents.size()
                    + " documents joined make " + ids.length + " tokens, too few for one window of seqlen " + seqlen
                    + " (needs more than " + seqlen + "); use a longer source or --calib-seqlen " + Math.max(2, ids.length - 1)
                    + " or less");
        SplittableRandom rng = new SplittableRandom(seed);
        List<Draw> draws = new ArrayList<>(nsamples);
        int[][] windows = new int[nsamples][];
        for (int s = 0; s < nsamples; s++) {
            int offset = rng.nextInt(ids.length - seqlen);
            draws.add(new Draw(-1, offset, seqlen));
            windows[s] = Arrays.copyOfRange(ids, offset, offset + seqlen);
        }
        return new CalibrationSet(documents.name(), documents.sha256(), CalibrationSet.CONCATENATED, separator, nsamples,
                seqlen, seed, documents.size(), 1, ids.length, 0, draws, windows);
    }

    private int[][] documentTokens() {
        requireSource();
        if (documentTokens == null) {
            List<String> texts = documents.texts();
            int[][] toks = new int[texts.size()][];
            try (Parallel p = new Parallel(Math.min(threads, Math.max(1, texts.size())))) {
                p.forEach(texts.size(), i -> toks[i] = tokenizer.encodeWithSpecials(texts.get(i)));
            }
            documentTokens = toks;
        }
        return documentTokens;
    }

    private int[] stream() {
        if (stream == null || !separator.equals(streamSeparator)) {
            stream = tokenizer.encodeWithSpecials(String.join(separator, documents.texts()));
            streamSeparator = separator;
        }
        return stream;
    }

    private void requireSource() {
        if (documents == null) throw new IllegalStateException("no calibration source: call source(...) or textFile(...) first");
    }
}
