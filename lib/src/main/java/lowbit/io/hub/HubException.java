package lowbit.io.hub;

/** A download from the Hub failed; the message names the URL and what to do about it. */
public class HubException extends RuntimeException {
    private final String url;
    private final int status;

    public HubException(String url, int status, String message) {
        super(message);
        this.url = url;
        this.status = status;
    }

    public HubException(String url, String message, Throwable cause) {
        super(message, cause);
        this.url = url;
        this.status = 0;
    }

    public String url() {
        return url;
    }

    /** The HTTP status, or 0 when the failure was not an HTTP answer (network, size, checksum). */
    public int status() {
        return status;
    }
}
