package lowbit.eval.tasks.mmlu;

import com.univocity.parsers.common.TextParsingException;
import com.univocity.parsers.csv.CsvParser;
import com.univocity.parsers.csv.CsvParserSettings;
import com.univocity.parsers.csv.UnescapedQuoteHandling;
import java.io.IOException;
import java.io.StringReader;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import lowbit.io.FormatException;

/**
 * Reads one file of the original MMLU release: RFC 4180 CSV, UTF-8, no header, rows
 * {@code question,A,B,C,D,answer}. The text is kept as Python's {@code csv.reader} gives it to the dataset
 * lm-eval loads (no trimming, newlines inside quoted fields kept as they are), because the prompt is built from
 * it verbatim. Stricter than Python where Python would silently accept damage: a row that is not six fields, an
 * answer that is not A..D, or a quote that does not close before text continues is an error naming the line.
 */
final class MmluCsv {
    private static final int FIELDS = 6;

    private MmluCsv() {}

    static List<MmluItem> read(Path file, String subject) {
        String text = decode(file);
        CsvParserSettings settings = new CsvParserSettings();
        settings.setLineSeparatorDetectionEnabled(true); // the release's files end lines with \n; accept \r\n too
        settings.setNormalizeLineEndingsWithinQuotes(false);
        settings.setIgnoreLeadingWhitespaces(false);
        settings.setIgnoreTrailingWhitespaces(false);
        settings.setIgnoreLeadingWhitespacesInQuotes(false);
        settings.setIgnoreTrailingWhitespacesInQuotes(false);
        settings.setNullValue("");
        settings.setEmptyValue("");
        settings.setSkipEmptyLines(false);
        settings.setMaxCharsPerColumn(-1);
        settings.setMaxColumns(1024);
        settings.setUnescapedQuoteHandling(UnescapedQuoteHandling.RAISE_ERROR);
        settings.setCommentProcessingEnabled(false);
        CsvParser parser = new CsvParser(settings);
        List<MmluItem> items = new ArrayList<>();
        // the parser's own line counter does not count line breaks inside quoted fields of \r\n files, so a row's
        // line is counted here from the character offset where it starts
        int rowStart = 0;
        int line = 1;
        try {
            parser.beginParsing(new StringReader(text));
            for (String[] row; (row = parser.parseNext()) != null; ) {
                items.add(item(file, subject, line, row));
                int rowEnd = (int) Math.min(text.length(), parser.getContext().currentChar());
                line += lineBreaks(text, rowStart, rowEnd);
                rowStart = rowEnd;
            }
        } catch (TextParsingException e) {
            throw new FormatException(file, "line " + (e.getLineIndex() + 1) + ": not valid CSV (" + firstLine(e.getMessage())
                    + "); expected RFC 4180 rows question,A,B,C,D,answer with \" doubled inside quoted fields");
        } finally {
            parser.stopParsing();
        }
        return items;
    }

    private static MmluItem item(Path file, String subject, int line, String[] row) {
        if (row.length == 1 && row[0].isEmpty())
            throw new FormatException(file, "line " + line + ": empty line; expected a row question,A,B,C,D,answer");
        if (row.length != FIELDS)
            throw new FormatException(file, "line " + line + ": " + row.length + " fields; expected 6 (question,A,B,C,D,answer)");
        int gold = MmluPrompt.LETTERS.indexOf(row[5]);
        if (gold < 0)
            throw new FormatException(file, "line " + line + ": answer \"" + row[5] + "\"; expected one of A, B, C, D");
        return new MmluItem(subject, row[0], List.of(row[1], row[2], row[3], row[4]), gold, line);
    }

    /** Line breaks (\n, \r\n or a lone \r, as Python counts them) in text[from, to). */
    private static int lineBreaks(String text, int from, int to) {
        int n = 0;
        for (int i = from; i < to; i++) {
            char c = text.charAt(i);
            if (c == '\n' || (c == '\r' && (i + 1 >= text.length() || text.charAt(i + 1) != '\n'))) n++;
        }
        return n;
    }

    private static String decode(Path file) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(Files.readAllBytes(file)))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new FormatException(file, "not UTF-8 text (" + e + ")");
        } catch (IOException e) {
            throw new FormatException(file, "cannot read: " + e, e);
        }
    }

    private static String firstLine(String message) {
        if (message == null) return "parse error";
        String first = message.strip().lines().findFirst().orElse("parse error");
        return first.replace("com.univocity.parsers.common.TextParsingException - ", "");
    }
}
