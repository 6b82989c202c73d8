package lowbit.eval;

import java.util.ArrayList;
import java.util.List;
import lowbit.model.Transformer;

/**
 * Scores continuations with the context computed once: one forward pass per request, the context's rows and every
 * continuation's rows batched through each linear, each continuation attending over the context's keys and values
 * and its own ({@link Transformer#continuationLogProbs(int[], List)}). The same log-probs as
 * {@link FullForwardScorer}, which runs context + continuation once per continuation, for the cost of the context
 * once per request instead of once per continuation.
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
        List<Scored> out = new ArrayList<>(continuations.size());
        for (Transformer.TokenLogProbs t : model.continuationLogProbs(context, continuations)) {
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
