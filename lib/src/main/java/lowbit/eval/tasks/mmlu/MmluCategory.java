package lowbit.eval.tasks.mmlu;

/** lm-eval's four MMLU categories; each is a group ({@code mmlu_stem}, ...) whose accuracy pools its subjects. */
public enum MmluCategory {
    STEM("stem"),
    HUMANITIES("humanities"),
    SOCIAL_SCIENCES("social_sciences"),
    OTHER("other");

    private final String id;

    MmluCategory(String id) {
        this.id = id;
    }

    /** lm-eval's name for the category (its group alias): stem, humanities, social_sciences, other. */
    public String id() {
        return id;
    }

    /** lm-eval's group task name, e.g. mmlu_stem. */
    public String group() {
        return "mmlu_" + id;
    }
}
