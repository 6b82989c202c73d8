package lowbit.io.hub;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HubClientTest {
    @TempDir Path cache;
    FakeHub hub;

    static final byte[] CONFIG = "{\"model_type\": \"llama\"}".getBytes(StandardCharsets.UTF_8);
    static final byte[] TOKENIZER = "{\"model\": {}}".getBytes(StandardCharsets.UTF_8);
    static final byte[] WEIGHTS = random(300_000, 1);

    static byte[] random(int n, long seed) {
        byte[] b = new byte[n];
        new Random(seed).nextBytes(b);
        return b;
    }

    record Update(String file, long done, long total) {}

    final List<Update> updates = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        hub = new FakeHub();
        hub.repo("org/tiny").file("config.json", CONFIG).file("tokenizer.json", TOKENIZER)
                .file("README.md", "hello".getBytes(StandardCharsets.UTF_8)).file("model.safetensors", WEIGHTS);
    }

    @AfterEach
    void stop() {
        hub.close();
    }

    HubClient client(String token) {
        return new HubClient(hub.endpoint(), token);
    }

    Path download(String repo) {
        return client(null).download(repo, null, cache, (f, d, t) -> updates.add(new Update(f, d, t)));
    }

    List<String> partFiles() throws IOException {
        try (Stream<Path> s = Files.walk(cache)) {
            return s.map(Path::toString).filter(p -> p.endsWith(".part")).toList();
        }
    }

    long resolveRequests() {
        return hub.log.stream().filter(l -> l.contains("/resolve/")).count();
    }

    @Test
    void downloadsSnapshotFollowingTheRedirect() throws IOException {
        Path dir = download("org/tiny");
        assertEquals(cache.resolve("org--tiny").resolve("main"), dir);
        assertArrayEquals(CONFIG, Files.readAllBytes(dir.resolve("config.json")));
        assertArrayEquals(TOKENIZER, Files.readAllBytes(dir.resolve("tokenizer.json")));
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
        assertFalse(Files.exists(dir.resolve("README.md")), "only model files are fetched");
        assertEquals(List.of(), partFiles());
        assertTrue(hub.log.contains("GET /api/models/org/tiny/revision/main"), hub.log.toString());
        assertTrue(hub.log.contains("GET /storage/org/tiny/model.safetensors"), hub.log.toString());
        assertFalse(hub.log.stream().anyMatch(l -> l.contains("Auth:")), "no token was configured");
        Update last = updates.get(updates.size() - 1);
        assertEquals(new Update("model.safetensors", WEIGHTS.length, WEIGHTS.length), last);
        assertTrue(updates.stream().anyMatch(u -> u.file().equals("model.safetensors") && u.done() > 0 && u.done() < WEIGHTS.length),
                "intermediate progress for a 300 kB file: " + updates);
    }

    @Test
    void secondRunSkipsCompleteFiles() {
        download("org/tiny");
        long before = resolveRequests();
        download("org/tiny");
        assertEquals(before, resolveRequests(), hub.log.toString());
    }

    @Test
    void resumesFromPartFile() throws IOException {
        Path dir = Files.createDirectories(cache.resolve("org--tiny/main"));
        Files.write(dir.resolve("model.safetensors.part"), Arrays.copyOf(WEIGHTS, 100_000));
        download("org/tiny");
        assertTrue(hub.log.contains("GET /storage/org/tiny/model.safetensors Range:bytes=100000-"), hub.log.toString());
        assertEquals(WEIGHTS.length - 100_000, hub.storageBytesSent.get());
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
        assertEquals(List.of(), partFiles());
    }

    @Test
    void corruptPartFileFailsTheHashAndIsRemoved() throws IOException {
        Path dir = Files.createDirectories(cache.resolve("org--tiny/main"));
        byte[] garbage = Arrays.copyOf(WEIGHTS, 100_000);
        garbage[500] ^= 1;
        Files.write(dir.resolve("model.safetensors.part"), garbage);
        HubException e = assertThrows(HubException.class, () -> download("org/tiny"));
        assertTrue(e.getMessage().contains("sha256 mismatch") && e.getMessage().contains("/org/tiny/resolve/main/model.safetensors"),
                e.getMessage());
        assertFalse(Files.exists(dir.resolve("model.safetensors")));
        assertEquals(List.of(), partFiles());
        download("org/tiny"); // starts over and succeeds
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
    }

    @Test
    void advertisedHashMismatchIsRefused() throws IOException {
        FakeHub.Repo bad = hub.repo("org/corrupt").file("config.json", CONFIG).file("model.safetensors", WEIGHTS);
        bad.advertisedSha = "ab".repeat(32);
        HubException e = assertThrows(HubException.class, () -> download("org/corrupt"));
        assertTrue(e.getMessage().contains("expected " + "ab".repeat(32)), e.getMessage());
        assertFalse(Files.exists(cache.resolve("org--corrupt/main/model.safetensors")));
        assertEquals(List.of(), partFiles());
    }

    @Test
    void brokenTransferLeavesOnlyAPartFileThenResumes() throws IOException {
        FakeHub.Repo cut = hub.repo("org/cut").file("config.json", CONFIG).file("model.safetensors", WEIGHTS);
        cut.cutAfter = 120_000;
        HubException e = assertThrows(HubException.class, () -> download("org/cut"));
        assertTrue(e.getMessage().contains("model.safetensors") && e.getMessage().contains("run again"), e.getMessage());
        Path dir = cache.resolve("org--cut/main");
        assertFalse(Files.exists(dir.resolve("model.safetensors")), "an incomplete file must not look complete");
        assertTrue(Files.exists(dir.resolve("model.safetensors.part")));
        long kept = Files.size(dir.resolve("model.safetensors.part"));
        assertTrue(kept > 0 && kept <= 120_000, "kept " + kept);
        cut.cutAfter = -1;
        download("org/cut");
        assertTrue(hub.log.contains("GET /storage/org/cut/model.safetensors Range:bytes=" + kept + "-"), hub.log.toString());
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
    }

    @Test
    void shardedRepositoryWithHashesInTheListing() throws IOException {
        byte[] s1 = random(5000, 2), s2 = random(7000, 3);
        String index = "{\"metadata\":{},\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                + "\"b\":\"model-00002-of-00002.safetensors\",\"c\":\"model-00001-of-00002.safetensors\"}}";
        FakeHub.Repo repo = hub.repo("org/sharded").file("config.json", CONFIG)
                .file("model.safetensors.index.json", index.getBytes(StandardCharsets.UTF_8))
                .file("model-00001-of-00002.safetensors", s1).file("model-00002-of-00002.safetensors", s2);
        repo.lfsInListing = true;
        Path dir = download("org/sharded");
        assertArrayEquals(s1, Files.readAllBytes(dir.resolve("model-00001-of-00002.safetensors")));
        assertArrayEquals(s2, Files.readAllBytes(dir.resolve("model-00002-of-00002.safetensors")));
        assertTrue(Files.exists(dir.resolve("model.safetensors.index.json")));
    }

    @Test
    void completePartFileWithListedHashIsRenamedWithoutDownload() throws IOException {
        FakeHub.Repo repo = hub.repo("org/listed").file("config.json", CONFIG).file("model.safetensors", WEIGHTS);
        repo.lfsInListing = true;
        Path dir = Files.createDirectories(cache.resolve("org--listed/main"));
        Files.write(dir.resolve("model.safetensors.part"), WEIGHTS);
        download("org/listed");
        assertFalse(hub.log.stream().anyMatch(l -> l.contains("/storage/")), hub.log.toString());
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
        assertEquals(List.of(), partFiles());
    }

    @Test
    void indexNamingAnAbsentShardIsReported() {
        String index = "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\"}}";
        hub.repo("org/halfsharded").file("config.json", CONFIG).file("model.safetensors.index.json", index.getBytes(StandardCharsets.UTF_8));
        HubException e = assertThrows(HubException.class, () -> download("org/halfsharded"));
        assertTrue(e.getMessage().contains("model-00001-of-00002.safetensors") && e.getMessage().contains("does not have"), e.getMessage());
    }

    @Test
    void unknownRepositoryIs404WithTheUrl() {
        HubException e = assertThrows(HubException.class, () -> download("org/nothere"));
        assertEquals(404, e.status());
        assertTrue(e.getMessage().contains(hub.endpoint() + "/api/models/org/nothere/revision/main"), e.getMessage());
    }

    @Test
    void listedFileThatIs404() {
        hub.repo("org/tiny").listedButMissing.add("tokenizer_config.json");
        HubException e = assertThrows(HubException.class, () -> download("org/tiny"));
        assertEquals(404, e.status());
        assertTrue(e.getMessage().contains("/org/tiny/resolve/main/tokenizer_config.json"), e.getMessage());
    }

    @Test
    void repositoryWithoutSafetensorsIsRefused() {
        hub.repo("org/pt").file("config.json", CONFIG).file("pytorch_model.bin", new byte[10]);
        HubException e = assertThrows(HubException.class, () -> download("org/pt"));
        assertTrue(e.getMessage().contains("no model.safetensors") && e.getMessage().contains("pytorch_model.bin"), e.getMessage());
    }

    @Test
    void gatedRepositoryNeedsToken() throws IOException {
        hub.repo("org/gated").file("config.json", CONFIG).file("model.safetensors", WEIGHTS).token = "secret";
        HubException e = assertThrows(HubException.class, () -> download("org/gated"));
        assertEquals(401, e.status());
        assertTrue(e.getMessage().contains("HF_TOKEN") && e.getMessage().contains("gated"), e.getMessage());
        HubException wrong = assertThrows(HubException.class, () -> client("nope").download("org/gated", "main", cache, null));
        assertTrue(wrong.getMessage().contains("does not grant access"), wrong.getMessage());

        Path dir = client("secret").download("org/gated", "main", cache, null);
        assertArrayEquals(WEIGHTS, Files.readAllBytes(dir.resolve("model.safetensors")));
        assertTrue(hub.log.contains("GET /api/models/org/gated/revision/main Auth:Bearer secret"), hub.log.toString());
        assertFalse(hub.log.stream().anyMatch(l -> l.startsWith("ERROR")), hub.log.toString());
    }

    @Test
    void networkFailureNamesTheUrl() throws IOException {
        int port;
        try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            port = s.getLocalPort();
        }
        HubClient dead = new HubClient(URI.create("http://127.0.0.1:" + port + "/"), null);
        HubException e = assertThrows(HubException.class, () -> dead.download("org/tiny", "main", cache, null));
        assertTrue(e.getMessage().contains("cannot reach http://127.0.0.1:" + port + "/api/models/org/tiny/revision/main"), e.getMessage());
    }

    @Test
    void revisionsAndRepoIds() {
        assertEquals(cache.resolve("org--tiny/refs--pr--1"), HubClient.snapshotDir("org/tiny", "refs/pr/1", cache));
        assertEquals(cache.resolve("gpt2/main"), HubClient.snapshotDir("gpt2", null, cache));
        assertThrows(IllegalArgumentException.class, () -> HubClient.snapshotDir("../etc", "main", cache));
        assertThrows(IllegalArgumentException.class, () -> HubClient.snapshotDir("a/b/c", "main", cache));
        assertEquals("abc", HubClient.unquoteEtag("W/\"ABC\""));
    }
}
