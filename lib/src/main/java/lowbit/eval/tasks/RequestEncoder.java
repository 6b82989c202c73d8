package lowbit.eval.tasks;

import java.util.Arrays;
import lowbit.tokenizer.Tokenizer;

/**
 * Tokens of a request exactly as lm-eval's Hugging Face backend makes them (api/model.py _encode_pair,
 * models/huggingface.py loglikelihood and _loglikelihood_tokens): trailing white space of the context moves to the
 * front of the continuation; the whole string and the context are encoded (with the tokenizer's default special
 * tokens, as HFLM does when add_bos_token is not set), and the continuation is the whole's tokens past the context's;
 * an empty context becomes the prefix token (BOS, else EOS); a pair longer than the model's context loses tokens
 * from the left until the model's input (all but the last token) fits.
 */
public final class RequestEncoder {
    private final Tokenizer tokenizer;
    private final int maxLength;

    /**
     * @param maxLength the model's context in tokens (HFLM's max_length: the config's max_position_embeddings)
     */
    public RequestEncoder(Tokenizer tokenizer, int maxLength) {
        if (maxLength < 2) throw new IllegalArgumentException("a model context of " + maxLength + " tokens cannot score a continuation");
        this.tokenizer = tokenizer;
        this.maxLength = maxLength;
    }

    /**
     * @param context      the tokens scored against (at least one)
     * @param continuation the tokens whose log-likelihood is summed
     * @param truncated    tokens dropped from the left of the context to fit the model (0 when it fitted)
     */
    public record Encoded(int[] context, int[] continuation, int truncated) {}

    public Encoded encode(Request r) {
        int[] ctx, cont;
        if (r.context().isEmpty()) {
            ctx = new int[] {prefixToken()};
            cont = encodeString(r.continuation());
        } else {
            String context = r.context(), continuation = r.continuation();
            int keep = context.length();
            while (keep > 0 && Character.isWhitespace(context.charAt(keep - 1))) keep--;
            continuation = context.substring(keep) + continuation;
            context = context.substring(0, keep);
            int[] whole = encodeString(context + continuation);
            ctx = encodeString(context);
            cont = Arrays.copyOfRange(whole, Math.min(ctx.length, whole.length), whole.length);
        }
        if (cont.length == 0)
            throw new IllegalArgumentException("the continuation '" + r.continuation() + "' encodes to no tokens past its context");
        if (cont.length > maxLength)
            throw new IllegalArgumentException("a continuation of " + cont.length + " tokens is longer than the model's context of " + maxLength);
        // lm-eval keeps the last max_length + 1 tokens of context + continuation and feeds all but the last
        int excess = ctx.length + cont.length - (maxLength + 1);
        if (excess > 0) {
            int drop = Math.min(excess, ctx.length - 1);
            return new Encoded(Arrays.copyOfRange(ctx, drop, ctx.length), cont, drop);
        }
        return new Encoded(ctx, cont, 0);
    }

    /** What lm-eval's tok_encode gives: the tokenizer's default special tokens, none when the text already starts with BOS. */
    private int[] encodeString(String s) {
        if (tokenizer.addsBos() && tokenizer.bosId().isPresent()) {
            String bos = tokenizer.decode(new int[] {tokenizer.bosId().getAsInt()});
            if (!bos.isEmpty() && s.startsWith(bos)) return tokenizer.encode(s);
        }
        return tokenizer.encodeWithSpecials(s);
    }

    /** HFLM's prefix_token_id: BOS when the tokenizer has one, else EOS. */
    int prefixToken() {
        if (tokenizer.bosId().isPresent()) return tokenizer.bosId().getAsInt();
        if (tokenizer.eosId().isPresent()) return tokenizer.eosId().getAsInt();
        throw new IllegalArgumentException("the tokenizer has neither BOS nor EOS to stand for an empty context");
    }

    public int maxLength() {
        return maxLength;
    }
}
