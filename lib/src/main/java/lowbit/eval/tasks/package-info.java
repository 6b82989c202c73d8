/**
 * Zero-shot tasks with lm-evaluation-harness's semantics (lm_eval 0.4.13): the task definitions, the requests
 * HFLM builds from them, their scoring through a {@link lowbit.eval.ContinuationScorer}, and lm-eval's metrics.
 *
 * <h2>From the shipped files back to lm-eval's fields</h2>
 * The files under the data directory are llm-foundry's reformatted copies (and llama.cpp's HellaSwag text); each
 * reader in {@link lowbit.eval.tasks.Tasks} rebuilds lm-eval's doc_to_text / doc_to_choice / doc_to_target:
 * <table>
 * <caption>mapping</caption>
 * <tr><th>task</th><th>file</th><th>lm-eval request</th><th>where the shipped text differs</th></tr>
 * <tr><td>piqa</td><td>tasks/piqa_valid_official.jsonl + _labels.lst</td><td>"Question: {goal}\nAnswer:", " " + sol1 / sol2,
 *     acc, acc_norm</td><td>none: the official file. llm-foundry's piqa.jsonl strips the solutions' trailing spaces (item 1:
 *     "replace drawer with bobby pin "), which lm-eval keeps, so it is not read</td></tr>
 * <tr><td>arc_easy, arc_challenge</td><td>tasks/arc_*.jsonl {query, choices, gold}</td><td>query + "\nAnswer:" (query is
 *     "Question: " + question), " " + choice, acc, acc_norm</td><td>the answer labels (A-D or 1-4) are gone; lm-eval only uses
 *     the gold's position. All 3548 items carry four choices</td></tr>
 * <tr><td>boolq</td><td>tasks/boolq.jsonl</td><td>"{passage}\nQuestion: {question}?\nAnswer:", " no" / " yes", acc</td>
 *     <td>none: the query is "Passage: " + that text without the answer line</td></tr>
 * <tr><td>hellaswag</td><td>hellaswag/hellaswag_val_full.txt.bz2, 6 lines per item</td><td>preprocess(label + ": " + ctx_a
 *     + " " + ctx_b.capitalize()), " " + preprocess(ending), acc, acc_norm</td><td>ctx_a and ctx_b are joined and ctx_b is in
 *     lower case: {@link lowbit.eval.tasks.HellaSwagText#query} capitalizes the fragment after the last sentence end
 *     when it starts in lower case ("...on a roof. he" becomes "He", as lm-eval has it); a ctx_a whose last sentence starts
 *     in lower case with an empty ctx_b would be capitalized wrongly. The bracket tags are already stripped; lm-eval's
 *     preprocess runs again (idempotent on that text)</td></tr>
 * <tr><td>winogrande</td><td>tasks/winogrande.jsonl {context_options, continuation, gold}</td><td>partial evaluation: each
 *     option-filled prefix is a context, " " + the suffix the continuation, acc</td><td>none: the shipped fields are
 *     lm-eval's doc_to_choice and doc_to_target</td></tr>
 * <tr><td>lambada_openai</td><td>tasks/lambada_openai.jsonl {context, continuation}</td><td>the text up to its last space,
 *     " " + the last word; acc = greedy decoding reproduces the word; perplexity = exp(-mean log-likelihood)</td>
 *     <td>none (every shipped continuation is one word)</td></tr>
 * <tr><td>mmlu</td><td>mmlu/{dev,test}/*.csv (the original release)</td><td>{@link lowbit.eval.tasks.mmlu.MmluPrompt}, 5 shots,
 *     " A".." D", acc per subject, category and overall (item-weighted, as lm-eval's groups)</td><td>not shipped; downloaded</td></tr>
 * </table>
 *
 * <h2>Scoring as lm-eval does</h2>
 * Requests are encoded as HFLM's _encode_pair ({@link lowbit.eval.tasks.RequestEncoder}); acc is the argmax of the
 * choices' log-likelihoods, acc_norm the argmax of log-likelihood / the choice's length in characters (lm-eval 0.4.13
 * divides by {@code len(choice)}, code points; its byte-length variant is acc_bytes, not reported), the standard error
 * is lm-eval's mean_stderr (sample standard deviation over sqrt(n)). LAMBADA's perplexity standard error is the delta
 * method's where lm-eval bootstraps. Few-shot prompts exist only for MMLU: lm-eval draws the other tasks' shots from
 * their train splits, which are not shipped.
 */
package lowbit.eval.tasks;
