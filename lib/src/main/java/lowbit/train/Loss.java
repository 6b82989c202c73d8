package lowbit.train;

import lowbit.model.Transformer;

public interface Loss {
    static Loss nextToken() { throw new UnsupportedOperationException(); }
    static Loss distill(Transformer teacher) { throw new UnsupportedOperationException(); }
}
