package lowbit.cuda;

import jcuda.driver.CUdeviceptr;

// THROWAWAY (gpufwd): gpuquant's class by the contract's signature, only so this branch compiles; deleted before the final commit.
public final class DeviceFakeQuant {
    public static void perToken(Cuda cuda, CUdeviceptr x, int rows, int cols, int bits) { throw new UnsupportedOperationException(); }
    public static void perTensor(Cuda cuda, CUdeviceptr x, int rows, int cols, int bits, float scale) { throw new UnsupportedOperationException(); }
    public static void kv(Cuda cuda, CUdeviceptr x, int rows, int kvHeads, int headDim, int bits, int groupSize) { throw new UnsupportedOperationException(); }
}
