package lowbit.eval.tasks.mmlu;

import static org.junit.jupiter.api.Assertions.*;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import java.util.zip.GZIPOutputStream;
import lowbit.io.Hashing;
import lowbit.progress.Progress;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The download against a local HTTP server serving archives in the original release's layout, built here. */
class MmluDownloadTest {
    @TempDir Path dataRoot;
    HttpServer server;
    final List<String> requests = Collections.synchronizedList(new ArrayList<>());
    volatile byte[] body;
    volatile int status = 200;
    volatile int cutAfter = -1; // send the full Content-Length but stop after this many bytes

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", ex -> {
            try (ex) {
                requests.add(ex.getRequestMethod() + " " + ex.getRequestURI().getPath());
                if (ex.getRequestURI().getPath().equals("/moved/data.tar")) {
                    ex.getResponseHeaders().add("Location", "/~hendrycks/data.tar");
                    ex.sendResponseHeaders(301, -1);
                    return;
                }
                if (status != 200) {
                    ex.sendResponseHeaders(status, -1);
                    return;
                }
                ex.sendResponseHeaders(200, body.length);
                OutputStream out = ex.getResponseBody();
                out.write(body, 0, cutAfter >= 0 ? cutAfter : body.length);
                out.flush();
            }
        });
        server.start();
    }

    @AfterEach
    void stop() {
        server.stop(0);
    }

    URI url(String path) {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + path);
    }

    /** The release's layout: data/{dev,val,test}/{subject}_{split}.csv plus auxiliary_train, which is not kept. */
    static byte[] release(List<String> subjects, boolean gzip) throws IOException {
        return release(subjects, gzip, "Second,a,b,c,d,D\n");
    }

    static byte[] release(List<String> subjects, boolean gzip, String secondTestRow) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (OutputStream sink = gzip ? new GZIPOutputStream(bytes) : bytes;
             TarArchiveOutputStream tar = new TarArchiveOutputStream(sink)) {
            tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
            directory(tar, "data/");
            for (String split : List.of("dev", "val", "test")) directory(tar, "data/" + split + "/");
            for (String s : subjects) {
                StringBuilder dev = new StringBuilder();
                for (int i = 0; i < 5; i++) dev.append("Dev ").append(i).append(" of ").append(s).append("?,a,b,c,d,").append("ABCD".charAt(i % 4)).append('\n');
                file(tar, "data/dev/" + s + "_dev.csv", dev.toString());
                file(tar, "data/val/" + s + "_val.csv", "Val of " + s + "?,a,b,c,d,B\n");
                file(tar, "data/test/" + s + "_test.csv", "\"Test, of " + s + "?\",a,b,c,d,C\n" + secondTestRow);
            }
            file(tar, "data/auxiliary_train/race.csv", "Aux,a,b,c,d,A\n");
            file(tar, "data/README.txt", "not a subject\n");
            tar.finish();
        }
        return bytes.toByteArray();
    }

    static void directory(TarArchiveOutputStream tar, String name) throws IOException {
        tar.putArchiveEntry(new TarArchiveEntry(name));
        tar.closeArchiveEntry();
    }

    static void file(TarArchiveOutputStream tar, String name, String text) throws IOException {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setSize(b.length);
        tar.putArchiveEntry(e);
        tar.write(b);
        tar.closeArchiveEntry();
    }

    record Recorded(String name, long total, AtomicLong steps, boolean[] closed) {}

    final List<Recorded> tasks = new ArrayList<>();

    Progress recording() {
        return (name, total, unit) -> {
            Recorded r = new Recorded(name, total, new AtomicLong(), new boolean[1]);
            tasks.add(r);
            return new Progress.Task() {
                @Override
                public void step(long units) {
                    r.steps().addAndGet(units);
                }

                @Override
                public void close() {
                    r.closed()[0] = true;
                }
            };
        };
    }

    List<String> leftovers() throws IOException {
        try (Stream<Path> s = Files.list(dataRoot)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.startsWith(".mmlu")).toList();
        }
    }

    @Test
    void downloadsTheReleaseIntoMmluAndKeepsDevValTest() throws IOException {
        body = release(MmluSubjects.all(), false);
        MmluDownload.Result r = MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, recording());
        Path dir = dataRoot.resolve("mmlu");
        assertEquals(new MmluDownload.Result(dir, true, 57, 114), r);
        MmluData data = MmluData.load(dir);
        assertEquals(MmluSubjects.all(), data.subjects());
        assertEquals("Test, of virology?", data.items("virology").get(0).question());
        assertEquals(1, data.subject("anatomy").val().size());
        assertFalse(Files.exists(dir.resolve("auxiliary_train")));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of("dev", "source.json", "test", "val"), s.map(p -> p.getFileName().toString()).sorted().toList());
        }
        JsonNode source = new ObjectMapper().readTree(dir.resolve("source.json").toFile());
        assertEquals(url("/~hendrycks/data.tar").toString(), source.get("url").asText());
        assertEquals(body.length, source.get("bytes").asLong());
        assertEquals(Hashing.sha256(body), source.get("sha256").asText());
        assertEquals(List.of(), leftovers());
        assertTrue(MmluData.absence(dataRoot).isEmpty());

        assertEquals(1, tasks.size());
        assertEquals("MMLU data.tar", tasks.get(0).name());
        assertEquals((body.length + 1023) / 1024, tasks.get(0).total());
        assertEquals(body.length / 1024, tasks.get(0).steps().get());
        assertTrue(tasks.get(0).closed()[0]);

        MmluDownload.Result again = MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, recording());
        assertFalse(again.downloaded());
        assertEquals(114, again.testItems());
        assertEquals(List.of("GET /~hendrycks/data.tar"), requests, "a present copy is not fetched again");
    }

    @Test
    void followsRedirectsAndReadsAGzippedTar() throws IOException {
        body = release(MmluSubjects.all(), true);
        MmluDownload.Result r = MmluDownload.download(url("/moved/data.tar"), dataRoot, Progress.NONE);
        assertEquals(57, r.subjects());
        assertEquals(List.of("GET /moved/data.tar", "GET /~hendrycks/data.tar"), requests);
    }

    @Test
    void anHttpErrorLeavesNothingBehind() throws IOException {
        status = 404;
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertEquals("HTTP 404 for MMLU at " + url("/~hendrycks/data.tar"), e.getMessage());
        assertFalse(Files.exists(dataRoot.resolve("mmlu")));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void aBrokenOffDownloadLeavesNothingBehind() throws IOException {
        body = release(MmluSubjects.all(), false);
        cutAfter = body.length / 2;
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertTrue(e instanceof UncheckedIOException || e instanceof IllegalStateException, e.toString());
        assertTrue(e.getMessage().contains(url("/~hendrycks/data.tar").toString()), e.getMessage());
        assertFalse(Files.exists(dataRoot.resolve("mmlu")));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void anArchiveWithoutEverySubjectIsRefused() throws IOException {
        List<String> some = new ArrayList<>(MmluSubjects.all());
        some.removeAll(List.of("anatomy", "virology"));
        body = release(some, false);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertTrue(e.getMessage().startsWith("the archive from " + url("/~hendrycks/data.tar")
                + " lacks the test file of 2 MMLU subject(s): anatomy, virology"), e.getMessage());
        assertFalse(Files.exists(dataRoot.resolve("mmlu")));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void aDamagedFileInTheArchiveIsRefusedNamingTheArchive() throws IOException {
        body = release(MmluSubjects.all(), false, "Second,a,b,c,d,Z\n");
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertTrue(e.getMessage().startsWith("the archive from " + url("/~hendrycks/data.tar") + " has a damaged file, nothing"
                + " was written to " + dataRoot.resolve("mmlu") + ": "), e.getMessage());
        assertTrue(e.getMessage().endsWith("test/abstract_algebra_test.csv: line 2: answer \"Z\"; expected one of A, B, C, D"),
                e.getMessage());
        assertFalse(Files.exists(dataRoot.resolve("mmlu")));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void somethingElseThanTheReleaseIsRefused() throws IOException {
        body = "<html>not a tar</html>".repeat(100).getBytes(StandardCharsets.UTF_8);
        RuntimeException e = assertThrows(RuntimeException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertTrue(e.getMessage().contains(url("/~hendrycks/data.tar").toString()), e.getMessage());
        assertFalse(Files.exists(dataRoot.resolve("mmlu")));
        assertEquals(List.of(), leftovers());
    }

    @Test
    void anExistingFolderWithoutTestFilesIsNotOverwritten() throws IOException {
        Files.createDirectories(dataRoot.resolve("mmlu/dev"));
        body = release(MmluSubjects.all(), false);
        IllegalStateException e = assertThrows(IllegalStateException.class,
                () -> MmluDownload.download(url("/~hendrycks/data.tar"), dataRoot, Progress.NONE));
        assertEquals(dataRoot.resolve("mmlu") + " exists but has no test/*_test.csv; remove it and run ./lowbit download mmlu again",
                e.getMessage());
        assertEquals(List.of(), requests);
        assertTrue(Arrays.asList(dataRoot.resolve("mmlu").toFile().list()).contains("dev"));
    }
}
