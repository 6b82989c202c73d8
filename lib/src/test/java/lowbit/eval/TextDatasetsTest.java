package lowbit.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.io.FormatException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TextDatasetsTest {
    @Test
    void c4DocumentsJoinWithOneSpace(@TempDir Path tmp) throws Exception {
        Path f = Files.writeString(tmp.resolve("c4.jsonl"), "{\"text\": \"one two\"}\n\n{\"text\": \"three\"}\n");
        assertEquals("one two three", TextDatasets.joinC4(f));
    }

    @Test
    void badJsonLineIsNamedByItsLineInTheFileAndItsColumn(@TempDir Path tmp) throws Exception {
        // the "}" that should have been a field name is the 14th character of the third line
        Path f = Files.writeString(tmp.resolve("c4.jsonl"), "{\"text\": \"a\"}\n\n{\"text\": \"b\",}\n");
        FormatException e = assertThrows(FormatException.class, () -> TextDatasets.joinC4(f));
        assertEquals(f + ": line 3, column 14: not JSON: Unexpected character ('}' (code 125)): "
                + "was expecting double-quote to start field name", e.getMessage());
    }
}
