package lowbit.eval.tasks;

/**
 * One loglikelihood request as lm-eval builds it, the (context, continuation) pair of an Instance's arguments:
 * the continuation carries the target delimiter (" answer"), and no whitespace handling has been applied yet.
 */
public record Request(String context, String continuation) {
    public Request {
        if (context == null || continuation == null) throw new IllegalArgumentException("a request needs a context and a continuation");
        if (continuation.isEmpty()) throw new IllegalArgumentException("a request's continuation is empty: nothing to score");
    }
}
