/**
 * MMLU (Hendrycks et al., "Measuring Massive Multitask Language Understanding") as lm-evaluation-harness's
 * {@code mmlu} task runs it 5-shot, for the zero-shot runner to score: the data in the original release's CSV layout
 * ({@link lowbit.eval.tasks.mmlu.MmluData}, fetched by {@link lowbit.eval.tasks.mmlu.MmluDownload} into
 * {@code data/mmlu/}), lm-eval's 57 subjects and four categories ({@link lowbit.eval.tasks.mmlu.MmluSubjects}), the
 * prompt and the four continuations of an item ({@link lowbit.eval.tasks.mmlu.MmluPrompt}), and lm-eval's per-subject,
 * per-category and overall accuracy with standard errors ({@link lowbit.eval.tasks.mmlu.MmluScores}).
 *
 * <p>Correspondence with lm-eval 0.4.13: its dataset {@code cais/mmlu} is the release's CSV files read with Python's
 * csv.reader (question = field 1, choices = fields 2-5, answer = the index of the letter in field 6), so an item here
 * is the same item with the same text; test items are evaluated, the dev split gives the shots (its first five, in
 * file order), and val is read when present but unused by the {@code mmlu} task. lm-eval reports {@code acc} only for
 * MMLU (the argmax of the four continuations' log-likelihoods against the gold index), no {@code acc_norm}.
 *
 * <p>Use: {@code MmluData.absence(DataDir.root())} says in one line why MMLU cannot run (print it and go on);
 * otherwise {@code MmluData data = MmluData.fromDataDir()}, and for each subject of {@code data.subjects()} and each
 * item of {@code data.items(subject, limit)} score {@code MmluPrompt.CONTINUATIONS} after {@code data.context(item, 5)};
 * the prediction is correct when the best of the four is {@code item.gold()}; per-subject counts go to
 * {@code MmluScores.Subject.ofCounts} and {@code MmluScores.summarize} gives the groups.
 */
package lowbit.eval.tasks.mmlu;
