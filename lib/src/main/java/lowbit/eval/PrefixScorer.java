package lowbit.eval;

import java.util.ArrayList;
import java.util.List;
import lowbit.model.Transformer;

/**
 * Scores continuations with the context computed once: its keys and values are kept ({@link Transformer#prefix})
 * and every continuation of the request is run after them in one batched pass
 * ({@link Transformer#continuationLogProbs}). The same log-probs as {@link FullForwardScorer}, which runs
 * context + continuation once per continuation, at the cost of the context once per request instead.
 */
public final class PrefixScorer implements ContinuationScorer {
    private final Transformer model;

    public PrefixScorer(Transformer model) {
        this.model = model;
    }

    @Override
    public List<Scored> score(int[] context, List<int[]> continuations) {
        if (context.length == 0) throw new IllegalArgumentException("an empty context: lm-eval scores it after the prefix token");
        for (int c = 0; c < continuations.size(); c++)
            if (continuations.get(c).length == 0)
                throw new IllegalArgumentException("continuation " + c + " is empty: it has no tokens to score");
        if (continuations.isEmpty()) return List.of();
        Transformer.Prefix prefix = model.prefix(context);
        List<Scored> out = new ArrayList<>(continuations.size());
        for (Transformer.TokenLogProbs t : model.continuationLogProbs(prefix, continuations)) {
            double[] lp = new double[t.logProbs().length];
            boolean greedy = true;
            for (int i = 0; i < lp.length; i++) {
                lp[i] = t.logProbs()[i];
                greedy &= t.argmax()[i];
            }
            out.add(new Scored(lp, greedy));
        }
        return out;
    }
}
