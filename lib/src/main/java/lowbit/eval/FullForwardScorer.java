package lowbit.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;
import lowbit.model.Transformer;

/**
 * The plain way to score continuations, as lm-eval's Hugging Face backend does: one forward pass over context
 * and continuation (without its last token) per continuation. Slow, but it is the definition the faster
 * scorers are checked against.
 */
public final class FullForwardScorer implements ContinuationScorer {
    private final Function<int[], float[][]> logProbs;

    public FullForwardScorer(Transformer model) {
        this(model::logProbs);
    }

    /** With another forward pass giving {@link Transformer#logProbs(int[])}'s rows (the model's copy on the GPU). */
    public FullForwardScorer(Function<int[], float[][]> logProbs) {
        this.logProbs = logProbs;
    }

    @Override
    public List<Scored> score(int[] context, List<int[]> continuations) {
        if (context.length == 0) throw new IllegalArgumentException("an empty context: lm-eval scores it after the prefix token");
        List<Scored> out = new ArrayList<>(continuations.size());
        for (int[] cont : continuations) {
            if (cont.length == 0) throw new IllegalArgumentException("an empty continuation has no tokens to score");
            int[] input = new int[context.length + cont.length - 1];
            System.arraycopy(context, 0, input, 0, context.length);
            System.arraycopy(cont, 0, input, context.length, cont.length - 1);
            float[][] lp = logProbs.apply(input);
            double[] tokens = new double[cont.length];
            boolean greedy = true;
            for (int i = 0; i < cont.length; i++) {
                float[] row = lp[context.length - 1 + i];
                tokens[i] = row[cont[i]];
                if (argmax(row) != cont[i]) greedy = false;
            }
            out.add(new Scored(tokens, greedy));
        }
        return out;
    }

    /** The first index of the largest value, as torch.argmax breaks ties. */
    static int argmax(float[] row) {
        int best = 0;
        for (int j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
        return best;
    }
}
