package lowbit.calibration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import lowbit.io.DataDir;
import org.junit.jupiter.api.Test;

class DocumentsTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void taskExamplesReadAsTheirAnsweredText() throws Exception {
        assertEquals("Question: Why? Answer: because",
                Documents.taskText(JSON.readTree("{\"query\":\"Question: Why? Answer:\",\"choices\":[\"no\",\"because\"],\"gold\":1}")));
        assertEquals("Sarah was better so Maria always got the easier cases.", Documents.taskText(JSON.readTree(
                "{\"context_options\":[\"Sarah was better so Sarah\",\"Sarah was better so Maria\"],\"continuation\":\"always got the easier cases.\",\"gold\":1}")));
        assertEquals("he looked at the signs", Documents.taskText(JSON.readTree("{\"context\":\"he looked at the\",\"continuation\":\"signs\"}")));
        assertThrows(IllegalArgumentException.class, () -> Documents.taskText(JSON.readTree("{\"text\":\"x\"}")));
    }

    @Test
    void taskSourcesFromTheDataDirectory() {
        assumeTrue(Files.isDirectory(DataDir.root().resolve("tasks")), "no task files in the data directory");
        Documents lambada = Documents.load("tasks:lambada_openai");
        assertEquals(5153, lambada.size(), "one document per LAMBADA example");
        assertEquals("tasks:lambada_openai", lambada.name());
        Documents all = Documents.load("tasks");
        assertEquals(1172 + 2376 + 3270 + 5153 + 1838 + 1267, all.size());
        assertTrue(all.texts().contains(lambada.texts().get(0)));
        assertEquals(64, all.sha256().length());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Documents.load("tasks:mmlu"));
        assertTrue(e.getMessage().contains("tasks:mmlu") && e.getMessage().contains("lambada_openai"), e.getMessage());
    }
}
