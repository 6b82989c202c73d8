package lowbit.train;

import lowbit.model.Transformer;

/** What {@link TrainableModel#gradient} minimizes over a window's logits. */
public sealed interface Loss permits Loss.NextToken, Loss.Distill {
    /** Mean cross-entropy of token t+1 given tokens 0..t, t = 0..T-2 (the perplexity protocol's positions). */
    static Loss nextToken() {
        return new NextToken();
    }

    /**
     * Mean over positions 0..T-1 of KL(p_teacher || p_student), LLM-QAT's distillation loss. The teacher (the float
     * model) runs forward only: its blocks with its own hooks, its final norm, and lm_head without hooks, in the student's
     * row chunks.
     */
    static Loss distill(Transformer teacher) {
        if (teacher == null) throw new IllegalArgumentException("--distill needs a teacher model, got none");
        return new Distill(teacher);
    }

    /** Positions scored in a window of T tokens. */
    int scored(int T);

    record NextToken() implements Loss {
        @Override
        public int scored(int T) {
            return T - 1;
        }
    }

    record Distill(Transformer teacher) implements Loss {
        @Override
        public int scored(int T) {
            return T;
        }
    }
}
