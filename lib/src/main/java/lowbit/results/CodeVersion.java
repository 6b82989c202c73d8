package lowbit.results;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** The code a result was computed with: git commit and whether the work tree had uncommitted changes. */
public record CodeVersion(String commit, boolean dirty) {
    private static CodeVersion current;

    public static synchronized CodeVersion current() {
        if (current == null) current = read();
        return current;
    }

    private static CodeVersion read() {
        Path root = Path.of(System.getProperty("lowbit.root", "."));
        String commit = git(root, "rev-parse", "HEAD");
        if (commit == null || commit.isBlank()) return new CodeVersion("unknown", true);
        String status = git(root, "status", "--porcelain", "--untracked-files=no");
        return new CodeVersion(commit.strip(), status == null || !status.isBlank());
    }

    private static String git(Path dir, String... args) {
        String[] cmd = new String[args.length + 3];
        cmd[0] = "git";
        cmd[1] = "-C";
        cmd[2] = dir.toString();
        System.arraycopy(args, 0, cmd, 3, args.length);
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) return null;
            return out;
        } catch (IOException e) {
            return null;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return null;
        }
    }

    @Override
    public String toString() {
        return commit + (dirty ? "-dirty" : "");
    }
}
