package lowbit.tokenizer;

import java.util.OptionalInt;

/** Text to token ids and back, token for token as the model's reference (transformers) tokenizer does it. */
public interface Tokenizer {
    /** Ids of the text alone, no special tokens added. */
    int[] encode(String text);

    String decode(int[] ids);

    int vocabSize();

    OptionalInt bosId();

    OptionalInt eosId();

    /** Whether the reference tokenizer puts BOS in front when asked to add special tokens (Llama: yes, GPT-2 BPE: no, OPT: yes). */
    boolean addsBos();

    /** What the reference gives for tokenizer(text).input_ids: BOS first where {@link #addsBos()}. */
    default int[] encodeWithSpecials(String text) {
        int[] ids = encode(text);
        if (!addsBos() || bosId().isEmpty()) return ids;
        int[] out = new int[ids.length + 1];
        out[0] = bosId().getAsInt();
        System.arraycopy(ids, 0, out, 1, ids.length);
        return out;
    }
}
