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
    void quarotAndBillmTerms() {
        QuantSpec s = QuantSpec.parse("rtn:w4a4+KV4+quarot");
        assertEquals(QuantSpec.Rotation.QUAROT, s.rotation());
        assertEquals("quarot+rtn:w4a4+kv4", s.text(), "the rotation comes first in canonical text");
        assertEquals(s, QuantSpec.parse(s.text()));
        assertEquals("quarot", QuantSpec.parse("quarot").text());
        assertFalse(QuantSpec.parse("quarot").quantizesWeights());
        assertEquals(QuantSpec.parse("gptq:w4a8"), QuantSpec.parse("quarot+gptq:w4a8").withRotation(QuantSpec.Rotation.NONE));
        QuantSpec b = QuantSpec.parse("billm:w1g128");
        assertEquals(1, b.weightBits());
        assertEquals(128, b.groupSize());
        assertEquals("billm:w1g128", b.text());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("rtn:w1g128")).getMessage().contains("billm:w1g128"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("billm:w2g128")).getMessage().contains("w1"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("billm:w1")).getMessage().contains("block size"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("quarot+quarot")).getMessage().contains("two rotation"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("quarot+rtn:w4a1")).getMessage().contains("activation bits must be 2..8"));
    }

    @Test
    void refusesMalformedSpecsWithTheGrammar() {
        for (String bad : new String[] {"gptq", "gptq:4", "gptq:w9", "gptq:w1", "foo:w4", "gptq:w4g0", "gptq:w4+rtn:w3", "rtn:w4a9",
                "kv9", "gptq:w4g128+", "", "gptq:w4 g128", "billm:w1", "quarot+quarot", "rtn:w4a1"}) {
            var e = assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse(bad), bad);
            assertTrue(e.getMessage().contains("Grammar: METHOD:wB"), e.getMessage());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("foo:w4")).getMessage().contains("unknown method 'foo'"));
    }

    @Test
    void builtSpecsEqualParsedOnesAndWriteCanonicalText() {
        QuantSpec built = QuantSpec.of("gptq", QuantConfig.group(4, 128)).withKv(4);
        assertEquals(QuantSpec.parse("gptq:w4g128+kv4"), built);
        assertEquals("gptq:w4g128+kv4", built.text());
        assertEquals("rtn:w3+kv4", QuantSpec.parse(" KV4+RTN:W3 ").text(), "terms in canonical order, lower case");
        assertEquals("gptq:w3sym", QuantSpec.of("gptq", QuantConfig.perChannel(3).withSymmetric(true)).text());
        assertEquals("smoothquant:w8a8", QuantSpec.of("smoothquant", QuantConfig.perChannel(8)).withActivations(8).text());
        assertEquals("kv2", QuantSpec.kv(2).text());
        assertEquals("fp", QuantSpec.parse("none").text());
        assertSame(QuantSpec.FP, QuantSpec.parse("fp"));
        assertEquals(QuantSpec.parse("awq:w3g128"), QuantSpec.parse("gptq:w3g128").withMethod("awq"));
        for (String t : new String[] {"rtn:w8", "rtn:w4g128+kv8", "smoothquant:w4a8", "rtn:w4a8sym+kv3", "awq:w3g128"})
            assertEquals(t, QuantSpec.parse(t).text(), "round trip");
    }

    @Test
    void theFactoryRefusesWhatTheParserRefuses() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.of("foo", QuantConfig.perChannel(4)))
                .getMessage().contains("unknown method 'foo'"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.of("rtn", QuantConfig.perTensor(4)))
                .getMessage().contains("per-tensor"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.kv(9)).getMessage().contains("KV-cache bits must be 2..8, got 9"));
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec(null, 4, QuantConfig.PER_CHANNEL, false, 0, 0), "bits without a method");
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec("rtn", 4, 0, false, 0, 0), "group 0");
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.of("rtn", QuantConfig.perChannel(4)).withActivations(1));
    }

    @Test
    void fminNamesLlamaCppsFloatMinGrid() {
        QuantSpec q41 = QuantSpec.parse("rtn:w4g32fmin");
        assertTrue(q41.floatMin());
        assertEquals(QuantConfig.q4_1(), q41.weightConfig(), "Q4_1: 4 bits, groups of 32, fp16 scale and fp16 min");
        assertEquals("rtn:w4g32fmin", q41.text());
        assertEquals(q41, QuantSpec.of("rtn", QuantConfig.q4_1()));
        assertEquals("gptq:w5g32fmin+kv8", QuantSpec.parse("gptq:w5g32fmin+kv8").text(), "Q5_1's grid under GPTQ");
        assertFalse(QuantSpec.parse("rtn:w4g32").floatMin());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("awq:w4g32fmin")).getMessage()
                .contains("fmin (a float min, llama.cpp's Q4_1 grid) is a grid of rtn and gptq, not of awq"));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("rtn:w4g32symfmin"), "sym and fmin together");
        assertThrows(IllegalArgumentException.class, () -> new QuantSpec("rtn", 4, 32, true, 0, 0, QuantSpec.Rotation.NONE, true));
        assertThrows(IllegalArgumentException.class, () -> QuantSpec.of("rtn", QuantConfig.q4_1().withScaleFormat(QuantConfig.ScaleFormat.F32)));
    }

    @Test
    void numbersPastIntNameTheSpecAndTheRange() {
        var g = assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("rtn:w4g99999999999")).getMessage();
        assertTrue(g.startsWith("bad --quant spec 'rtn:w4g99999999999': group size must be 1..2147483647, got 99999999999."), g);
        assertFalse(g.contains("For input string"), g);
        var w = assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("gptq:w99999999999999999999999")).getMessage();
        assertTrue(w.contains("weight bits must be 2..8, got 99999999999999999999999"), w);
        var kv = assertThrows(IllegalArgumentException.class, () -> QuantSpec.parse("kv0")).getMessage();
        assertTrue(kv.contains("KV-cache bits must be 2..8, got 0"), kv);
        assertEquals(2147483647, QuantSpec.parse("rtn:w4g2147483647").groupSize(), "the top of the range is accepted");
        assertEquals(128, QuantSpec.parse("rtn:w4g000128").groupSize());
    }
}
