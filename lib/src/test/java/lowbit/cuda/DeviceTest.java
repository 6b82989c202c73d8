package lowbit.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The device choice, on whatever machine the tests run: with a GPU, auto picks it; without one, one clear line. */
class DeviceTest {
    @Test
    void autoPicksTheGpuExactlyWhenOneOpens() {
        assertEquals(Cuda.available() ? Device.CUDA : Device.CPU, Device.choose("auto"));
        assertEquals(Device.choose("auto"), Device.choose(null));
        assertEquals(Device.CPU, Device.choose("cpu"));
        assertEquals(Device.CPU, Device.choose(" CPU "));
    }

    @Test
    void cudaWithoutAGpuIsOneLineNamingTheWayOut() {
        String reason = Cuda.unavailableReason();
        if (reason == null) {
            assertEquals(Device.CUDA, Device.choose("cuda"));
            return;
        }
        CudaException e = assertThrows(CudaException.class, () -> Device.choose("cuda"));
        assertEquals(reason, e.getMessage());
        assertTrue(e.getMessage().startsWith("no CUDA GPU: "), e.getMessage());
        assertTrue(e.getMessage().contains("--device cpu"), e.getMessage());
        assertTrue(!e.getMessage().contains("\n"), e.getMessage());
        // the same answer again, not a NoClassDefFoundError from JCuda's failed class initialization
        assertEquals(reason, assertThrows(CudaException.class, Cuda::get).getMessage());
    }

    @Test
    void unknownDeviceNamesTheOption() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Device.choose("tpu"));
        assertEquals("--device must be cpu, cuda or auto, got 'tpu'", e.getMessage());
    }
}
