package lowbit.checkpoint.quantized;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Set;
import lowbit.checkpoint.Checkpoint;
import lowbit.io.AtomicOutput;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.model.Transformer;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantizedModel;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.QuantizedWeight;
import lowbit.quant.billm.BillmWeight;

/**
 * Our quantized-model directory: {@code model.safetensors} with, per quantized linear NAME,
 * {@code NAME.qweight} (U8, codes packed LSB-first, see BitPacking), {@code NAME.scales} ([scale rows][groups],
 * F16 or F32), {@code NAME.zeros} (U8 integer zeros, or float mins in the scale format; absent when
 * symmetric), {@code NAME.g_idx} (I32 group of each input column, only for act-order with dynamic groups);
 * a BiLLM linear instead has {@code NAME.salient}, {@code NAME.signs}, {@code NAME.residual_signs}, {@code NAME.sparse}
 * (U8 bitmaps, see BillmWeight) and {@code NAME.params} ([rows][blocks x 8] in its scale format);
 * every other tensor of the source checkpoint as F32 under its Hugging Face name; and {@code lowbit.json},
 * the manifest: model config, each linear's grid, the method, its options, calibration draw and provenance.
 *
 * <p>The tokenizer: a source directory's tokenizer files are copied; for a GGUF or llama2.c source the
 * manifest names the source file and its sha256, and loading opens that file for its tokenizer.
 *
 * <p>Written into a hidden sibling directory and renamed into place only when complete, so an interrupted
 * or failed run never leaves a directory that looks like a model; the sibling is removed on failure and on a
 * kill, and, after a kill -9, by the next write into the same parent.
 */
public final class QuantizedModelFiles {
    public static final String MANIFEST = "lowbit.json";
    public static final String WEIGHTS = "model.safetensors";
    public static final String FORMAT = "lowbit-quantized";
    /** The manifest's layout; a reader refuses any other, so a change to the layout must change it. */
    public static final int VERSION = 1;
    /** The tokenizer files a model directory may hold, copied with the weights (also by export hf). */
    private static final Set<String> TOKENIZER_FILES = Set.of("tokenizer.json", "tokenizer_config.json", "vocab.json",
            "merges.txt", "special_tokens_map.json", "tokenizer.model", "added_tokens.json");

    /** Written when the source ties lm_head to the embeddings and the model no longer does (a rotation untied them). */
    private static final String LM_HEAD = "lm_head.weight";

    private QuantizedModelFiles() {}

    /**
     * Writes {@code model}, quantized as {@code qm} from {@code source} (null: no quantized linear, e.g. a rotated float
     * model, every linear stored as F32), to {@code dir}, which must not exist or be empty.
     * {@code provenance} becomes the manifest's "quantization" object as given (spec, grid, options, bits per
     * weight, calibration draw, code version, ...: what `ppl --json` reports); per-layer facts go under "layers".
     */
    public static Path write(Path dir, Checkpoint source, String sourceSpec, Transformer model, QuantizedModel qm,
                             Map<String, Object> provenance) {
        return AtomicOutput.directory(dir, tmp -> {
            SafetensorsWriter st = new SafetensorsWriter().metadata("format", FORMAT);
            ObjectMapper json = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode manifest = json.createObjectNode();
            manifest.put("format", FORMAT);
            manifest.put("version", VERSION);
            // the model's: a rotation unties the embeddings (tie_word_embeddings false, lm_head.weight stored)
            manifest.set("config", json.valueToTree(model.config()));
            ObjectNode base = manifest.putObject("base_model");
            base.put("spec", sourceSpec);
            base.put("source", source.source());
            base.put("sha256", source.sha256());
            ObjectNode linears = manifest.putObject("linears");
            Map<String, ? extends QuantizedTensor> quantized = qm == null ? Map.of() : qm.weights();
            for (var e : quantized.entrySet()) {
                String name = e.getKey();
                QuantizedTensor t = e.getValue();
                ObjectNode l = linears.putObject(name);
                l.put("rows", t.rows());
                l.put("columns", t.columns());
                if (t instanceof BillmWeight b) {
                    writeBillm(st, name, b);
                    l.set("billm", json.valueToTree(b.describe()));
                    l.put("bits_per_weight", b.bitsPerWeight());
                    l.put("bits_per_weight_paper", b.paperBitsPerWeight());
                    continue;
                }
                QuantizedWeight q = (QuantizedWeight) t;
                QuantConfig c = q.config();
                int scaleRows = q.scales().length / q.groups();
                st.u8(name + ".qweight", q.packedCodes(), q.packedCodes().length);
                if (c.scaleFormat() == QuantConfig.ScaleFormat.F16) st.f16(name + ".scales", q.scales(), scaleRows, q.groups());
                else st.f32(name + ".scales", q.scales(), scaleRows, q.groups());
                if (q.zeros() != null) {
                    if (c.zeroPoint() == QuantConfig.ZeroPoint.INTEGER) {
                        byte[] z = new byte[q.zeros().length];
                        for (int i = 0; i < z.length; i++) z[i] = (byte) q.zeros()[i];
                        st.u8(name + ".zeros", z, scaleRows, q.groups());
                    } else if (c.scaleFormat() == QuantConfig.ScaleFormat.F16) st.f16(name + ".zeros", q.zeros(), scaleRows, q.groups());
                    else st.f32(name + ".zeros", q.zeros(), scaleRows, q.groups());
                }
                if (q.groupIndex() != null) st.i32(name + ".g_idx", q.groupIndex(), q.columns());
                l.set("grid", json.valueToTree(c.describe()));
                l.put("bits_per_weight", q.bitsPerWeight());
            }
            for (String name : source.tensors().keySet()) {
                if (name.endsWith(".weight") && quantized.containsKey(name.substring(0, name.length() - ".weight".length())))
                    continue;
                long[] shape = source.tensors().get(name).shape();
                float[] current = model.tensor(name);   // norms, biases and embeddings as scale folding or a rotation left them
                st.f32(name, current != null ? current : source.floats(name), shape);
            }
            if (!model.config().tieWordEmbeddings() && !source.tensors().containsKey(LM_HEAD) && !quantized.containsKey("lm_head"))
                st.f32(LM_HEAD, model.tensor(LM_HEAD), new long[] {model.config().vocabSize(), model.linear("lm_head").inFeatures()});
            st.write(tmp.resolve(WEIGHTS));

            manifest.set("quantization", json.valueToTree(provenance));
            manifest.set("layers", json.valueToTree(qm == null ? Map.of() : qm.layers()));
            manifest.put("tokenizer", copyTokenizer(source, tmp));
            json.writeValue(tmp.resolve(MANIFEST).toFile(), manifest);

        });
    }

    /**
     * A BiLLM weight's parts (U8 bitmaps packed LSB-first as BillmWeight holds them, the parameters in their scale
     * format as [rows][blocks x 8]); QuantizedCheckpoint reads them back into the same record.
     */
    private static void writeBillm(SafetensorsWriter st, String name, BillmWeight b) {
        st.u8(name + ".salient", b.salientColumns(), b.salientColumns().length);
        st.u8(name + ".signs", b.signs(), b.signs().length);
        st.u8(name + ".residual_signs", b.residualSigns(), b.residualSigns().length);
        st.u8(name + ".sparse", b.sparse(), b.sparse().length);
        long perRow = (long) b.blocks() * BillmWeight.PARAMS;
        if (b.scaleFormat() == QuantConfig.ScaleFormat.F16) st.f16(name + ".params", b.params(), b.rows(), perRow);
        else st.f32(name + ".params", b.params(), b.rows(), perRow);
    }

    /** "files" when the source directory's tokenizer files were copied, "base_model" when the source file holds it. */
    private static String copyTokenizer(Checkpoint source, Path tmp) throws IOException {
        Path src = Path.of(source.source());
        return Files.isDirectory(src) && copyTokenizerFiles(src, tmp) ? "files" : "base_model";
    }

    /** Copies the tokenizer files {@code dir} has into {@code dest}; false when it has none. */
    public static boolean copyTokenizerFiles(Path dir, Path dest) throws IOException {
        boolean copied = false;
        for (String f : TOKENIZER_FILES) {
            Path p = dir.resolve(f);
            if (Files.isRegularFile(p)) {
                Files.copy(p, dest.resolve(f));
                copied = true;
            }
        }
        return copied;
    }
}
