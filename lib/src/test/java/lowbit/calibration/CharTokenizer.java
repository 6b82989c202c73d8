package lowbit.calibration;

import java.util.OptionalInt;
import lowbit.tokenizer.Tokenizer;

/** One token per char (id = the char's value), BOS = 0 in front when asked: token counts are string lengths + 1. */
final class CharTokenizer implements Tokenizer {
    static final int BOS = 0;

    @Override
    public int[] encode(String text) {
        return text.chars().toArray();
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id != BOS) sb.append((char) id);
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return 65536;
    }

    @Override
    public OptionalInt bosId() {
        return OptionalInt.of(BOS);
    }

    @Override
    public OptionalInt eosId() {
        return OptionalInt.empty();
    }

    @Override
    public boolean addsBos() {
        return true;
    }
}
