package lowbit.model;

/** The error function, for OPT models configured with exact GELU. */
final class Erf {
    private Erf() {}

    /** Abramowitz and Stegun 7.1.26: absolute error below 1.5e-7, under float32's resolution near 1. */
    static double erf(double x) {
        double t = 1.0 / (1.0 + 0.3275911 * Math.abs(x));
        double y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
                * Math.exp(-x * x);
        return x >= 0 ? y : -y;
    }
}
