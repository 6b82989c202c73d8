package lowbit.eval.tasks;

import java.util.List;

/**
 * One document of a task as lm-eval scores it.
 *
 * @param index    the document's position in the task's evaluation split (what --limit counts)
 * @param requests in lm-eval's order for the document: one per choice, or the single request of a loglikelihood task
 * @param choices  the choice strings lm-eval's doc_to_choice gives (acc_norm divides by their length); for
 *                 WinoGrande the option-filled contexts, for LAMBADA the target word
 * @param gold     the index of the correct choice (0 for LAMBADA's single request)
 */
public record Item(int index, List<Request> requests, List<String> choices, int gold) {
    public Item {
        requests = List.copyOf(requests);
        choices = List.copyOf(choices);
        if (requests.isEmpty()) throw new IllegalArgumentException("item " + index + " has no requests");
        if (gold < 0 || gold >= requests.size())
            throw new IllegalArgumentException("item " + index + ": gold " + gold + " is not one of its " + requests.size() + " requests");
    }
}
