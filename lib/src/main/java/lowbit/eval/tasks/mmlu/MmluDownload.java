package lowbit.eval.tasks.mmlu;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import lowbit.io.FormatException;
import lowbit.io.Hashing;
import lowbit.progress.Progress;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;

/**
 * Fetches the original MMLU release (Hendrycks et al., {@code data.tar}: {@code data/dev}, {@code data/val},
 * {@code data/test}, {@code data/auxiliary_train}) into the data directory's {@code mmlu/} folder: the archive is
 * streamed, its dev/val/test CSV files written to a temporary folder beside the target, checked with
 * {@link MmluData#load} (every one of the 57 subjects with its dev and test file), and only then renamed to
 * {@code mmlu/}, so the folder is either absent or complete. auxiliary_train is not kept (nothing evaluates it).
 */
public final class MmluDownload {
    /** The release's public address, the one the Hugging Face dataset (hendrycks_test, now cais/mmlu) was built from. */
    public static final URI SOURCE = URI.create("https://people.eecs.berkeley.edu/~hendrycks/data.tar");

    /** What the call did: the folder, whether it was fetched now (false: already there), and its size. */
    public record Result(Path dir, boolean downloaded, int subjects, int testItems) {}

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern MEMBER = Pattern.compile("(?:.*/)?(dev|val|test)/([a-z_]+)_(dev|val|test)\\.csv");

    private MmluDownload() {}

    /** From {@link #SOURCE} into {@code dataRoot/mmlu}. */
    public static Result download(Path dataRoot, Progress progress) {
        return download(SOURCE, dataRoot, progress);
    }

    public static Result download(URI source, Path dataRoot, Progress progress) {
        Path target = dataRoot.resolve(MmluData.FOLDER);
        if (Files.exists(target)) {
            if (MmluData.absence(dataRoot).isPresent())
                throw new IllegalStateException(target + " exists but has no test/*_test.csv; remove it and run "
                        + MmluData.DOWNLOAD_COMMAND + " again");
            return result(target, false);
        }
        Path tmp;
        try {
            Files.createDirectories(dataRoot);
            tmp = Files.createTempDirectory(dataRoot, ".mmlu-download-");
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create a folder for MMLU under " + dataRoot + ": " + e, e);
        }
        try {
            Archive archive = fetchInto(source, tmp, progress == null ? Progress.NONE : progress);
            MmluData data;
            try {
                data = MmluData.load(tmp);
            } catch (FormatException e) {
                // the temporary path in the message is gone by the time it is read: name the archive too
                throw new IllegalStateException("the archive from " + source + " has a damaged file, nothing was written to "
                        + target + ": " + e.getMessage(), e);
            }
            List<String> missing = MmluSubjects.all().stream().filter(s -> !data.subjects().contains(s)).toList();
            if (!missing.isEmpty())
                throw new IllegalStateException("the archive from " + source + " lacks the test file of " + missing.size()
                        + " MMLU subject(s): " + String.join(", ", missing) + " (expected the original release's data/dev and"
                        + " data/test for all 57); nothing was written to " + target);
            try {
                JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve(SOURCE_FILE).toFile(),
                        Map.of("url", archive.url().toString(), "bytes", archive.bytes(), "sha256", archive.sha256()));
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException e) {
                throw new IllegalStateException(target + " appeared while MMLU was downloading (another download?); kept it", e);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot rename " + tmp + " to " + target + ": " + e, e);
            }
            return result(target, true);
        } finally {
            deleteRecursively(tmp);
        }
    }

    private static Result result(Path target, boolean downloaded) {
        MmluData data = MmluData.load(target);
        int items = data.sizes().values().stream().mapToInt(Integer::intValue).sum();
        return new Result(target, downloaded, data.subjects().size(), items);
    }

    /** Where the files came from, written beside them as {@value #SOURCE_FILE} (the release publishes no checksum to verify). */
    public record Archive(URI url, long bytes, String sha256) {}

    public static final String SOURCE_FILE = "source.json";

    private static Archive fetchInto(URI source, Path dir, Progress progress) {
        HttpClient http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
        HttpResponse<InputStream> response;
        try {
            response = http.send(HttpRequest.newBuilder(source).GET().header("User-Agent", "lowbit").build(),
                    HttpResponse.BodyHandlers.ofInputStream());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot reach " + source + " for MMLU: " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while fetching " + source, e);
        }
        if (response.statusCode() != 200) {
            try {
                response.body().close();
            } catch (IOException ignored) {
                // the answer is an error anyway
            }
            throw new IllegalStateException("HTTP " + response.statusCode() + " for MMLU at " + source);
        }
        long total = response.headers().firstValueAsLong("Content-Length").orElse(-1);
        MessageDigest sha = Hashing.sha256();
        long done = 0;
        try (Progress.Task task = progress.start("MMLU " + fileName(source), total < 0 ? -1 : Math.max(1, (total + 1023) / 1024), "KiB");
             Counting counted = new Counting(new DigestInputStream(response.body(), sha), task)) {
            try {
                extract(counted, dir, source);
            } finally {
                done = counted.count;
            }
        } catch (IOException e) {
            throw new UncheckedIOException("download of MMLU from " + source + " failed after " + done + " bytes"
                    + (total >= 0 ? " of " + total : "") + ": " + e.getMessage() + " (expected the original release, a tar"
                    + " archive; nothing was kept, run " + MmluData.DOWNLOAD_COMMAND + " again)", e);
        }
        if (total >= 0 && done != total)
            throw new IllegalStateException("download of MMLU from " + source + " ended at " + done + " bytes, expected " + total);
        return new Archive(source, done, HexFormat.of().formatHex(sha.digest()));
    }

    /** Writes the archive's {dev,val,test}/*_{split}.csv members to dir/{split}/; a gzip-compressed tar is read too. */
    private static void extract(InputStream raw, Path dir, URI source) throws IOException {
        BufferedInputStream in = new BufferedInputStream(raw, 1 << 16);
        in.mark(2);
        boolean gzip = in.read() == 0x1f && in.read() == 0x8b;
        in.reset();
        InputStream body = gzip ? new GZIPInputStream(in, 1 << 16) : in;
        TarArchiveInputStream tar = new TarArchiveInputStream(body);
        int members = 0;
        for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
            if (!e.isFile()) continue;
            Matcher m = MEMBER.matcher(e.getName());
            if (!m.matches() || !m.group(1).equals(m.group(3))) continue;
            Path split = Files.createDirectories(dir.resolve(m.group(1)));
            Files.copy(tar, split.resolve(m.group(2) + "_" + m.group(1) + ".csv"));
            members++;
        }
        // past the archive's end blocks to the end of the body, so that the length check counts every byte
        body.transferTo(OutputStream.nullOutputStream());
        in.transferTo(OutputStream.nullOutputStream());
        if (members == 0)
            throw new IllegalStateException("the archive from " + source + " has no dev/, val/ or test/ CSV files"
                    + " (expected the original MMLU release, data.tar with data/dev/*_dev.csv and data/test/*_test.csv)");
    }

    private static String fileName(URI source) {
        String path = source.getPath() == null ? "" : source.getPath();
        return path.substring(path.lastIndexOf('/') + 1);
    }

    private static void deleteRecursively(Path dir) {
        if (!Files.exists(dir)) return;
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot remove the temporary folder " + dir + ": " + e, e);
        }
    }

    /** Counts bytes read and reports them in KiB. */
    private static final class Counting extends FilterInputStream {
        private final Progress.Task task;
        long count;
        private long shownKib;

        Counting(InputStream in, Progress.Task task) {
            super(in);
            this.task = task;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0) advance(1);
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0) advance(n);
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            long s = super.skip(n);
            if (s > 0) advance(s);
            return s;
        }

        private void advance(long n) {
            count += n;
            long kib = count / 1024;
            if (kib > shownKib) {
                task.step(kib - shownKib);
                shownKib = kib;
            }
        }
    }
}
