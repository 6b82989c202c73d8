package lowbit.cli;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.eval.tasks.mmlu.MmluData;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DownloadCommandTest {
    @TempDir Path data;
    String savedDataDir;

    @AfterEach
    void restore() {
        if (savedDataDir == null) System.clearProperty("lowbit.data");
        else System.setProperty("lowbit.data", savedDataDir);
    }

    void useDataDir(Path dir) {
        savedDataDir = System.getProperty("lowbit.data");
        System.setProperty("lowbit.data", dir.toString());
    }

    @Test
    void anUnknownDataSetIsOneLineListingTheKnownOnes() {
        CliRun r = CliRun.of("download", "wikitext");
        assertEquals("lowbit: download: unknown data set 'wikitext' (known: mmlu; a model: --repo ORG/NAME)\n", r.err());
        assertEquals(2, r.exit());
    }

    @Test
    void aRepositoryAndADataSetTogetherAreRefused() {
        CliRun r = CliRun.of("download", "mmlu", "--repo", "org/x");
        assertEquals(2, r.exit());
        assertEquals("lowbit: download needs either --repo ORG/NAME (a model) or a data set: mmlu (./lowbit download --help)\n",
                r.err());
    }

    @Test
    void mmluAlreadyPresentIsNotFetchedAgain() throws IOException, URISyntaxException {
        Path fixture = Path.of(DownloadCommandTest.class.getResource("/mmlu/test").toURI()).getParent();
        for (String split : new String[] {"dev", "test"}) {
            Files.createDirectories(data.resolve("mmlu").resolve(split));
            try (var files = Files.list(fixture.resolve(split))) {
                for (Path f : files.toList()) Files.copy(f, data.resolve("mmlu").resolve(split).resolve(f.getFileName()));
            }
        }
        useDataDir(data);
        assertTrue(MmluData.absence(data).isEmpty());
        CliRun r = CliRun.of("download", "mmlu");
        assertEquals("", r.err());
        assertEquals(data.resolve("mmlu").toAbsolutePath() + " (already present): MMLU, 2 subjects, 6 test items\n", r.out());
        assertEquals(0, r.exit());
    }
}
