package lowbit.train;

import lowbit.model.Transformer;

/** What {@link TrainableModel#gradient} minimizes over a window's logits. */
public sealed interface Loss permits Loss.NextToken, Loss.Distill {
    /** Mean cross-entropy of token t+1 given tokens 0..t, t = 0..T-2 (the perplexity protocol's positions). */
    static Loss nextToken() {
        return new NextToken();
    }

    /**
     * Mean over positions 0..T-1 of KL(p_teacher || p_student), LLM-QAT's distillation loss; the teacher (the float
     * model) runs forward only, on its own weights and hooks.
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
