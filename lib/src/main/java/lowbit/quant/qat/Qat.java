package lowbit.quant.qat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;
import lowbit.calibration.CalibrationSampler;
import lowbit.calibration.CalibrationSet;
import lowbit.io.Hashing;
import lowbit.model.Transformer;
import lowbit.progress.Progress;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.RuntimeQuantization;
import lowbit.tokenizer.Tokenizer;
import lowbit.train.AdamW;
import lowbit.train.CosineSchedule;
import lowbit.train.Loss;
import lowbit.train.TrainLinear;
import lowbit.train.TrainableModel;
import tech.tablesaw.api.Table;

/**
 * Quantization-aware training of a loaded float model on an RTN spec (LLM-QAT's recipe: fake-quantized weights and
 * activations, every parameter trained with AdamW under a cosine schedule with linear warm-up, next-token loss or KL to
 * the float model's distributions). {@link #train} fake-quantizes through a {@link QatHook}, checkpoints into a run
 * directory as it goes ({@link QatRun}), resumes from it, and leaves the runtime model holding the trained weights on
 * their final grid with the activation quantization attached, ready for {@code QuantizedModelFiles.write}.
 *
 * <pre>{@code
 * Qat.Data data = Qat.Data.sample(tokenizer, "c4", options);
 * Qat.Result r = Qat.train(model, model, QuantSpec.parse("rtn:w4a8"), options, data, runDir, Progress.terminal());
 * QuantizedModelFiles.write(out, checkpoint, spec, model, r.model(), r.provenance());
 * }</pre>
 */
public final class Qat {
    private Qat() {}

    /**
     * How to train.
     *
     * @param steps           optimizer steps, >= 1
     * @param lr              peak learning rate, in (0, 1]
     * @param warmupSteps     linear warm-up from 0, 0..steps
     * @param minLr           where the cosine ends, in [0, lr]
     * @param weightDecay     AdamW's decoupled decay on matrices (norms, biases, steps and clips have none)
     * @param batch           windows per step (gradient accumulation over them)
     * @param seqlen          tokens per window
     * @param seed            the data draw's seed
     * @param checkpointEvery steps between run-directory checkpoints (and one at the end); not part of the run's identity
     */
    public record Options(int steps, double lr, int warmupSteps, double minLr, double weightDecay, int batch, int seqlen, long seed,
                          boolean lsq, boolean pact, boolean distill, int checkpointEvery) {
        /** AdamW's betas and epsilon: torch's defaults, which LLM-QAT keeps. */
        public static final double BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8;

        public Options {
            if (steps < 1) throw new IllegalArgumentException("--steps must be >= 1, got " + steps);
            if (!(lr > 0 && lr <= 1) || !Double.isFinite(lr))
                throw new IllegalArgumentException("--lr must be a finite number in (0, 1], got " + lr);
            if (warmupSteps < 0 || warmupSteps > steps)
                throw new IllegalArgumentException("--warmup must be between 0 and --steps (" + steps + "), got " + warmupSteps);
            if (!(minLr >= 0 && minLr <= lr)) throw new IllegalArgumentException("--min-lr must be in [0, --lr = " + lr + "], got " + minLr);
            if (!(weightDecay >= 0) || !Double.isFinite(weightDecay))
                throw new IllegalArgumentException("--weight-decay must be a finite number >= 0, got " + weightDecay);
            if (batch < 1) throw new IllegalArgumentException("--batch must be >= 1, got " + batch);
            if (seqlen < 2) throw new IllegalArgumentException("--seqlen must be >= 2 tokens, got " + seqlen);
            if (checkpointEvery < 1) throw new IllegalArgumentException("--checkpoint-every must be >= 1, got " + checkpointEvery);
        }

        /** LLM-QAT's learning rate 2e-5, no warm-up, cosine to 0, no decay, one window of 512 per step, a checkpoint every 50 steps. */
        public static Options defaults(int steps) {
            return new Options(steps, 2e-5, 0, 0, 0, 1, 512, 0, false, false, false, 50);
        }

        public Options withLsq(boolean on) {
            return new Options(steps, lr, warmupSteps, minLr, weightDecay, batch, seqlen, seed, on, pact, distill, checkpointEvery);
        }

        public Options withPact(boolean on) {
            return new Options(steps, lr, warmupSteps, minLr, weightDecay, batch, seqlen, seed, lsq, on, distill, checkpointEvery);
        }

        public Options withDistill(boolean on) {
            return new Options(steps, lr, warmupSteps, minLr, weightDecay, batch, seqlen, seed, lsq, pact, on, checkpointEvery);
        }

        public Options withCheckpointEvery(int every) {
            return new Options(steps, lr, warmupSteps, minLr, weightDecay, batch, seqlen, seed, lsq, pact, distill, every);
        }

        public long tokens() {
            return (long) steps * batch * seqlen;
        }

        /** Everything that decides the trained weights (the checkpoint interval does not). */
        public Map<String, Object> describe() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("steps", steps);
            m.put("lr", lr);
            m.put("warmup_steps", warmupSteps);
            m.put("min_lr", minLr);
            m.put("schedule", "linear warm-up from 0, then cosine to min_lr");
            m.put("optimizer", "AdamW (betas " + BETA1 + ", " + BETA2 + ", eps " + EPS + ")");
            m.put("weight_decay", weightDecay);
            m.put("batch", batch);
            m.put("seqlen", seqlen);
            m.put("seed", seed);
            m.put("lsq", lsq);
            m.put("pact", pact);
            m.put("distill", distill);
            m.put("loss", distill ? "KL(p_float || p_qat) per position (LLM-QAT)" : "next-token cross-entropy");
            return m;
        }
    }

    /**
     * The training windows, {@code steps x batch} of them in the order they are used, and how they were drawn.
     *
     * @param provenance the draw (a {@link CalibrationSet}'s, or the caller's description)
     */
    public record Data(List<int[]> windows, Map<String, Object> provenance, String windowsSha256) {
        public Data {
            windows = List.copyOf(windows);
            if (windows.isEmpty()) throw new IllegalArgumentException("QAT needs at least one training window");
        }

        public static Data of(List<int[]> windows, Map<String, Object> provenance) {
            return new Data(windows, provenance, sha256(windows));
        }

        public static Data of(CalibrationSet set) {
            return new Data(List.of(set.windows()), set.provenance(), set.windowsSha256());
        }

        /** steps x batch windows of seqlen tokens drawn from {@code source} ("c4", ...) as calibration draws them (GPTQ's documents mode), seeded. */
        public static Data sample(Tokenizer tokenizer, String source, Options o) {
            long n = (long) o.steps() * o.batch();
            if (n > Integer.MAX_VALUE) throw new IllegalArgumentException("--steps x --batch = " + n + " windows is too many");
            return of(CalibrationSampler.of(tokenizer).source(source).nsamples((int) n).seqlen(o.seqlen()).seed(o.seed()).sample());
        }

        private static String sha256(List<int[]> windows) {
            long n = 0;
            for (int[] w : windows) n += w.length;
            ByteBuffer b = ByteBuffer.allocate(Math.toIntExact(n * 4)).order(ByteOrder.LITTLE_ENDIAN);
            for (int[] w : windows) for (int id : w) b.putInt(id);
            return Hashing.sha256(b.array());
        }

        void check(Options o) {
            long need = (long) o.steps() * o.batch();
            if (windows.size() < need)
                throw new IllegalArgumentException("QAT needs --steps x --batch = " + need + " windows, the data has " + windows.size());
            for (int i = 0; i < need; i++)
                if (windows.get(i).length != o.seqlen())
                    throw new IllegalArgumentException("training window " + i + " has " + windows.get(i).length + " tokens, --seqlen is " + o.seqlen());
        }
    }

    /** One optimizer step of the loss log. */
    public record LogRow(int step, long tokens, double loss, double lr, double seconds) {}

    /**
     * What {@link #train} produced.
     *
     * @param model   the trained linears on their final grid (method "qat")
     * @param runtime the activation quantization the model runs with (static scales from PACT's clips)
     * @param log     one row per step, resumed steps included
     */
    public record Result(QuantizedModel model, RuntimeQuantization runtime, List<LogRow> log, Map<String, Object> provenance) {
        /** The loss log as a table: step, tokens, loss, lr, seconds. */
        public Table lossTable() {
            return QatRun.table(log);
        }
    }

    /**
     * Trains {@code model} (a float Llama-family runtime model) on {@code data} under {@code spec}, checkpointing into
     * {@code runDir} and resuming from it; on return the runtime model holds the trained float norms and embeddings, the
     * trained linears dequantized from their final grid, and the activation hooks. {@code teacher}: the float model the
     * distillation loss compares with (may be {@code model} itself, which stays float until training ends); ignored
     * without {@code distill}.
     */
    public static Result train(Transformer model, Transformer teacher, QuantSpec spec, Options options, Data data, Path runDir, Progress progress) {
        return train(model, teacher, spec, options, () -> data, runDir, progress);
    }

    /** {@link #train} with the data drawn only once the model is known to be trainable (a refused architecture costs no draw). */
    public static Result train(Transformer model, Transformer teacher, QuantSpec spec, Options options, Supplier<Data> draw, Path runDir,
                               Progress progress) {
        QatHook.check(spec, options.lsq(), options.pact());
        if (options.distill() && teacher == null) throw new IllegalArgumentException("--distill needs the float model as the teacher");
        long t0 = System.nanoTime();
        try (TrainableModel tm = TrainableModel.of(model, model.threads())) {
            Data data = draw.get();
            data.check(options);
            QatHook hook = QatHook.of(spec, tm.linears(), options.lsq(), options.pact());
            tm.setHook(hook);
            AdamW adam = new AdamW(tm.trainable(), Options.BETA1, Options.BETA2, Options.EPS, options.weightDecay());
            CosineSchedule schedule = new CosineSchedule(options.lr(), options.warmupSteps(), options.steps(), options.minLr());
            Loss loss = options.distill() ? Loss.distill(teacher) : Loss.nextToken();
            QatRun run = QatRun.open(runDir, identity(model, spec, options, data));
            QatRun.Position at;
            try {
                at = run.resume(tm.trainable(), adam);
                if (at.step() == 0 && options.pact()) {
                    hook.observe();
                    for (int[] w : batch(data, options, 0)) tm.logits(w);
                    hook.endObserving();
                }
                at = loop(tm, adam, schedule, loss, options, data, run, at, progress);
            } finally {
                run.close();
            }
            return finish(model, tm, hook, spec, options, data, run, at, (System.nanoTime() - t0) / 1e9);
        }
    }

    private static List<int[]> batch(Data data, Options o, int step) {
        return data.windows().subList(step * o.batch(), (step + 1) * o.batch());
    }

    private static QatRun.Position loop(TrainableModel tm, AdamW adam, CosineSchedule schedule, Loss loss, Options o, Data data, QatRun run,
                                        QatRun.Position at, Progress progress) {
        long perStep = (long) o.batch() * o.seqlen();
        long started = System.nanoTime();
        try (Progress.Task task = progress.start(at.step() > 0 ? "qat (resumed at step " + at.step() + ")" : "qat",
                (o.steps() - at.step()) * perStep, "tok")) {
            for (int step = at.step(); step < o.steps(); step++) {
                double l = tm.gradient(batch(data, o, step), loss);
                if (!Double.isFinite(l))
                    throw new IllegalStateException("QAT step " + (step + 1) + ": the loss is " + l + "; lower --lr (now " + o.lr() + ")");
                double lr = schedule.lr(step);
                adam.step(lr);
                double seconds = at.seconds() + (System.nanoTime() - started) / 1e9;
                LogRow row = new LogRow(step + 1, (step + 1) * perStep, l, lr, seconds);
                run.log(row);
                boolean last = step + 1 == o.steps();
                if (last || (step + 1) % o.checkpointEvery() == 0) run.checkpoint(row, tm.trainable(), adam);
                task.message(String.format(Locale.ROOT, "step %d/%d loss %.4f lr %.3g", step + 1, o.steps(), l, lr));
                task.step(perStep);
            }
        }
        return run.position();
    }

    /** What a run directory must match to be resumed: the model, the spec, every option that changes the weights, the data. */
    static Map<String, Object> identity(Transformer model, QuantSpec spec, Options o, Data data) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("model_sha256", model.sha256());
        m.put("spec", spec.text());
        m.putAll(o.describe());
        m.put("windows_sha256", data.windowsSha256());
        return m;
    }

    private static Result finish(Transformer model, TrainableModel tm, QatHook hook, QuantSpec spec, Options o, Data data, QatRun run,
                                 QatRun.Position at, double seconds) {
        Map<String, QuantizedWeight> weights = new LinkedHashMap<>();
        Map<String, Map<String, Object>> layers = new LinkedHashMap<>();
        for (TrainLinear l : tm.linears()) {
            if (!hook.quantizedLinears().contains(l.name())) continue;
            QuantizedWeight q = hook.quantized(l);
            weights.put(l.name(), q);
            layers.put(l.name(), Map.of("bits_per_weight", q.bitsPerWeight()));
        }
        tm.copyInto(model);
        for (var e : weights.entrySet()) model.linear(e.getKey()).setWeight(e.getValue().dequantize());
        RuntimeQuantization runtime = hook.runtime();
        runtime.attach(model);

        Map<String, Object> options = new LinkedHashMap<>(o.describe());
        options.putAll(hook.describe());
        QuantizedModel qm = new QuantizedModel("qat", hook.grid(), options, weights, layers, Map.of("total_seconds", seconds));
        List<LogRow> log = run.readLog();
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("spec", spec.text());
        p.put("method", "qat");
        p.put("grid", qm.grid());
        p.put("options", qm.options());
        p.put("bits_per_weight", qm.bitsPerWeight());
        p.put("quantized_parameters", qm.parameters());
        p.put("calibration", data.provenance());
        Map<String, Object> q = new LinkedHashMap<>();
        q.put("steps", o.steps());
        q.put("tokens_seen", at.tokens());
        q.put("final_loss", log.isEmpty() ? null : log.get(log.size() - 1).loss());
        q.put("training_seconds", at.seconds());
        q.put("run_dir", run.dir().toString());
        q.put("windows_sha256", data.windowsSha256());
        p.put("qat", q);
        p.put("runtime", runtime.describe(model.config()));
        p.put("timings", qm.timings());
        return new Result(qm, runtime, log, p);
    }
}
