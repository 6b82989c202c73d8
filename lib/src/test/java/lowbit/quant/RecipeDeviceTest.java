package lowbit.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import lowbit.cuda.Device;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Which device a recipe quantizes on, decided without a GPU: GPTQ and AWQ (and RTN or runtime-only specs, which fit
 * nothing costly) go to the GPU; a step with no GPU path is refused in one line when cuda was asked for by name, and
 * runs on the CPU when the GPU came from auto.
 */
class RecipeDeviceTest {
    @ParameterizedTest
    @ValueSource(strings = {"gptq:w4g128", "awq:w4g128", "gptq:w3g128+kv4", "rtn:w4g128", "kv4", "gptq:w4a8"})
    void gpuMethodsRunOnTheGpuWhetherAskedOrAuto(String spec) {
        QuantizationRecipe r = QuantizationRecipe.of(spec);
        assertNull(r.cpuOnlyStep(), spec);
        assertEquals(Device.CUDA, r.device(Device.CUDA, true), spec);
        assertEquals(Device.CUDA, r.device(Device.CUDA, false), spec);
        assertEquals(Device.CPU, r.device(Device.CPU, false), spec);
    }

    @ParameterizedTest
    @CsvSource(delimiter = ';', value = {
            "billm:w1g128; method billm",
            "smoothquant:w8a8; method smoothquant",
            "quarot+gptq:w4a8; the quarot rotation",
            "quarot; the quarot rotation"})
    void stepsWithoutAGpuPathAreRefusedWhenCudaIsNamed(String spec, String step) {
        QuantizationRecipe r = QuantizationRecipe.of(spec);
        assertEquals(step, r.cpuOnlyStep());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> r.device(Device.CUDA, true));
        assertEquals("--device cuda: --quant " + QuantSpec.parse(spec) + " has no GPU path (" + step + " runs on the CPU only); "
                + "use --device cpu, or --device auto to run it on the CPU", e.getMessage());
        assertEquals(Device.CPU, r.device(Device.CUDA, false), spec + " with auto");
        // apply refuses it too, before touching the model
        assertThrows(IllegalArgumentException.class, () -> r.apply(null, null, null, Device.CUDA));
    }

    @Test
    void staticActivationScalesAreCalibratedOnTheCpuOnly() {
        QuantizationRecipe r = QuantizationRecipe.of("gptq:w4a8").withRuntime(new QuantizationRecipe.RuntimeOptions(true, 0, 0, 0));
        assertEquals("--act-static's calibration of activation scales", r.cpuOnlyStep());
        assertThrows(IllegalArgumentException.class, () -> r.device(Device.CUDA, true));
        assertEquals(Device.CPU, r.device(Device.CUDA, false));
    }
}
