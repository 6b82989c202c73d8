package lowbit.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import lowbit.checkpoint.Checkpoint;
import lowbit.memory.MemoryEstimate;
import lowbit.memory.RunMarker;
import lowbit.progress.Progress;
import lowbit.studies.Study;
import lowbit.studies.StudyPlan;
import lowbit.studies.StudyReport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** The main job: statistics, methods x bits, sensitivity, mixed precision and a calibration ablation, into results/. */
@Command(name = "study", mixinStandardHelpOptions = true,
        description = "The main study of a model: per-layer statistics, methods x bits, per-linear sensitivity, mixed precision "
                + "under a bit budget and a calibration ablation. Every experiment is a row of OUT/store.jsonl, written as it "
                + "finishes (a re-run skips what is stored, an interrupted run resumes); the report is OUT/index.html (offline).")
final class StudyCommand implements Callable<Integer>, MemoryEstimated {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--out", defaultValue = "results", description = "output directory (default: ${DEFAULT-VALUE})")
    Path out;

    @Option(names = "--full", description = "the full-size study: whole test set, 128 x 2048 calibration, more methods, "
            + "sample sizes 8..256 and 5 seeds (many hours on 2 cores); default: a quick study of about 24 minutes on 2 cores")
    boolean full;

    @Option(names = "--eval-windows", paramLabel = "K", description = "override the evaluation windows (0: the whole test set)")
    Integer evalWindows;

    @Option(names = "--methods", split = ",", paramLabel = "SPEC", description = "override the compared specs, e.g. rtn:w4,gptq:w4g128")
    List<String> methods;

    @Option(names = "--seeds", split = ",", paramLabel = "S", description = "override the ablation seeds, e.g. 0,1,2")
    List<Long> seeds;

    @Option(names = "--allocation-methods", split = ",", paramLabel = "rtn|gptq",
            description = "override the methods mixed precision allocates with (quick plan: rtn; full: rtn,gptq; none: leave the part out)")
    List<String> allocationMethods;

    @Option(names = "--allocation-seeds", split = ",", paramLabel = "S",
            description = "override the mixed-precision seeds (C4 windows, GPTQ calibration, random baselines), e.g. 0,1,2")
    List<Long> allocationSeeds;

    @Option(names = "--zero-shot-tasks", split = ",", paramLabel = "TASK",
            description = "override the zero-shot tasks scored on the float model and the zero-shot specs (none: leave the part out)")
    List<String> zeroShotTasks;

    @Option(names = "--zero-shot-limit", paramLabel = "N",
            description = "score each task's first N items, as lm-eval's --limit (0: every item; quick plan: 20)")
    Integer zeroShotLimit;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("study");
        modelOptions.requireFp32Weights("study");
        StudyPlan p = plan();
        try (RunMarker marker = RunMarker.start(out.resolve(".study-running"), "study into " + out,
                "the rows in " + out.resolve("store.jsonl") + " are kept")) {
            marker.previousRunKilled().ifPresent(m -> System.err.println("lowbit: " + m));
            return run(p);
        }
    }

    @Override
    public MemoryEstimate memoryEstimate() {
        try (Checkpoint ckpt = modelOptions.open()) {
            return MemoryEstimate.study(ckpt.config(), plan());
        }
    }

    private StudyPlan plan() {
        StudyPlan.Builder b = (full ? StudyPlan.full(modelOptions.model) : StudyPlan.quick(modelOptions.model)).toBuilder();
        if (evalWindows != null) b.evalWindows(evalWindows);
        if (methods != null) b.methods(methods);
        if (seeds != null) b.ablationSeeds(seeds);
        if (allocationMethods != null) b.allocationMethods(allocationMethods.equals(List.of("none")) ? List.of() : allocationMethods);
        if (allocationSeeds != null) b.allocationSeeds(allocationSeeds);
        if (zeroShotTasks != null) b.zeroShotTasks(zeroShotTasks.equals(List.of("none")) ? List.of() : zeroShotTasks);
        if (zeroShotLimit != null) b.zeroShotLimit(zeroShotLimit);
        return b.build();
    }

    private int run(StudyPlan p) {
        Study.Result r = Study.run(p, out, modelOptions.threads(), Progress.terminal());
        Path index = StudyReport.write(r);
        Path csv = out.resolve("store.csv");
        r.store().exportCsv(csv);
        for (String f : StudyReport.findings(r)) System.out.println("- " + f);
        System.out.printf(Locale.ROOT, "study done in %.0f s (%d new rows; %d in the store)%n", r.seconds(), r.experimentsRun(), r.store().size());
        System.out.println("report: " + index.toAbsolutePath());
        System.out.println("store:  " + r.store().file().toAbsolutePath() + " (CSV: " + csv.toAbsolutePath() + ")");
        return 0;
    }
}
