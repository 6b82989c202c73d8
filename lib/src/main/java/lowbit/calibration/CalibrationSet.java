package lowbit.calibration;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import lowbit.io.Hashing;

/**
 * Calibration windows and how they were drawn, so a result can say exactly which tokens calibrated it.
 *
 * @param source            "c4-train-slice" or the path of the file as given
 * @param sourceSha256      sha256 of the source file
 * @param mode              "documents" (the GPTQ protocol) or "concatenated"
 * @param separator         what joined the documents in the concatenated mode; null in the documents mode
 * @param documents         documents in the source
 * @param eligibleDocuments documents with more than {@code seqlen} tokens (documents mode); in the concatenated
 *                          mode, 1 when the stream is long enough, else 0
 * @param sourceTokens      tokens of all documents tokenized one by one (documents mode), or of the stream
 * @param rejectedDraws     documents drawn and thrown back for being too short (documents mode)
 * @param draws             one per window, in order
 * @param windows           {@code nsamples} rows of exactly {@code seqlen} token ids
 */
public record CalibrationSet(String source, String sourceSha256, String mode, String separator, int nsamples, int seqlen,
        long seed, int documents, int eligibleDocuments, long sourceTokens, int rejectedDraws, List<Draw> draws,
        int[][] windows) {

    public static final String DOCUMENTS = "documents";
    public static final String CONCATENATED = "concatenated";
    public static final String RNG = "java.util.SplittableRandom";

    /**
     * Where a window was cut.
     *
     * @param document index of the document in the source (0-based, in file order), or -1 in the concatenated
     *                 mode, where the window may span documents and {@code offset} counts in the whole stream
     * @param offset   index of the window's first token in that document's token sequence (BOS included where the
     *                 tokenizer adds one) or in the stream
     * @param length   tokens taken: always {@code seqlen}
     */
    public record Draw(int document, int offset, int length) {}

    public CalibrationSet {
        draws = List.copyOf(draws);
        if (draws.size() != nsamples || windows.length != nsamples)
            throw new IllegalArgumentException(nsamples + " samples but " + draws.size() + " draws and " + windows.length + " windows");
        for (int[] w : windows)
            if (w.length != seqlen) throw new IllegalArgumentException("a window of " + w.length + " tokens, expected " + seqlen);
    }

    /** Calibration tokens in all windows. */
    public long tokens() {
        return (long) nsamples * seqlen;
    }

    /** Documents that at least one window came from (documents mode); draws are with replacement. */
    public int distinctDocuments() {
        return (int) draws.stream().mapToInt(Draw::document).filter(d -> d >= 0).distinct().count();
    }

    /** sha256 of all window ids as little-endian int32, row after row: a short check that two runs saw the same tokens. */
    public String windowsSha256() {
        ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(tokens() * 4)).order(ByteOrder.LITTLE_ENDIAN);
        for (int[] w : windows) for (int id : w) b.putInt(id);
        return Hashing.sha256(b.array());
    }

    /** For result manifests: every parameter and every draw, as plain maps and lists (Jackson writes them as is). */
    public Map<String, Object> provenance() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("source", source);
        m.put("sourceSha256", sourceSha256);
        m.put("mode", mode);
        if (separator != null) m.put("separator", separator);
        m.put("nsamples", nsamples);
        m.put("seqlen", seqlen);
        m.put("seed", seed);
        m.put("rng", RNG);
        m.put("documents", documents);
        m.put("eligibleDocuments", eligibleDocuments);
        m.put("sourceTokens", sourceTokens);
        if (mode.equals(DOCUMENTS)) {
            m.put("rejectedDraws", rejectedDraws);
            m.put("distinctDocuments", distinctDocuments());
        }
        m.put("tokens", tokens());
        m.put("windowsSha256", windowsSha256());
        List<Map<String, Integer>> list = new ArrayList<>(draws.size());
        for (Draw d : draws) {
            Map<String, Integer> e = new LinkedHashMap<>();
            e.put("document", d.document());
            e.put("offset", d.offset());
            e.put("length", d.length());
            list.add(e);
        }
        m.put("draws", list);
        return m;
    }

    // Records compare arrays by reference; two samplings are equal when they drew the same tokens the same way.
    @Override
    public boolean equals(Object o) {
        return o instanceof CalibrationSet c && source.equals(c.source) && sourceSha256.equals(c.sourceSha256)
                && mode.equals(c.mode) && Objects.equals(separator, c.separator) && nsamples == c.nsamples
                && seqlen == c.seqlen && seed == c.seed && documents == c.documents
                && eligibleDocuments == c.eligibleDocuments && sourceTokens == c.sourceTokens
                && rejectedDraws == c.rejectedDraws && draws.equals(c.draws) && Arrays.deepEquals(windows, c.windows);
    }

    @Override
    public int hashCode() {
        return Objects.hash(source, sourceSha256, mode, nsamples, seqlen, seed, draws, Arrays.deepHashCode(windows));
    }

    @Override
    public String toString() {
        return "CalibrationSet[" + source + ", " + mode + ", " + nsamples + " x " + seqlen + " tokens, seed " + seed
                + ", " + eligibleDocuments + "/" + documents + " eligible documents]";
    }
}
