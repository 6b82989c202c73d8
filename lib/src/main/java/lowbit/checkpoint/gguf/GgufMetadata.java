package lowbit.checkpoint.gguf;

import java.nio.file.Path;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.io.FormatException;
import lowbit.io.gguf.GgufValue;
import lowbit.model.ModelConfig;

/** The metadata an exported GGUF carries: llama.cpp's keys for the architecture and the tokenizer. */
final class GgufMetadata {
    private GgufMetadata() {}

    /**
     * A GGUF source's own metadata (type for type); for lowbit's quantized directory, that of the model it was
     * quantized from, which must have the same hyper-parameters.
     */
    static Map<String, GgufValue> of(Checkpoint ckpt) {
        if (ckpt instanceof GgufCheckpoint g) return g.gguf().typedMetadata();
        if (ckpt instanceof QuantizedCheckpoint q) {
            String spec = q.manifest().path("base_model").path("spec").asText();
            Path manifest = Path.of(q.source()).resolve(lowbit.checkpoint.quantized.QuantizedModelFiles.MANIFEST);
            try (Checkpoint base = open(spec, manifest)) {
                if (!(base instanceof GgufCheckpoint g))
                    throw new FormatException(manifest, "was quantized from " + spec + ", not a GGUF file; export gguf takes the metadata "
                            + "and tokenizer of a quantized directory from its base GGUF (export the Hugging Face base with --quant instead)");
                ModelConfig a = g.config(), b = q.config();
                if (a.numLayers() != b.numLayers() || a.hiddenSize() != b.hiddenSize() || a.vocabSize() != b.vocabSize()
                        || a.numHeads() != b.numHeads() || a.numKvHeads() != b.numKvHeads() || a.intermediateSize() != b.intermediateSize())
                    throw new FormatException(manifest, "its base model " + spec + " has other hyper-parameters than the quantized model");
                return g.gguf().typedMetadata();
            }
        }
        throw new IllegalArgumentException(ckpt.source() + ": export gguf reads its metadata and tokenizer from a GGUF source "
                + "(a .gguf file, or a lowbit quantized directory made from one); Hugging Face directories are not supported yet");
    }

    private static Checkpoint open(String spec, Path manifest) {
        try {
            return Checkpoints.open(spec, null);
        } catch (FormatException | IllegalArgumentException e) {
            throw new FormatException(manifest, "names the base model '" + spec + "', which cannot be opened: " + e.getMessage(), e);
        }
    }
}
