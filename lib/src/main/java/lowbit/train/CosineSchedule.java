package lowbit.train;

public record CosineSchedule(double peakLr, int warmupSteps, int totalSteps, double minLr) {
    public double lr(int step) { throw new UnsupportedOperationException(); }
}
