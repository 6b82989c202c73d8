package lowbit.cuda;

/**
 * A GPU that cannot be used as asked: no driver, no device, PTX the driver refuses, not enough device memory, a kernel
 * that failed. The message is one line that says what was expected; the command line prints it and exits with 2.
 */
public class CudaException extends IllegalStateException {
    public CudaException(String message) {
        super(message);
    }

    public CudaException(String message, Throwable cause) {
        super(message, cause);
    }
}
