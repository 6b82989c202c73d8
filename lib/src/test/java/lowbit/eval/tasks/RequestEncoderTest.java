package lowbit.eval.tasks;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import lowbit.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

/** lm-eval's _encode_pair and left truncation, worked by hand on a toy tokenizer. */
class RequestEncoderTest {
    /** One token per character (its code), except that " y" is one token (1000), so a boundary merge shows. */
    static final class Toy implements Tokenizer {
        private final boolean bos;

        Toy(boolean bos) {
            this.bos = bos;
        }

        @Override
        public int[] encode(String text) {
            List<Integer> out = new ArrayList<>();
            for (int i = 0; i < text.length(); i++) {
                if (text.startsWith(" y", i)) {
                    out.add(1000);
                    i++;
                } else out.add((int) text.charAt(i));
            }
            return out.stream().mapToInt(Integer::intValue).toArray();
        }

        @Override
        public String decode(int[] ids) {
            StringBuilder b = new StringBuilder();
            for (int id : ids) b.append(id == 1000 ? " y" : id == 1 ? "<s>" : String.valueOf((char) id));
            return b.toString();
        }

        @Override
        public int vocabSize() {
            return 1001;
        }

        @Override
        public OptionalInt bosId() {
            return bos ? OptionalInt.of(1) : OptionalInt.empty();
        }

        @Override
        public OptionalInt eosId() {
            return OptionalInt.of(2);
        }

        @Override
        public boolean addsBos() {
            return bos;
        }
    }

    @Test
    void trailingSpaceOfTheContextMovesToTheContinuation() {
        RequestEncoder enc = new RequestEncoder(new Toy(false), 100);
        // "A: " + "yes" -> context "A:", continuation " yes"; " y" merges, so splitting the strings apart would differ
        RequestEncoder.Encoded e = enc.encode(new Request("A: ", "yes"));
        assertArrayEquals(new int[] {'A', ':'}, e.context());
        assertArrayEquals(new int[] {1000, 'e', 's'}, e.continuation());
        assertEquals(0, e.truncated());
    }

    @Test
    void continuationIsTheWholeMinusTheContextsTokens() {
        RequestEncoder enc = new RequestEncoder(new Toy(true), 100);
        // with BOS added by the tokenizer (a Llama-style one), both encodings start with it and only the context keeps it
        RequestEncoder.Encoded e = enc.encode(new Request("Q", " yes"));
        assertArrayEquals(new int[] {1, 'Q'}, e.context());
        assertArrayEquals(new int[] {1000, 'e', 's'}, e.continuation());
    }

    @Test
    void emptyContextBecomesThePrefixToken() {
        assertArrayEquals(new int[] {1}, new RequestEncoder(new Toy(true), 100).encode(new Request("", " yes")).context());
        assertArrayEquals(new int[] {2}, new RequestEncoder(new Toy(false), 100).encode(new Request("", "no")).context());
    }

    @Test
    void longPairsLoseContextFromTheLeftAndCountIt() {
        RequestEncoder enc = new RequestEncoder(new Toy(false), 4);
        // 5 context + 2 continuation tokens; lm-eval keeps the last max_length + 1 = 5: two context tokens go
        RequestEncoder.Encoded e = enc.encode(new Request("abcde", "fg"));
        assertArrayEquals(new int[] {'c', 'd', 'e'}, e.context());
        assertArrayEquals(new int[] {'f', 'g'}, e.continuation());
        assertEquals(2, e.truncated());
        assertThrows(IllegalArgumentException.class, () -> enc.encode(new Request("a", "fghij")));
    }
}
