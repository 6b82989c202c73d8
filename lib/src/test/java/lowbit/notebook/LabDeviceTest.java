package lowbit.notebook;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import jdk.incubator.vector.FloatVector;
import lowbit.cuda.Cuda;
import lowbit.cuda.CudaException;
import lowbit.cuda.Device;
import lowbit.tensor.Parallel;
import lowbit.tensor.WeightFormat;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** A notebook picks its device and weight format with one call each; the session starts on the CPU in fp32. */
class LabDeviceTest {
    @AfterEach
    void backToTheDefaults() {
        Lab.device("cpu");
        Lab.weights("fp32");
    }

    @Test
    void theSessionStartsOnTheCpuAndShowsWhatWasChosenAsOneLine() {
        assertEquals(Device.CPU, Lab.device());
        assertEquals(WeightFormat.FP32, Lab.weights());
        assertEquals("cpu-java-vector fp32", Lab.device("cpu").toString());
        assertEquals("cpu-java-vector bf16", Lab.weights("bf16").toString());
        assertEquals(WeightFormat.BF16, Lab.weights());
        assertEquals("java-vector " + Parallel.defaultThreads() + " thread" + (Parallel.defaultThreads() == 1 ? "" : "s") + ", "
                + FloatVector.SPECIES_PREFERRED.vectorBitSize() + "-bit vectors", Lab.backend().description());
        assertEquals(Cuda.available() ? Device.CUDA : Device.CPU, Lab.device("auto").device());
    }

    @Test
    void aDeviceThatCannotBeHadIsOneLineAndLeavesTheSessionAsItWas() {
        assertEquals("--device must be cpu, cuda or auto, got 'tpu'", assertThrows(IllegalArgumentException.class, () -> Lab.device("tpu")).getMessage());
        assertEquals("--weights must be fp32 or bf16, got 'fp16'", assertThrows(IllegalArgumentException.class, () -> Lab.weights("fp16")).getMessage());
        String reason = Cuda.unavailableReason();
        if (reason == null) {
            assertEquals("cuda " + Cuda.get().describe() + " fp32", Lab.device("cuda").toString());
        } else {
            assertEquals(reason, assertThrows(CudaException.class, () -> Lab.device("cuda")).getMessage());
            assertEquals(Device.CPU, Lab.device());
        }
        assertEquals(WeightFormat.FP32, Lab.weights());
    }
}
