package lowbit.checkpoint.hf;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.checkpoint.quantized.QuantizedModelFiles;
import lowbit.io.AtomicOutput;
import lowbit.io.safetensors.SafetensorsWriter;
import lowbit.model.ModelConfig;
import lowbit.progress.Progress;
import lowbit.quant.QuantConfig;
import lowbit.quant.QuantSpec;
import lowbit.quant.QuantizedTensor;
import lowbit.quant.QuantizedWeight;

/**
 * Writes one of our quantized directories ({@link QuantizedModelFiles}) as a Hugging Face checkpoint that transformers
 * and vLLM load: config.json with the format's quantization_config, model.safetensors with every quantized linear in
 * the format's {@link QuantLayout} and every other tensor as float32, and the tokenizer files. The codes and group
 * parameters are written as they are, never re-quantized, so what a format cannot hold exactly is refused, naming the
 * linear and the reason; so are runtime parts no weight format carries (activation or KV quantization, a rotation).
 */
public final class HfExport {
    /** config.json's key for lowbit's provenance of the export. */
    public static final String PROVENANCE = "lowbit_provenance";

    public static final List<String> FORMATS = List.of("compressed-tensors", "gptq", "awq");
    private static final String LM_HEAD = "lm_head";

    private HfExport() {}

    /** What was written: the directory, the format, the quantized linears and the shared grid. */
    public record Result(Path dir, String format, int linears, QuantConfig grid, boolean actOrder) {}

    /** Writes {@code quantizedDir} as {@code format} to {@code out} (which must not exist), one tensor after another on {@code progress}. */
    public static Result write(Path quantizedDir, String format, Path out, Progress progress) {
        if (!FORMATS.contains(format))
            throw new IllegalArgumentException("--format " + format + " is not one of " + String.join(", ", FORMATS));
        if (Files.exists(out)) throw new IllegalArgumentException("--out " + out + " exists; choose a new directory or remove it");
        AtomicOutput.checkDirectory(out);
        if (!Files.isDirectory(quantizedDir) || !QuantizedCheckpoint.isQuantizedDirectory(quantizedDir))
            throw new IllegalArgumentException("--model " + quantizedDir + " is not a lowbit quantized directory (no "
                    + QuantizedModelFiles.MANIFEST + "); export hf takes what ./lowbit quantize wrote");
        try (QuantizedCheckpoint q = (QuantizedCheckpoint) Checkpoints.open(quantizedDir)) {
            return write(q, format, out, progress);
        }
    }

    private static Result write(QuantizedCheckpoint q, String format, Path out, Progress progress) {
        String where = q.source() + ": cannot export as " + format + ": ";
        checkRuntime(q, where);
        Map<String, QuantizedTensor> linears = q.quantizedWeights();
        if (linears.isEmpty()) throw new IllegalArgumentException(where + "no linear is quantized (a float model has no quantization_config)");
        Set<QuantConfig> grids = new LinkedHashSet<>();
        boolean actOrder = false;
        for (var e : linears.entrySet()) {
            if (!(e.getValue() instanceof QuantizedWeight w))
                throw new IllegalArgumentException(where + e.getKey() + " is BiLLM-binarized, which no Hugging Face weight format holds");
            QuantConfig c = w.config();
            if (c.zeroPoint() == QuantConfig.ZeroPoint.FLOAT_MIN)
                throw new IllegalArgumentException(where + e.getKey() + " is on the float-min grid (x = scale q + min), which "
                        + format + " cannot hold: its zero points are integers (export it as GGUF Q4_1 instead)");
            grids.add(new QuantConfig(c.bits(), c.symmetric(), c.groupSize(), QuantConfig.ZeroPoint.INTEGER, QuantConfig.ScaleFormat.F16, false));
            actOrder |= w.groupIndex() != null;
        }
        if (grids.size() != 1)
            throw new IllegalArgumentException(where + "its linears use " + grids.size() + " grids (" + String.join(", ",
                    grids.stream().map(QuantConfig::label).toList()) + "); the format's quantization_config describes one");
        QuantConfig grid = grids.iterator().next();
        QuantLayout layout = QuantLayout.forExport(format, grid, actOrder);
        for (var e : linears.entrySet()) {
            String why = layout.refusal((QuantizedWeight) e.getValue());
            if (why != null) throw new IllegalArgumentException(where + e.getKey() + ": " + why);
        }
        List<String> ignore = new ArrayList<>();
        for (String name : q.tensors().keySet()) {
            if (!name.endsWith(".weight") || q.tensors().get(name).shape().length != 2) continue;
            String module = name.substring(0, name.length() - ".weight".length());
            if (linears.containsKey(module) || module.endsWith("embed_tokens") || module.endsWith("embed_positions")) continue;
            if (!module.equals(LM_HEAD) && !module.endsWith("project_in") && !module.endsWith("project_out"))
                throw new IllegalArgumentException(where + "the linear " + module + " is in float while the format quantizes every "
                        + "linear of the blocks");
            ignore.add(module);
        }
        if (q.config().tieWordEmbeddings() || !q.tensors().containsKey(LM_HEAD + ".weight")) ignore.add(LM_HEAD);
        ObjectNode config = configJson(q, layout, ignore, where);
        Path dir = AtomicOutput.directory(out, tmp -> {
            SafetensorsWriter st = new SafetensorsWriter().metadata("format", "pt");
            try (Progress.Task task = progress.start("export hf " + format, q.tensors().size(), "tensor")) {
                for (var e : q.tensors().entrySet()) {
                    String name = e.getKey();
                    String module = name.endsWith(".weight") ? name.substring(0, name.length() - ".weight".length()) : null;
                    if (module != null && linears.containsKey(module)) layout.write(st, module, (QuantizedWeight) linears.get(module));
                    else st.f32(name, q.floats(name), e.getValue().shape());
                    task.step(1);
                }
            }
            st.write(tmp.resolve(HfCheckpoint.SINGLE));
            if (!QuantizedModelFiles.copyTokenizerFiles(Path.of(q.source()), tmp)) {
                // the tokenizer lives in the base model's file (a GGUF): name it as our manifest does
                JsonNode b = q.manifest().path("base_model");
                ObjectNode ref = config.putObject(HfQuantizedCheckpoint.BASE_MODEL);
                ref.put("spec", b.path("spec").asText());
                ref.put("sha256", b.path("sha256").asText());
            }
            // how the weights were made: the quantized directory (by sha256), its base model and its recipe with the
            // calibration draw and code version, as the manifest recorded them; transformers ignores the key
            ObjectNode provenance = config.putObject(PROVENANCE);
            provenance.put("exported_from", q.source());
            provenance.put("exported_from_sha256", q.sha256());
            provenance.put("format", format);
            provenance.set("base_model", q.manifest().path("base_model"));
            provenance.set("quantization", q.manifest().path("quantization"));
            new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(tmp.resolve("config.json").toFile(), config);
        });
        return new Result(dir, format, linears.size(), grid, actOrder);
    }

    /** Refuses what needs a runtime no weight format carries: activation or KV-cache quantization, a rotation. */
    private static void checkRuntime(QuantizedCheckpoint q, String where) {
        JsonNode spec = q.manifest().path("quantization").path("spec");
        if (!spec.isTextual()) return;
        QuantSpec s = QuantSpec.parse(spec.asText());
        if (s.activationBits() != 0)
            throw new IllegalArgumentException(where + "its spec " + spec.asText() + " quantizes activations, which needs runtime "
                    + "support the weight-only export does not carry");
        if (s.kvBits() != 0)
            throw new IllegalArgumentException(where + "its spec " + spec.asText() + " quantizes the KV cache, which needs runtime support");
        if (s.rotates())
            throw new IllegalArgumentException(where + "its spec " + spec.asText() + " rotates the model, whose online Hadamard "
                    + "transforms need runtime support");
    }

    /**
     * config.json for the model's config, in the keys {@link HfConfig} reads; refused when reading it back would not give
     * the same config (a llama2.c model, whose model_type transformers does not know).
     */
    static ObjectNode configJson(Checkpoint q, QuantLayout layout, List<String> ignore, String where) {
        ModelConfig c = q.config();
        ObjectNode j = new ObjectMapper().createObjectNode();
        String type = c.modelType();
        String arch = switch (type) {
            case "llama" -> "LlamaForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "opt" -> "OPTForCausalLM";
            default -> throw new IllegalArgumentException(where + "model_type " + type + " has no Hugging Face architecture");
        };
        j.putArray("architectures").add(arch);
        j.put("model_type", type);
        j.put("vocab_size", c.vocabSize());
        j.put("hidden_size", c.hiddenSize());
        j.put("num_hidden_layers", c.numLayers());
        j.put("num_attention_heads", c.numHeads());
        j.put("max_position_embeddings", c.maxPositions());
        j.put("tie_word_embeddings", c.tieWordEmbeddings());
        if (c.family() == ModelConfig.Family.OPT) {
            j.put("ffn_dim", c.intermediateSize());
            j.put("activation_function", c.hiddenAct());
            j.put("enable_bias", c.attentionBias());
            j.put("do_layer_norm_before", c.normBefore());
            j.put("word_embed_proj_dim", c.wordEmbedProjDim());
        } else {
            j.put("intermediate_size", c.intermediateSize());
            j.put("num_key_value_heads", c.numKvHeads());
            j.put("head_dim", c.headDim());
            j.put("rope_theta", c.ropeTheta());
            j.put("rms_norm_eps", c.normEps());
            j.put("hidden_act", c.hiddenAct());
            if (type.equals("llama") || type.equals("qwen3")) j.put("attention_bias", c.attentionBias());
            if (type.equals("mistral")) j.putNull("sliding_window");
            if (type.startsWith("qwen")) j.put("use_sliding_window", false);
        }
        if (c.bosTokenId() >= 0) j.put("bos_token_id", c.bosTokenId());
        else j.putNull("bos_token_id");
        if (c.eosTokenId() >= 0) j.put("eos_token_id", c.eosTokenId());
        else j.putNull("eos_token_id");
        // the kernels of GPTQ and AWQ run in fp16; compressed-tensors' float32 scales keep its decompression exact
        j.put("torch_dtype", layout instanceof CompressedTensorsLayout ? "float32" : "float16");
        j.set("quantization_config", layout.quantizationConfig(ignore));
        ModelConfig back = HfConfig.parse(j, Path.of(q.source(), "config.json"));
        if (!back.equals(c))
            throw new IllegalArgumentException(where + "config.json cannot describe this model exactly (read back: " + back + ")");
        return j;
    }
}
