package lowbit.checkpoint;

import java.util.Map;
import lowbit.io.TensorInfo;
import lowbit.model.ModelConfig;
import lowbit.tokenizer.Tokenizer;

/**
 * A model checkpoint seen through Hugging Face tensor names and layouts, whatever its file format:
 * a GGUF or llama2.c file is mapped to the names and row orders a transformers checkpoint would have.
 */
public interface Checkpoint extends AutoCloseable {
    ModelConfig config();

    /** Tensors by Hugging Face name, in file order. */
    Map<String, TensorInfo> tensors();

    /** The tensor dequantized to float32, row-major in the shape of {@link TensorInfo#shape()}. */
    float[] floats(String name);

    Tokenizer tokenizer();

    /** sha256 of the weight file(s), hex; identifies the model in every result's provenance. */
    String sha256();

    /** Where the checkpoint was read from, for messages and provenance. */
    String source();

    @Override
    void close();
}
