package lowbit.io.hub;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeSet;
import java.util.regex.Pattern;
import lowbit.io.Hashing;

/**
 * Downloads the files of a model repository from a Hugging Face-compatible hub: the config, the
 * tokenizer files, and model.safetensors or model.safetensors.index.json with its shards.
 *
 * <p>Files land in {@code {cacheDir}/{org}--{name}/{revision}/}. Each is written to {@code NAME.part}
 * and renamed into place only once its size (and sha256, where the hub gives one) checks out, so a
 * file under its own name is always complete. An interrupted download resumes from its .part with an
 * HTTP Range request; a file already present with the listed size is not fetched again (nor re-hashed),
 * and one whose size the listing does not give is fetched again and replaced atomically.
 *
 * <p>Redirects are followed here rather than by HttpClient so that the token is sent only to the hub
 * itself, never to the storage host a large file redirects to, and so that the X-Linked-Etag the hub
 * puts on the redirect (the LFS sha256) is seen.
 */
public final class HubClient {
    public static final String DEFAULT_ENDPOINT = "https://huggingface.co";
    public static final String DEFAULT_REVISION = "main";
    /** Non-weight files fetched when the repository has them. */
    public static final List<String> SIDE_FILES = List.of("config.json", "generation_config.json", "tokenizer.json",
            "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model");

    private static final Pattern REPO_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?");
    private static final Pattern SHA256 = Pattern.compile("[0-9a-f]{64}");
    private static final int MAX_REDIRECTS = 10;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Progress of one file: bytes done out of total (-1 when unknown). */
    @FunctionalInterface
    public interface Progress {
        void update(String file, long done, long total);

        Progress NONE = (file, done, total) -> {};
    }

    /** A file as the hub lists it; size -1 and sha256 null when the listing does not say. */
    public record RemoteFile(String name, long size, String sha256) {}

    /** A successful answer and the redirects that led to it (the hub's own headers are on the first). */
    private record Answer(HttpResponse<InputStream> response, List<HttpResponse<?>> redirects) {}

    private final URI endpoint;
    private final String token;
    private final HttpClient http;

    public HubClient(URI endpoint, String token) {
        String e = endpoint.toString();
        this.endpoint = URI.create(e.endsWith("/") ? e.substring(0, e.length() - 1) : e);
        this.token = token == null || token.isBlank() ? null : token.strip();
        this.http = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NEVER)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
    }

    /** Endpoint from HF_ENDPOINT (default https://huggingface.co), token from HF_TOKEN. */
    public static HubClient fromEnvironment() {
        String endpoint = System.getenv("HF_ENDPOINT");
        return new HubClient(URI.create(endpoint == null || endpoint.isBlank() ? DEFAULT_ENDPOINT : endpoint.strip()),
                System.getenv("HF_TOKEN"));
    }

    /** Downloads (or completes) the snapshot with the environment's endpoint and token; returns its directory. */
    public static Path snapshot(String repoId, String revision, Path cacheDir, Progress progress) {
        return fromEnvironment().download(repoId, revision, cacheDir, progress);
    }

    /** The directory a snapshot of this repository and revision lives in. */
    public static Path snapshotDir(String repoId, String revision, Path cacheDir) {
        checkRepoId(repoId);
        return cacheDir.resolve(repoId.replace("/", "--")).resolve(revisionOrMain(revision).replace("/", "--"));
    }

    public Path download(String repoId, String revision, Path cacheDir, Progress progress) {
        checkRepoId(repoId);
        String rev = revisionOrMain(revision);
        Progress report = progress == null ? Progress.NONE : progress;
        Map<String, RemoteFile> listing = listFiles(repoId, rev);
        Path dir = snapshotDir(repoId, rev, cacheDir);
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new HubException(dir.toString(), "cannot create the snapshot directory " + dir + ": " + e, e);
        }
        for (String name : SIDE_FILES)
            if (listing.containsKey(name)) fetch(repoId, rev, listing.get(name), dir, report);
        if (listing.containsKey("model.safetensors")) {
            fetch(repoId, rev, listing.get("model.safetensors"), dir, report);
        } else if (listing.containsKey("model.safetensors.index.json")) {
            Path index = fetch(repoId, rev, listing.get("model.safetensors.index.json"), dir, report);
            for (String shard : shards(index)) {
                RemoteFile remote = listing.get(shard);
                if (remote == null)
                    throw new HubException(fileUrl(repoId, rev, shard), 0, "model.safetensors.index.json of " + repoId
                            + " names shard " + shard + ", which the repository does not have");
                fetch(repoId, rev, remote, dir, report);
            }
        } else {
            throw new HubException(listingUrl(repoId, rev), 0, repoId + " at " + rev + " has no model.safetensors or "
                    + "model.safetensors.index.json (repositories with only pytorch_model.bin are not supported); files: "
                    + listing.keySet());
        }
        return dir;
    }

    /** The repository's files at a revision, from {@code /api/models/{repo}/revision/{rev}?blobs=true}. */
    public Map<String, RemoteFile> listFiles(String repoId, String revision) {
        checkRepoId(repoId);
        String url = listingUrl(repoId, revisionOrMain(revision));
        HttpResponse<InputStream> response = send(url, null, "repository " + repoId).response();
        JsonNode root;
        try (InputStream body = response.body()) {
            root = JSON.readTree(body);
        } catch (IOException e) {
            throw new HubException(url, "cannot read the file listing from " + url + ": " + e, e);
        }
        JsonNode siblings = root == null ? null : root.get("siblings");
        if (siblings == null || !siblings.isArray())
            throw new HubException(url, 0, "the answer from " + url + " has no siblings list; is " + endpoint + " a Hugging Face hub?");
        Map<String, RemoteFile> files = new LinkedHashMap<>();
        for (JsonNode s : siblings) {
            String name = s.path("rfilename").asText("");
            if (name.isEmpty()) continue;
            JsonNode lfs = s.get("lfs");
            String sha = lfs != null && lfs.hasNonNull("sha256") ? lfs.get("sha256").asText().toLowerCase(Locale.ROOT) : null;
            long size = s.hasNonNull("size") ? s.get("size").asLong(-1) : lfs != null && lfs.hasNonNull("size") ? lfs.get("size").asLong(-1) : -1;
            files.put(name, new RemoteFile(name, size, sha != null && SHA256.matcher(sha).matches() ? sha : null));
        }
        return files;
    }

    private Path fetch(String repoId, String rev, RemoteFile remote, Path dir, Progress progress) {
        String name = remote.name();
        if (name.contains("..") || name.startsWith("/") || name.contains("\\") || name.contains("/"))
            throw new HubException(fileUrl(repoId, rev, name), 0, "refusing file name " + name + " outside the snapshot directory");
        Path dest = dir.resolve(name);
        Path part = dir.resolve(name + ".part");
        String url = fileUrl(repoId, rev, name);
        try {
            if (remote.size() >= 0 && Files.isRegularFile(dest) && Files.size(dest) == remote.size()) {
                progress.update(name, remote.size(), remote.size());
                return dest;
            }
            long have = Files.isRegularFile(part) ? Files.size(part) : 0;
            if (remote.size() >= 0 && have == remote.size() && remote.sha256() != null
                    && Hashing.sha256(part).equals(remote.sha256())) {
                // complete but never renamed (interrupted between the last byte and the rename)
                Files.move(part, dest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                progress.update(name, have, have);
                return dest;
            }
            if (remote.size() >= 0 && have >= remote.size()) {
                Files.delete(part);
                have = 0;
            }
            Answer answer;
            try {
                answer = send(url, have > 0 ? "bytes=" + have + "-" : null, name + " of " + repoId);
            } catch (HubException e) {
                if (e.status() != 416 || have == 0) throw e;
                Files.delete(part); // the server cannot resume from what we have: start over
                return fetch(repoId, rev, remote, dir, progress);
            }
            HttpResponse<InputStream> response = answer.response();
            boolean resumed = response.statusCode() == 206 && rangeStart(response) == have;
            if (!resumed) {
                if (response.statusCode() == 206) {
                    response.body().close();
                    Files.deleteIfExists(part);
                    return fetch(repoId, rev, remote, dir, progress);
                }
                have = 0;
            }
            long length = response.headers().firstValueAsLong("Content-Length").orElse(-1);
            long total = remote.size() >= 0 ? remote.size() : length >= 0 ? have + length : -1;
            String expectedSha = remote.sha256() != null ? remote.sha256() : linkedSha256(answer).orElse(null);

            MessageDigest md = Hashing.sha256();
            if (have > 0) try (InputStream old = Files.newInputStream(part)) {
                Hashing.update(md, old);
            }
            long done = have;
            progress.update(name, done, total);
            try (InputStream in = response.body();
                 OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
                         have > 0 ? StandardOpenOption.APPEND : StandardOpenOption.TRUNCATE_EXISTING)) {
                byte[] buffer = new byte[1 << 16];
                long lastReport = done;
                for (int n; (n = in.read(buffer)) > 0; ) {
                    out.write(buffer, 0, n);
                    md.update(buffer, 0, n);
                    done += n;
                    if (done - lastReport >= (1 << 16)) {
                        progress.update(name, done, total);
                        lastReport = done;
                    }
                }
            } catch (IOException e) {
                throw new HubException(url, "download of " + url + " broke off after " + done + " bytes (" + e
                        + "); run again to resume from " + part, e);
            }
            progress.update(name, done, total);
            if (total >= 0 && done != total) {
                if (done > total) Files.deleteIfExists(part);
                throw new HubException(url, 0, "download of " + url + " ended at " + done + " bytes, expected " + total
                        + (done < total ? "; run again to resume from " + part : "; the partial file was removed"));
            }
            if (expectedSha != null) {
                String actual = HexFormat.of().formatHex(md.digest());
                if (!actual.equals(expectedSha)) {
                    Files.deleteIfExists(part);
                    throw new HubException(url, 0, "sha256 mismatch for " + url + ": expected " + expectedSha + ", got "
                            + actual + "; the corrupt download was removed, run again");
                }
            }
            Files.move(part, dest, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return dest;
        } catch (IOException e) {
            throw new HubException(url, "cannot write " + part + " for " + url + ": " + e, e);
        }
    }

    /** GET with manual redirects; answers that are not 200/206 become HubExceptions. */
    private Answer send(String url, String range, String what) {
        URI uri = URI.create(url);
        List<HttpResponse<?>> chain = new ArrayList<>();
        for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
            HttpRequest.Builder request = HttpRequest.newBuilder(uri).GET().header("User-Agent", "lowbit");
            if (range != null) request.header("Range", range);
            if (token != null && sameOrigin(uri, endpoint)) request.header("Authorization", "Bearer " + token);
            HttpResponse<InputStream> response;
            try {
                response = http.send(request.build(), HttpResponse.BodyHandlers.ofInputStream());
            } catch (IOException e) {
                throw new HubException(uri.toString(), "cannot reach " + uri + ": " + e, e);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new HubException(uri.toString(), "interrupted while fetching " + uri, e);
            }
            int status = response.statusCode();
            if (status == 200 || status == 206) return new Answer(response, chain);
            closeQuietly(response);
            if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
                Optional<String> location = response.headers().firstValue("Location");
                if (location.isEmpty()) throw new HubException(uri.toString(), status, "redirect without Location from " + uri);
                chain.add(response);
                uri = uri.resolve(location.get());
                continue;
            }
            throw switch (status) {
                case 401, 403 -> new HubException(uri.toString(), status, "access to " + what + " denied (HTTP " + status + ") at " + uri
                        + (token == null ? "; the repository may be gated or private: accept its terms on the hub and set HF_TOKEN"
                                : "; HF_TOKEN was sent but does not grant access (gated repository not accepted, or wrong token)"));
                case 404 -> new HubException(uri.toString(), status, "not found (HTTP 404): " + what + " at " + uri
                        + " (check the repository id and revision; private repositories also answer 404 without HF_TOKEN)");
                case 416 -> new HubException(uri.toString(), status, "the server refused to resume " + what + " (HTTP 416) at " + uri);
                default -> new HubException(uri.toString(), status, "HTTP " + status + " for " + what + " at " + uri);
            };
        }
        throw new HubException(url, 0, "more than " + MAX_REDIRECTS + " redirects fetching " + url);
    }

    /** The LFS sha256 from X-Linked-Etag or ETag, on the answer or any redirect before it, when it has that form. */
    private static Optional<String> linkedSha256(Answer answer) {
        List<HttpResponse<?>> all = new ArrayList<>(answer.redirects());
        all.add(answer.response());
        for (HttpResponse<?> r : all)
            for (String header : List.of("X-Linked-Etag", "ETag")) {
                Optional<String> v = r.headers().firstValue(header).map(HubClient::unquoteEtag);
                if (v.isPresent() && SHA256.matcher(v.get()).matches()) return v;
            }
        return Optional.empty();
    }

    static String unquoteEtag(String etag) {
        String e = etag.strip();
        if (e.startsWith("W/")) e = e.substring(2);
        if (e.length() >= 2 && e.startsWith("\"") && e.endsWith("\"")) e = e.substring(1, e.length() - 1);
        return e.toLowerCase(Locale.ROOT);
    }

    /** Start of a 206 answer's Content-Range ("bytes START-END/TOTAL"), or -1. */
    private static long rangeStart(HttpResponse<?> response) {
        Optional<String> range = response.headers().firstValue("Content-Range");
        if (range.isEmpty() || !range.get().startsWith("bytes ")) return -1;
        String spec = range.get().substring(6);
        int dash = spec.indexOf('-');
        try {
            return dash > 0 ? Long.parseLong(spec.substring(0, dash).strip()) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static List<String> shards(Path index) {
        JsonNode map;
        try {
            map = JSON.readTree(index.toFile()).get("weight_map");
        } catch (IOException e) {
            throw new HubException(index.toString(), "downloaded " + index + " is not valid JSON: " + e, e);
        }
        if (map == null || !map.isObject())
            throw new HubException(index.toString(), 0, "downloaded " + index + " has no weight_map");
        TreeSet<String> shards = new TreeSet<>();
        map.forEach(v -> shards.add(v.asText()));
        return List.copyOf(shards);
    }

    private static boolean sameOrigin(URI a, URI b) {
        return a.getScheme().equalsIgnoreCase(b.getScheme()) && a.getHost().equalsIgnoreCase(b.getHost()) && port(a) == port(b);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : u.getScheme().equalsIgnoreCase("https") ? 443 : 80;
    }

    private static void closeQuietly(HttpResponse<InputStream> response) {
        try {
            response.body().close();
        } catch (IOException ignored) {
            // the answer is discarded anyway
        }
    }

    private String listingUrl(String repoId, String rev) {
        return endpoint + "/api/models/" + repoId + "/revision/" + encode(rev) + "?blobs=true";
    }

    private String fileUrl(String repoId, String rev, String file) {
        return endpoint + "/" + repoId + "/resolve/" + encode(rev) + "/" + encode(file);
    }

    private static String encode(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    private static String revisionOrMain(String revision) {
        return revision == null || revision.isBlank() ? DEFAULT_REVISION : revision;
    }

    private static void checkRepoId(String repoId) {
        if (repoId == null || !REPO_ID.matcher(repoId).matches() || repoId.contains(".."))
            throw new IllegalArgumentException("not a repository id: " + repoId + " (expected ORG/NAME, e.g. HuggingFaceTB/SmolLM2-135M)");
    }
}
