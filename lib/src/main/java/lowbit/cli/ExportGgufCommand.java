package lowbit.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.function.Function;
import lowbit.calibration.ImportanceMatrix;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.gguf.GgufExport;
import lowbit.checkpoint.gguf.GgufPreset;
import lowbit.checkpoint.gguf.GgufTypePlan;
import lowbit.eval.EvaluatedModel;
import lowbit.io.AtomicOutput;
import lowbit.io.Hashing;
import lowbit.io.gguf.GgmlType;
import lowbit.progress.Progress;
import lowbit.quant.BitsMap;
import lowbit.quant.QuantizationRecipe;
import lowbit.results.CodeVersion;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

@Command(name = "gguf", mixinStandardHelpOptions = true,
        description = "Writes a GGUF file llama.cpp runs: each tensor in the type llama-quantize would choose for --type (its "
                + "per-tensor rules and fallbacks), computed with llama.cpp's quantization routines; --quant SPEC quantizes "
                + "with lowbit's method first and writes its codes as they are where the grid is a GGUF type (w4g32fmin = Q4_1, "
                + "w5g32fmin = Q5_1, w4g32sym = Q4_0, w5g32sym = Q5_0, w8g32sym = Q8_0).")
final class ExportGgufCommand implements Callable<Integer> {
    @Mixin
    ModelOptions modelOptions;

    @Mixin
    QuantOptions quantOptions;

    @Option(names = "--type", paramLabel = "TYPE",
            description = "llama-quantize's file type: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, "
                    + "Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K. Without it, tensors that --quant or --bits-map do not cover get "
                    + "Q8_0's rules; with --quant it also re-quantizes grids that are no GGUF type (which are refused without it)")
    String type;

    @Option(names = "--tensor-type", paramLabel = "PATTERN=TYPE",
            description = "llama-quantize's --tensor-type: tensors whose GGUF name the regex PATTERN finds get TYPE (repeatable, first match wins)")
    List<String> tensorTypes = new ArrayList<>();

    @Option(names = "--imatrix", paramLabel = "FILE",
            description = "llama.cpp's importance matrix (llama-imatrix's GGUF or legacy .dat, or ./lowbit imatrix): the "
                    + "importance-weighted quantization routines, as llama-quantize --imatrix")
    Path imatrix;

    @Option(names = "--out", required = true, paramLabel = "FILE.gguf", description = "new GGUF file")
    Path out;

    @Override
    public Integer call() {
        modelOptions.cpuOnly("export gguf");
        AtomicOutput.checkFile(out);
        GgufPreset preset = type == null ? null : GgufPreset.parse(type);
        List<GgufTypePlan.TypeOverride> overrides = tensorTypes.stream().map(GgufTypePlan.TypeOverride::parse).toList();
        // without --quant, a bits map chooses each linear's GGUF type instead of a lowbit method's widths
        QuantizationRecipe recipe = null;
        if (quantOptions.spec() != null) recipe = quantOptions.recipe(null, null);
        else quantOptions.refuseOptionsWithoutSpec(Set.of("--bits-map"));
        GgufExport.Result r;
        if (recipe == null) {
            try (Checkpoint ckpt = modelOptions.open()) {
                Map<String, GgmlType> explicit = quantOptions.bitsMap == null ? Map.of()
                        : GgufExport.bitsMapTypes(BitsMap.read(quantOptions.bitsMap), GgufExport.linears(ckpt));
                var options = new GgufExport.Options(preset, overrides, explicit, importance(imatrix, ckpt));
                r = GgufExport.of(ckpt, options).write(out, Progress.terminal(), provenance(ckpt, null));
            }
        } else {
            try (EvaluatedModel m = EvaluatedModel.load(modelOptions.open(), modelOptions.threads())) {
                Function<String, float[]> importance = importance(imatrix, m.checkpoint());
                recipe.validate(m.transformer());
                QuantizationRecipe.Outcome o = m.quantize(recipe, Progress.terminal());
                GgufExport.Options options = new GgufExport.Options(preset, overrides, Map.of(), importance);
                r = GgufExport.of(m.checkpoint(), m.transformer(), o, options).write(out, Progress.terminal(), provenance(m.checkpoint(), o));
            }
        }
        report(r);
        return 0;
    }

    /** What the file records of how it was made: source, options, the files they named (by sha256), the method's recipe. */
    private Map<String, Object> provenance(Checkpoint ckpt, QuantizationRecipe.Outcome outcome) {
        Map<String, Object> p = new LinkedHashMap<>();
        p.put("source", ckpt.source());
        p.put("source_sha256", ckpt.sha256());
        if (type != null) p.put("type", type);
        if (!tensorTypes.isEmpty()) p.put("tensor_types", tensorTypes);
        if (imatrix != null) p.put("imatrix", Map.of("file", imatrix.toString(), "sha256", Hashing.sha256(imatrix)));
        if (quantOptions.bitsMap != null)
            p.put("bits_map", Map.of("file", quantOptions.bitsMap.toString(), "sha256", Hashing.sha256(quantOptions.bitsMap)));
        if (outcome != null) p.put("quantization", outcome.provenance());
        p.put("code_version", CodeVersion.current().toString());
        return p;
    }

    /**
     * The importance of each tensor from {@code file} (null: none), refused when made for another model; the model's
     * tensors it has no entry for are named on stderr and quantized without importance, as llama-quantize does.
     */
    static Function<String, float[]> importance(Path file, Checkpoint ckpt) {
        if (file == null) return null;
        ImportanceMatrix m = ImportanceMatrix.read(file);
        List<String> missing = m.checkAgainst(GgufExport.quantizableColumns(ckpt));
        if (!missing.isEmpty())
            System.err.println("imatrix " + file + " has no entry for " + missing.size() + " tensor(s), quantized without importance: "
                    + String.join(", ", missing.subList(0, Math.min(4, missing.size()))) + (missing.size() > 4 ? ", ..." : ""));
        return m::importance;
    }

    private static void report(GgufExport.Result r) {
        for (GgufTypePlan.Entry e : r.plan().fallbacks()) System.err.println("fallback: " + e.fallbackMessage());
        if (!r.requantized().isEmpty())
            System.err.println("note: " + r.requantized().size() + " tensor(s) re-quantized from an already quantized source type "
                    + "(llama-quantize does this only with --allow-requantize; export from an F32/F16 GGUF for llama-quantize's bytes)");
        Map<GgmlType, Integer> counts = new TreeMap<>();
        long elements = 0, bytes = 0;
        for (GgufTypePlan.Entry e : r.plan().entries()) {
            counts.merge(e.type(), 1, Integer::sum);
            long n = 1;
            for (long d : e.dims()) n *= d;
            elements += n;
            bytes += e.type().byteSize(n);
        }
        List<String> types = new ArrayList<>();
        counts.forEach((t, n) -> types.add(n + " " + t));
        System.out.printf(Locale.ROOT, "wrote %s: %d tensors (%s), %.3f bits/weight, %d fallback(s), %d packed from lowbit's codes, "
                        + "%d copied from the source, %.1f s%n", r.file(), r.plan().entries().size(), String.join(", ", types),
                bytes * 8.0 / elements, r.plan().fallbacks().size(), r.exact().size(), r.copied().size(), r.seconds());
    }
}
