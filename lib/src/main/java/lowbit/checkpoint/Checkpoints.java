package lowbit.checkpoint;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import lowbit.checkpoint.gguf.GgufCheckpoint;
import lowbit.checkpoint.hf.HfCheckpoint;
import lowbit.checkpoint.hf.HfQuantizedCheckpoint;
import lowbit.checkpoint.llama2c.Llama2cCheckpoint;
import lowbit.checkpoint.quantized.QuantizedCheckpoint;
import lowbit.io.DataDir;
import lowbit.io.FormatException;
import lowbit.io.hub.HubClient;
import lowbit.model.Transformer;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import lowbit.tokenizer.Tokenizer;

/** Opens a checkpoint from what a user types after --model. */
public final class Checkpoints {
    private Checkpoints() {}

    public static final String DEFAULT = "default";
    public static final String HUB_PREFIX = "hf:";

    /**
     * The tokenizer of the base model a quantized checkpoint was made from, as {@code describedBy} records it
     * (spec and sha256): for a checkpoint without tokenizer files of its own, such as one made from a GGUF file.
     */
    public static Tokenizer baseTokenizer(String spec, String sha256, Path describedBy) {
        Checkpoint opened;
        try {
            opened = open(spec, null);
        } catch (FormatException | IllegalArgumentException e) {
            throw new FormatException(describedBy, "takes its tokenizer from the base model '" + spec + "', which cannot be opened: "
                    + e.getMessage(), e);
        }
        try (Checkpoint b = opened) {
            if (!b.sha256().equals(sha256))
                throw new FormatException(describedBy, "takes its tokenizer from the base model " + spec + ", but that file's sha256 "
                        + b.sha256() + " is not the recorded " + sha256);
            return b.tokenizer();
        }
    }

    /**
     * @param spec "default", "hf:ORG/NAME[@REVISION]", a Hugging Face directory, a .gguf file or a llama2.c .bin
     */
    public static Checkpoint open(String spec, HubClient.Progress downloadProgress) {
        if (spec == null || spec.isBlank()) throw new IllegalArgumentException("--model is empty");
        if (spec.equals(DEFAULT)) return open(DataDir.defaultModel());
        if (spec.startsWith(HUB_PREFIX)) {
            String repo = spec.substring(HUB_PREFIX.length());
            String revision = "main";
            int at = repo.indexOf('@');
            if (at >= 0) {
                revision = repo.substring(at + 1);
                repo = repo.substring(0, at);
            }
            Path dir = HubClient.snapshot(repo, revision, DataDir.root().resolve("models/hub"), downloadProgress);
            return checked(HfQuantizedCheckpoint.isQuantized(dir) ? HfQuantizedCheckpoint.open(dir) : HfCheckpoint.open(dir));
        }
        return open(Path.of(spec));
    }

    /**
     * Opens the checkpoint and checks that it holds exactly the tensors its config implies, in their shapes, so
     * that a mismatch is refused before any work.
     */
    public static Checkpoint open(Path path) {
        return checked(openUnchecked(path));
    }

    private static Checkpoint checked(Checkpoint ckpt) {
        try {
            CheckpointWeights.checkNamesAndShapes(ckpt);
            return ckpt;
        } catch (RuntimeException e) {
            ckpt.close();
            throw e;
        }
    }

    private static Checkpoint openUnchecked(Path path) {
        if (!Files.exists(path))
            throw new FormatException(path, "no such file or directory (--model takes a Hugging Face directory, a .gguf file, "
                    + "a llama2.c .bin, 'default' or hf:ORG/NAME)");
        if (Files.isDirectory(path))
            return QuantizedCheckpoint.isQuantizedDirectory(path) ? QuantizedCheckpoint.open(path)
                    : HfQuantizedCheckpoint.isQuantized(path) ? HfQuantizedCheckpoint.open(path) : HfCheckpoint.open(path);
        if (hasGgufMagic(path)) return GgufCheckpoint.open(path);
        if (path.getFileName().toString().endsWith(".bin")) return Llama2cCheckpoint.open(path);
        throw new FormatException(path, "not a checkpoint lowbit reads: expected a Hugging Face model directory "
                + "(config.json + *.safetensors), a GGUF file or a llama2.c .bin");
    }

    /**
     * The checkpoint's tokenizer, refused when it cannot belong to the model: a tokenizer whose ids run past
     * the model's embedding table would fail deep in the forward pass instead. (A model's table may be
     * larger than its tokenizer's vocabulary: OPT pads 50265 to 50272.)
     */
    public static Tokenizer tokenizer(Checkpoint ckpt) {
        Tokenizer tok = ckpt.tokenizer();
        int modelVocab = ckpt.config().vocabSize();
        if (tok.vocabSize() > modelVocab)
            throw new IllegalArgumentException(ckpt.source() + ": the tokenizer has " + tok.vocabSize()
                    + " tokens but the model's embedding table has " + modelVocab + " rows: the tokenizer does not"
                    + " belong to this model");
        return tok;
    }

    /** Builds the model from the checkpoint's weights, on all cores. */
    public static Transformer load(Checkpoint ckpt) {
        return load(ckpt, Parallel.defaultThreads());
    }

    /**
     * Builds the model from the checkpoint's weights; refused, naming the file and a tensor, when the checkpoint
     * misses a tensor the config implies or holds one the model would not use.
     */
    public static Transformer load(Checkpoint ckpt, int threads) {
        return load(ckpt, threads, WeightFormat.FP32);
    }

    /**
     * {@link #load(Checkpoint, int)} with every linear held in {@code format}. bf16 is for float checkpoints (a GGUF
     * file's dequantized weights count as its float model); a quantized directory's weights are a quantizer's grid
     * values, which bf16 would round, so it is refused before anything is read.
     */
    public static Transformer load(Checkpoint ckpt, int threads, WeightFormat format) {
        if (format == WeightFormat.BF16 && (ckpt instanceof QuantizedCheckpoint || ckpt instanceof HfQuantizedCheckpoint))
            throw new IllegalArgumentException(ckpt.source() + " is a quantized model: its weights are grid values that bf16 would"
                    + " round; evaluate it with --weights fp32");
        CheckpointWeights weights = new CheckpointWeights(ckpt, true);
        Transformer model = Transformer.load(weights, threads, format);
        try {
            weights.checkEveryTensorUsed();
        } catch (RuntimeException e) {
            model.close();
            throw e;
        }
        return model;
    }

    private static boolean hasGgufMagic(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            byte[] magic = in.readNBytes(4);
            return magic.length == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
        } catch (IOException e) {
            throw new FormatException(file, "cannot be read: " + e.getMessage(), e);
        }
    }
}
