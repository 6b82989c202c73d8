package lowbit.cli;

import lowbit.calibration.CalibrationSampler;
import lowbit.quant.QuantizationRecipe;
import picocli.CommandLine.Option;

/** The calibration draw: source, mode, windows, window length and seed; shared by quantization (in {@link QuantOptions}) and imatrix. */
final class CalibrationOptions {
    @Option(names = "--nsamples", defaultValue = "128", paramLabel = "N", description = "calibration windows (default: ${DEFAULT-VALUE})")
    int nsamples;

    @Option(names = "--calib-seqlen", defaultValue = "0", paramLabel = "L",
            description = "calibration window length in tokens (default: 2048 for gptq and static activation scales, 512 for awq, "
                    + "smoothquant and imatrix)")
    int calibSeqlen;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "calibration draw seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--calib-source", defaultValue = "c4", paramLabel = "c4|tasks|tasks:NAME|FILE",
            description = "calibration text: the shipped C4 train slice; the zero-shot task files' examples with their gold answers "
                    + "(tasks, or one file: tasks:lambada_openai; short documents: use --calib-mode concatenated); a .jsonl with "
                    + "\"text\" fields or a plain text file (default: ${DEFAULT-VALUE})")
    String calibSource;

    @Option(names = "--calib-mode", defaultValue = "documents", paramLabel = "documents|concatenated",
            description = "documents: GPTQ protocol, each window cut from one document longer than the window; "
                    + "concatenated: windows cut anywhere in the documents joined by blank lines (default: ${DEFAULT-VALUE})")
    String calibMode;

    /** The draw these options name; {@code seqlen} (0: the method's default) replaces --calib-seqlen when not null. */
    QuantizationRecipe.Calibration calibration(Integer seqlenOverride) {
        if (nsamples < 1) throw new IllegalArgumentException("--nsamples must be >= 1, got " + nsamples);
        int seqlen = seqlenOverride != null ? seqlenOverride : calibSeqlen;
        if (seqlen != 0 && seqlen < 2) throw new IllegalArgumentException("--calib-seqlen must be >= 2, got " + seqlen);
        return new QuantizationRecipe.Calibration(calibSource, nsamples, seqlen, seed, CalibrationSampler.Mode.parse(calibMode));
    }
}
