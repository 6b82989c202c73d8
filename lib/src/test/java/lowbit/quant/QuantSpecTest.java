package lowbit.quant;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class QuantSpecTest {
    @Test
    void parsesTheExamples() {
        QuantSpec s = QuantSpec.parse("gptq:w4g128");
        assertEquals("gptq", s.method());
        assertEquals(4, s.weightBits());
        assertEquals(128, s.groupSize());
        assertFalse(s.symmetric());
        assertEquals(QuantConfig.group(4, 128), s.weightConfig());

        QuantSpec r = QuantSpec.parse("rtn:w3");
        assertEquals(QuantConfig.PER_CHANNEL, r.groupSize());
        assertEquals(QuantConfig.perChannel(3), r.weightConfig());

        QuantSpec sym = QuantSpec.parse("gptq:w3sym");
        assertTrue(sym.symmetric());
        assertTrue(sym.weightConfig().symmetric());

        QuantSpec combo = QuantSpec.parse("gptq:w4g128+kv4");
        assertEquals(4, combo.kvBits());
        assertEquals(128, combo.groupSize());

        QuantSpec kv = QuantSpec.parse("kv4");
        assertNull(kv.method());
        assertEquals(4, kv.kvBits());

        QuantSpec wa = QuantSpec.parse("smoothquant:w8a8");
        assertEquals(8, wa.activationBits());
        assertEquals(QuantConfig.absmaxPerChannel(8), wa.weightConfig());
        assertEquals(QuantConfig.ZeroPoint.AWQ, QuantSpec.parse("awq:w3g128").weightConfig().zeroPoint());
        assertFalse(QuantSpec.parse("fp").quantizesWeights());
    }

    @Test
    void theGrammarNamesEveryMethod() {
        for (String m : QuantSpec.METHODS) assertTrue(QuantSpec.GRAMMAR.contains(m), m);
    }

    @Test
    void refusesMalformedSpecsWithTheGrammar() {
        for (String bad : new String[] {"gptq", "gptq:4", "gptq:w9", "gptq:w1", "foo:w4", "gptq:w4g0", "gptq:w4+rtn:w3", "rtn:w4a9",
                "kv9", "gptq:w4g128+", "", "gptq:w4 g128"}) {
            var e = assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse(bad), bad);
            assertTrue(e.getMessage().contains("Grammar: METHOD:wB"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("foo:w4")).getMessage().contains("unknown method 'foo'"));
    }
}
