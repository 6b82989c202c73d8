package lowbit.quant;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import lowbit.checkpoint.Checkpoint;
import lowbit.checkpoint.Checkpoints;
import lowbit.io.DataDir;
import lowbit.io.gguf.GgmlType;
import lowbit.io.gguf.GgufFile;
import lowbit.io.gguf.GgufTensor;
import lowbit.model.Linear;
import lowbit.model.Transformer;
import org.junit.jupiter.api.Test;

/**
 * The default model's linears were stored by llama.cpp as Q4_1 (fp16 scale and min per 32 weights): our
 * asymmetric 4-bit RTN with groups of 32 and a float min must find exactly the same codes, scales and mins
 * in the dequantized weights and give back exactly the same weights: an end-to-end check of the grid and
 * the packing against an independent implementation.
 */
class DefaultModelQ4_1Test {
    private static Path model() {
        Path gguf = DataDir.root().resolve("models/SmolLM2-135M-Instruct.Q4_1.gguf");
        assumeTrue(Files.exists(gguf), "default model not downloaded (./lowbit setup): " + gguf);
        return gguf;
    }

    @Test
    void rtnFindsLlamaCppsCodesScalesAndMins() {
        int tensors = 0;
        try (GgufFile gguf = GgufFile.open(model())) {
            for (GgufTensor t : gguf.tensors()) {
                if (t.type() != GgmlType.Q4_1) continue;
                tensors++;
                int cols = (int) t.dims()[0], rows = (int) (t.elements() / cols);
                float[] w = gguf.dequantize(t.name());
                QuantizedWeight q = Rtn.quantize(t.name(), w, rows, cols, QuantConfig.q4_1());
                ByteBuffer raw = gguf.raw(t.name()).order(ByteOrder.LITTLE_ENDIAN);
                byte[] codes = q.codes();
                int blocks = rows * cols / 32;
                for (int b = 0; b < blocks; b++) {
                    int o = b * 20;
                    assertEquals(Float.float16ToFloat(raw.getShort(o)), q.scales()[b], t.name() + " block " + b + " scale");
                    assertEquals(Float.float16ToFloat(raw.getShort(o + 2)), q.zeros()[b], t.name() + " block " + b + " min");
                    for (int j = 0; j < 16; j++) {
                        int packed = raw.get(o + 4 + j) & 0xFF;
                        assertEquals(packed & 0x0F, codes[b * 32 + j], t.name() + " block " + b + " element " + j);
                        assertEquals(packed >>> 4, codes[b * 32 + j + 16], t.name() + " block " + b + " element " + (j + 16));
                    }
                }
                assertArrayEquals(w, q.dequantize(), t.name());
                assertEquals(5.0, q.bitsPerWeight(), 1e-12);
            }
        }
        assertEquals(210, tensors, "the default model's Q4_1 tensors");
    }

    @Test
    void requantizingTheModelChangesNoWeightAndNoLogit() {
        try (Checkpoint ckpt = Checkpoints.open(model()); Transformer model = Checkpoints.load(ckpt)) {
            Map<String, float[]> before = new HashMap<>();
            for (Linear l : model.linears().values()) before.put(l.name(), l.weight());
            int[] window = Arrays.copyOf(Checkpoints.tokenizer(ckpt).encodeWithSpecials(
                    "Quantization maps every weight onto a small grid of levels. " .repeat(8)), 96);
            double[] nllBefore = model.nll(window);
            QuantizedModel q = QuantizedModel.rtn(model, QuantConfig.q4_1());
            assertEquals(210, q.weights().size());
            assertEquals(5.0, q.bitsPerWeight(), 1e-12);
            for (Linear l : model.linears().values()) assertArrayEquals(before.get(l.name()), l.weight(), l.name());
            assertArrayEquals(nllBefore, model.nll(window));
        }
    }
}
