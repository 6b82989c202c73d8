package lowbit.tensor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link WeightFormat#toBf16(float)} against torch's {@code .to(torch.bfloat16)} on a golden fixture: ties to even,
 * carries into the exponent, float32 subnormals, signed zeros, infinities, values past bf16's largest finite one, and
 * random values over 60 decades. Regenerate with
 * {@code /work/refvenv/bin/python lib/src/test/resources/bf16/make_bf16_golden.py > lib/src/test/resources/bf16/bf16_rounding.tsv}.
 */
class WeightFormatBf16Test {
    private record Case(int floatBits, short bf16, String why) {}

    private static List<Case> golden() throws IOException {
        try (InputStream in = WeightFormatBf16Test.class.getResourceAsStream("/bf16/bf16_rounding.tsv")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().filter(l -> !l.startsWith("#")).map(l -> {
                String[] f = l.split("\t");
                return new Case(Integer.parseUnsignedInt(f[0], 16), (short) Integer.parseInt(f[1], 16), f[2]);
            }).toList();
        }
    }

    @Test
    void roundsAsTorchDoesBitForBit() throws IOException {
        List<Case> cases = golden();
        assertTrue(cases.size() > 100, "fixture has " + cases.size() + " cases");
        int nans = 0;
        for (Case c : cases) {
            float f = Float.intBitsToFloat(c.floatBits);
            short ours = WeightFormat.toBf16(f);
            String what = String.format("%s: float32 %08x (%s)", c.why, c.floatBits, f);
            if (Float.isNaN(f)) {
                // NaN's bits are the implementation's (torch's CPU path gives 0xffff, c10's scalar 0x7fc0, CUDA 0x7fff): only NaN-ness is shared
                assertTrue(Float.isNaN(WeightFormat.fromBf16(ours)), what + " gave " + Integer.toHexString(ours & 0xffff));
                assertTrue(Float.isNaN(WeightFormat.fromBf16(c.bf16)), what + ": torch gave no NaN");
                nans++;
                continue;
            }
            assertEquals(c.bf16 & 0xffff, ours & 0xffff, what);
            // round() is the float the format stores, and a bf16 value round-trips unchanged
            float stored = WeightFormat.BF16.round(f);
            assertEquals(Float.floatToRawIntBits(WeightFormat.fromBf16(c.bf16)), Float.floatToRawIntBits(stored), what);
            assertEquals(Float.floatToRawIntBits(stored), Float.floatToRawIntBits(WeightFormat.BF16.round(stored)), what);
        }
        assertEquals(7, nans);
    }

    @Test
    void handComputedTies() {
        // 1 + 2^-8 lies halfway between bf16's 1 and 1 + 2^-7: to even (1); 1 + 3 * 2^-8 lies between 1 + 2^-7 and 1 + 2^-6: to 1 + 2^-6
        assertEquals(1f, WeightFormat.BF16.round(1f + 0x1p-8f));
        assertEquals(1f + 0x1p-6f, WeightFormat.BF16.round(1f + 3 * 0x1p-8f));
        assertEquals(-0f, WeightFormat.BF16.round(-0f));
        assertEquals(Float.floatToRawIntBits(-0f), Float.floatToRawIntBits(WeightFormat.BF16.round(-0f)));
        assertEquals(0.1f, WeightFormat.FP32.round(0.1f));
    }
}
