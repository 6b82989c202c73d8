package lowbit.train;

/**
 * Learning rate per optimizer step: linear warm-up from 0 to {@code peakLr} over {@code warmupSteps} (step s gets
 * peak * (s+1) / warmup, so the first step already moves), then a cosine from peak down to {@code minLr} at
 * {@code totalSteps}; steps past the end stay at minLr.
 */
public record CosineSchedule(double peakLr, int warmupSteps, int totalSteps, double minLr) {
    public CosineSchedule {
        if (!(peakLr > 0) || !Double.isFinite(peakLr))
            throw new IllegalArgumentException("--lr must be a finite number > 0, found " + peakLr);
        if (!(minLr >= 0) || minLr > peakLr)
            throw new IllegalArgumentException("minimum learning rate must be in [0, " + peakLr + "], found " + minLr);
        if (totalSteps < 1) throw new IllegalArgumentException("--steps must be >= 1, found " + totalSteps);
        if (warmupSteps < 0 || warmupSteps > totalSteps)
            throw new IllegalArgumentException("warm-up steps must be in [0, " + totalSteps + "], found " + warmupSteps);
    }

    /** The rate for 0-based step {@code step}. */
    public double lr(int step) {
        if (step < 0) throw new IllegalArgumentException("step must be >= 0, found " + step);
        if (step < warmupSteps) return peakLr * (step + 1) / warmupSteps;
        int decay = totalSteps - warmupSteps;
        if (decay == 0 || step >= totalSteps) return minLr;
        double progress = (double) (step - warmupSteps) / decay;
        return minLr + 0.5 * (peakLr - minLr) * (1 + Math.cos(Math.PI * progress));
    }
}
