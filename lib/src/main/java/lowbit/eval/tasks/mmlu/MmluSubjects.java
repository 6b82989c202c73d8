package lowbit.eval.tasks.mmlu;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;

/**
 * MMLU's 57 subjects and their categories, as lm-evaluation-harness defines them
 * ({@code lm_eval/tasks/mmlu/_generate_configs.py}, SUBJECTS; checked against lm_eval 0.4.13). lm-eval's
 * category decides which group ({@code mmlu_stem}, ...) a subject's accuracy is pooled into, so it is copied
 * here exactly, including choices that look arbitrary (college_medicine is "other", econometrics "social_sciences").
 */
public final class MmluSubjects {
    private MmluSubjects() {}

    /** Subject to category, in lm-eval's order (alphabetical, which is also the order its groups list them). */
    public static final SequencedMap<String, MmluCategory> CATEGORIES = ordered(List.of(
            Map.entry("abstract_algebra", MmluCategory.STEM),
            Map.entry("anatomy", MmluCategory.STEM),
            Map.entry("astronomy", MmluCategory.STEM),
            Map.entry("business_ethics", MmluCategory.OTHER),
            Map.entry("clinical_knowledge", MmluCategory.OTHER),
            Map.entry("college_biology", MmluCategory.STEM),
            Map.entry("college_chemistry", MmluCategory.STEM),
            Map.entry("college_computer_science", MmluCategory.STEM),
            Map.entry("college_mathematics", MmluCategory.STEM),
            Map.entry("college_medicine", MmluCategory.OTHER),
            Map.entry("college_physics", MmluCategory.STEM),
            Map.entry("computer_security", MmluCategory.STEM),
            Map.entry("conceptual_physics", MmluCategory.STEM),
            Map.entry("econometrics", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("electrical_engineering", MmluCategory.STEM),
            Map.entry("elementary_mathematics", MmluCategory.STEM),
            Map.entry("formal_logic", MmluCategory.HUMANITIES),
            Map.entry("global_facts", MmluCategory.OTHER),
            Map.entry("high_school_biology", MmluCategory.STEM),
            Map.entry("high_school_chemistry", MmluCategory.STEM),
            Map.entry("high_school_computer_science", MmluCategory.STEM),
            Map.entry("high_school_european_history", MmluCategory.HUMANITIES),
            Map.entry("high_school_geography", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("high_school_government_and_politics", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("high_school_macroeconomics", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("high_school_mathematics", MmluCategory.STEM),
            Map.entry("high_school_microeconomics", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("high_school_physics", MmluCategory.STEM),
            Map.entry("high_school_psychology", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("high_school_statistics", MmluCategory.STEM),
            Map.entry("high_school_us_history", MmluCategory.HUMANITIES),
            Map.entry("high_school_world_history", MmluCategory.HUMANITIES),
            Map.entry("human_aging", MmluCategory.OTHER),
            Map.entry("human_sexuality", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("international_law", MmluCategory.HUMANITIES),
            Map.entry("jurisprudence", MmluCategory.HUMANITIES),
            Map.entry("logical_fallacies", MmluCategory.HUMANITIES),
            Map.entry("machine_learning", MmluCategory.STEM),
            Map.entry("management", MmluCategory.OTHER),
            Map.entry("marketing", MmluCategory.OTHER),
            Map.entry("medical_genetics", MmluCategory.OTHER),
            Map.entry("miscellaneous", MmluCategory.OTHER),
            Map.entry("moral_disputes", MmluCategory.HUMANITIES),
            Map.entry("moral_scenarios", MmluCategory.HUMANITIES),
            Map.entry("nutrition", MmluCategory.OTHER),
            Map.entry("philosophy", MmluCategory.HUMANITIES),
            Map.entry("prehistory", MmluCategory.HUMANITIES),
            Map.entry("professional_accounting", MmluCategory.OTHER),
            Map.entry("professional_law", MmluCategory.HUMANITIES),
            Map.entry("professional_medicine", MmluCategory.OTHER),
            Map.entry("professional_psychology", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("public_relations", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("security_studies", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("sociology", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("us_foreign_policy", MmluCategory.SOCIAL_SCIENCES),
            Map.entry("virology", MmluCategory.OTHER),
            Map.entry("world_religions", MmluCategory.HUMANITIES)));

    /** Every subject, in lm-eval's order. */
    public static List<String> all() {
        return List.copyOf(CATEGORIES.keySet());
    }

    public static boolean known(String subject) {
        return CATEGORIES.containsKey(subject);
    }

    /** The subject's category; an unknown name is an error that says where the list comes from. */
    public static MmluCategory category(String subject) {
        MmluCategory c = CATEGORIES.get(subject);
        if (c == null)
            throw new IllegalArgumentException("unknown MMLU subject " + subject
                    + " (expected one of lm-eval's 57 subjects, e.g. abstract_algebra, astronomy, world_religions)");
        return c;
    }

    /** The subjects of one category, in lm-eval's order. */
    public static List<String> of(MmluCategory category) {
        return CATEGORIES.entrySet().stream().filter(e -> e.getValue() == category).map(Map.Entry::getKey).toList();
    }

    private static SequencedMap<String, MmluCategory> ordered(List<Map.Entry<String, MmluCategory>> entries) {
        LinkedHashMap<String, MmluCategory> m = new LinkedHashMap<>();
        for (var e : entries) m.put(e.getKey(), e.getValue());
        return Collections.unmodifiableSequencedMap(m);
    }
}
