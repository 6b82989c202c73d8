package lowbit.tokenizer;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import lowbit.io.FormatException;

/**
 * llama2.c's tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, bytes.
 * The file is an export of a sentencepiece BPE model ('▁' written as ' ', BOS/EOS as "\n<s>\n"/"\n</s>\n"),
 * so it is encoded here the way sentencepiece encodes, not the way llama2.c's run.c does: run.c does not
 * apply sentencepiece's default normalization (leading/trailing spaces dropped, runs of spaces made one)
 * and adds its dummy-prefix token even to text that starts with a space.
 */
final class Llama2cVocab {
    private Llama2cVocab() {}

    static Tokenizer read(Path file, int vocabSize) {
        byte[] data;
        try {
            data = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new FormatException(file, "not readable: " + e.getMessage(), e);
        }
        if (vocabSize <= 0) throw new FormatException(file, "vocabulary size " + vocabSize + " must be positive");
        ByteBuffer buf = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
        if (buf.remaining() < 4) throw new FormatException(file, "too short for a llama2.c tokenizer (no max_token_length)");
        int maxLen = buf.getInt();
        String[] pieces = new String[vocabSize];
        float[] scores = new float[vocabSize];
        int[] types = new int[vocabSize];
        Map<String, Integer> vocab = new HashMap<>(vocabSize * 2);
        for (int i = 0; i < vocabSize; i++) {
            if (buf.remaining() < 8) throw new FormatException(file, "ends at token " + i + " of " + vocabSize + " (vocabulary size too large for this file?)");
            scores[i] = buf.getFloat();
            int len = buf.getInt();
            if (len < 0 || len > buf.remaining() || len > Math.max(maxLen, 64))
                throw new FormatException(file, "token " + i + " has length " + len + " (max_token_length " + maxLen + ", " + buf.remaining() + " bytes left)");
            byte[] b = new byte[len];
            buf.get(b);
            String s = new String(b, StandardCharsets.UTF_8);
            if (s.equals("\n<s>\n") || s.equals("\n</s>\n")) {
                s = s.strip();
                types[i] = SentencePieceVocab.CONTROL;
            } else if (i == 0 && s.equals("<unk>")) {
                types[i] = SentencePieceVocab.UNKNOWN;
            } else if (Decoder.byteToken(s) >= 0) {
                types[i] = SentencePieceVocab.BYTE;
            } else {
                s = s.replace(' ', SentencePieceVocab.META);
                types[i] = SentencePieceVocab.NORMAL;
            }
            pieces[i] = s;
            vocab.putIfAbsent(s, i);
        }
        var b = new BpeTokenizer.Builder();
        b.pieces = pieces;
        b.vocab = vocab;
        b.merges = SentencePieceVocab.scoreTable(pieces, scores, types, vocab);
        b.byteIds = HfTokenizerLoader.byteIds(file, vocab);
        b.unkId = 0;
        // llama2.c hard-codes BOS 1 and EOS 2 (sentencepiece's defaults)
        b.bos = 1;
        b.eos = 2;
        b.addsBos = true;
        b.normalizer = SentencePieceVocab.sentencepieceNormalizer(true, true);
        b.decoder = SentencePieceVocab.decoder(true);
        return b.build();
    }
}
