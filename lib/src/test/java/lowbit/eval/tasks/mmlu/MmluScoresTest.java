package lowbit.eval.tasks.mmlu;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

class MmluScoresTest {
    @Test
    void fiftySevenSubjectsInLmEvalsFourCategories() {
        assertEquals(57, MmluSubjects.all().size());
        Map<MmluCategory, Long> counts = MmluSubjects.CATEGORIES.values().stream()
                .collect(Collectors.groupingBy(c -> c, Collectors.counting()));
        // lm_eval/tasks/mmlu/default: 19 mmlu_stem_tasks, 13 humanities, 12 social_sciences, 13 other
        assertEquals(Map.of(MmluCategory.STEM, 19L, MmluCategory.HUMANITIES, 13L, MmluCategory.SOCIAL_SCIENCES, 12L,
                MmluCategory.OTHER, 13L), counts);
        assertEquals("abstract_algebra", MmluSubjects.all().get(0));
        assertEquals("world_religions", MmluSubjects.all().get(56));
        assertEquals(MmluCategory.OTHER, MmluSubjects.category("college_medicine"));
        assertEquals(MmluCategory.SOCIAL_SCIENCES, MmluSubjects.category("econometrics"));
        assertEquals(MmluCategory.HUMANITIES, MmluSubjects.category("formal_logic"));
        assertEquals(MmluCategory.STEM, MmluSubjects.category("machine_learning"));
        assertEquals("mmlu_social_sciences", MmluCategory.SOCIAL_SCIENCES.group());
        assertEquals(List.of("high_school_geography", "high_school_government_and_politics"),
                MmluSubjects.of(MmluCategory.SOCIAL_SCIENCES).subList(1, 3));
    }

    @Test
    void subjectStderrIsTheSampleStandardDeviationOverRootN() {
        // 3 of 4 correct: scores 1,1,1,0, mean 0.75, squared deviations 3*0.0625 + 0.5625 = 0.75,
        // sample variance 0.75/3 = 0.25, stderr sqrt(0.25)/sqrt(4) = 0.25
        MmluScores.Subject s = MmluScores.Subject.ofCounts("anatomy", 3, 4);
        assertEquals(0.75, s.acc(), 0);
        assertEquals(0.25, s.stderr().getAsDouble(), 1e-15);
        assertTrue(MmluScores.Subject.ofCounts("anatomy", 1, 1).stderr().isEmpty(), "lm-eval: N/A for one item");
    }

    @Test
    void groupsAreSizeWeightedWithPooledStderr() {
        // stem: anatomy 3/4 (se 0.25), astronomy 1/2 (se sqrt(0.25/1) = 0.5); humanities: philosophy 2/5
        // stem acc (3 + 1)/6 = 2/3; pooled variance ((4-1)*0.0625*4 + (2-1)*0.25*2) / (6-2) = (0.75 + 0.5)/4 = 0.3125,
        // stderr sqrt(0.3125/6)
        // philosophy se = sqrt(0.4*0.6/4) = sqrt(0.06)
        // overall acc 6/11; pooled variance (0.75 + 0.5 + (5-1)*0.06*5) / (11-3) = 2.45/8, stderr sqrt(2.45/8/11)
        var summary = MmluScores.summarize(List.of(MmluScores.Subject.ofCounts("anatomy", 3, 4),
                MmluScores.Subject.ofCounts("astronomy", 1, 2), MmluScores.Subject.ofCounts("philosophy", 2, 5)));
        MmluScores.Group stem = summary.categories().get(MmluCategory.STEM);
        assertEquals("mmlu_stem", stem.name());
        assertEquals(2.0 / 3, stem.acc(), 1e-15);
        assertEquals(Math.sqrt(0.3125 / 6), stem.stderr().getAsDouble(), 1e-15);
        assertEquals(6, stem.items());
        assertEquals(2, stem.subjects());
        assertEquals(Math.sqrt(0.06), summary.categories().get(MmluCategory.HUMANITIES).stderr().getAsDouble(), 1e-15);
        assertFalse(summary.categories().containsKey(MmluCategory.OTHER));
        assertEquals(6.0 / 11, summary.overall().acc(), 1e-15);
        assertEquals(Math.sqrt(2.45 / 8 / 11), summary.overall().stderr().getAsDouble(), 1e-15);
        assertEquals("mmlu", summary.overall().name());
        // micro, not macro: the unweighted mean of subjects would be (0.75 + 0.5 + 0.4)/3 = 0.55
        assertNotEquals(0.55, summary.overall().acc(), 1e-3);
    }

    @Test
    void aSubjectWithoutStderrLeavesItsGroupsWithout() {
        var summary = MmluScores.summarize(List.of(MmluScores.Subject.ofCounts("anatomy", 1, 1),
                new MmluScores.Subject("virology", 0.5, OptionalDouble.of(0.1), 10)));
        assertTrue(summary.categories().get(MmluCategory.STEM).stderr().isEmpty());
        assertEquals(0.1, summary.categories().get(MmluCategory.OTHER).stderr().getAsDouble(), 1e-15);
        assertTrue(summary.overall().stderr().isEmpty());
        assertEquals(6.0 / 11, summary.overall().acc(), 1e-15);
    }

    @Test
    void badInputIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> MmluScores.summarize(List.of()));
        assertThrows(IllegalArgumentException.class, () -> MmluScores.Subject.ofCounts("anatomy", 5, 4));
        assertThrows(IllegalArgumentException.class, () -> MmluScores.Subject.ofCounts("astrology", 1, 4));
        assertThrows(IllegalArgumentException.class, () -> MmluScores.summarize(List.of(
                MmluScores.Subject.ofCounts("anatomy", 1, 4), MmluScores.Subject.ofCounts("anatomy", 2, 4))));
    }
}
