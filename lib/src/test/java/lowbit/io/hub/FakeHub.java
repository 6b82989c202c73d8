package lowbit.io.hub;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import lowbit.io.Hashing;

/**
 * A hub-shaped HTTP server on 127.0.0.1: the model-info API and resolve URLs, where .safetensors files
 * redirect to a storage path with the LFS sha256 in X-Linked-Etag, as huggingface.co does.
 */
final class FakeHub implements AutoCloseable {
    static final class Repo {
        final Map<String, byte[]> files = new LinkedHashMap<>();
        final List<String> listedButMissing = new ArrayList<>();
        String token;              // required Bearer token, or null for a public repo
        boolean lfsInListing;      // put lfs.sha256 in the listing (else only X-Linked-Etag tells it)
        String advertisedSha;      // a wrong sha256 to advertise for every LFS file
        long cutAfter = -1;        // storage answers stop after this many bytes

        Repo file(String name, byte[] content) {
            files.put(name, content);
            return this;
        }
    }

    final Map<String, Repo> repos = new LinkedHashMap<>();
    final List<String> log = Collections.synchronizedList(new ArrayList<>());
    final AtomicLong storageBytesSent = new AtomicLong();
    private final HttpServer server;

    FakeHub() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    URI endpoint() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    /** Large files redirect to another origin (as to a CDN), still on the loopback interface. */
    String storageOrigin() {
        return "http://localhost:" + server.getAddress().getPort();
    }

    Repo repo(String id) {
        return repos.computeIfAbsent(id, k -> new Repo());
    }

    static boolean isLfs(String name) {
        return name.endsWith(".safetensors");
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            String range = ex.getRequestHeaders().getFirst("Range");
            log.add(ex.getRequestMethod() + " " + path + (range != null ? " Range:" + range : "") + (auth != null ? " Auth:" + auth : ""));
            String[] p = path.split("/");
            if (path.startsWith("/api/models/") && p.length == 7 && p[5].equals("revision")) {
                Repo repo = repos.get(p[3] + "/" + p[4]);
                if (repo == null) {
                    send(ex, 404, "Repository not found".getBytes(StandardCharsets.UTF_8), Map.of());
                    return;
                }
                if (!authorised(repo, auth, ex)) return;
                send(ex, 200, listing(repo).getBytes(StandardCharsets.UTF_8), Map.of());
            } else if (p.length == 6 && p[3].equals("resolve")) {
                Repo repo = repos.get(p[1] + "/" + p[2]);
                if (repo == null) {
                    send(ex, 404, "Repository not found".getBytes(StandardCharsets.UTF_8), Map.of());
                    return;
                }
                if (!authorised(repo, auth, ex)) return;
                String name = p[5];
                byte[] content = repo.files.get(name);
                if (content == null) {
                    send(ex, 404, "Entry not found".getBytes(StandardCharsets.UTF_8), Map.of());
                } else if (isLfs(name)) {
                    String sha = repo.advertisedSha != null ? repo.advertisedSha : Hashing.sha256(content);
                    send(ex, 302, new byte[0], Map.of("Location", storageOrigin() + "/storage/" + p[1] + "/" + p[2] + "/" + name,
                            "X-Linked-Etag", "\"" + sha + "\"", "X-Linked-Size", Long.toString(content.length)));
                } else {
                    // git blob ids are 40 hex digits: must not be taken for a sha256
                    send(ex, 200, content, Map.of("ETag", "\"" + Hashing.sha256(content).substring(0, 40) + "\""));
                }
            } else if (p.length == 5 && p[1].equals("storage")) {
                Repo repo = repos.get(p[2] + "/" + p[3]);
                byte[] content = repo == null ? null : repo.files.get(p[4]);
                if (content == null) {
                    send(ex, 404, new byte[0], Map.of());
                    return;
                }
                if (auth != null) throw new IllegalStateException("token leaked to the storage host");
                int from = range != null && range.startsWith("bytes=") ? Integer.parseInt(range.substring(6, range.length() - 1)) : 0;
                if (from >= content.length) {
                    send(ex, 416, new byte[0], Map.of());
                    return;
                }
                int length = content.length - from;
                ex.getResponseHeaders().add("Content-Type", "application/octet-stream");
                if (from > 0) ex.getResponseHeaders().add("Content-Range", "bytes " + from + "-" + (content.length - 1) + "/" + content.length);
                ex.sendResponseHeaders(from > 0 ? 206 : 200, length);
                OutputStream out = ex.getResponseBody();
                int sent = repo.cutAfter >= 0 ? (int) Math.min(repo.cutAfter, length) : length;
                // Counted before writing: the client may have read every byte, and the test asserted, before
                // this handler thread gets past flush().
                storageBytesSent.addAndGet(sent);
                out.write(content, from, sent);
                out.flush();
            } else {
                send(ex, 404, new byte[0], Map.of());
            }
        } catch (RuntimeException e) {
            log.add("ERROR " + e.getMessage());
            throw e;
        }
    }

    private boolean authorised(Repo repo, String auth, HttpExchange ex) throws IOException {
        if (repo.token == null || ("Bearer " + repo.token).equals(auth)) return true;
        send(ex, 401, "Access to model is restricted".getBytes(StandardCharsets.UTF_8), Map.of());
        return false;
    }

    private static String listing(Repo repo) {
        StringBuilder s = new StringBuilder("{\"id\":\"x\",\"sha\":\"0123\",\"siblings\":[");
        String sep = "";
        for (var e : repo.files.entrySet()) {
            s.append(sep).append("{\"rfilename\":\"").append(e.getKey()).append("\",\"size\":").append(e.getValue().length);
            if (repo.lfsInListing && isLfs(e.getKey()))
                s.append(",\"lfs\":{\"sha256\":\"").append(Hashing.sha256(e.getValue())).append("\",\"size\":")
                        .append(e.getValue().length).append(",\"pointerSize\":134}");
            s.append('}');
            sep = ",";
        }
        for (String missing : repo.listedButMissing) s.append(sep).append("{\"rfilename\":\"").append(missing).append("\"}");
        return s.append("]}").toString();
    }

    private static void send(HttpExchange ex, int status, byte[] body, Map<String, String> headers) throws IOException {
        headers.forEach((k, v) -> ex.getResponseHeaders().add(k, v));
        ex.sendResponseHeaders(status, body.length == 0 ? -1 : body.length);
        if (body.length > 0) ex.getResponseBody().write(body);
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
