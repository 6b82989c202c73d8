package lowbit.io.gguf;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.stream.IntStream;

/**
 * ggml's block formats turned back into float32, following ggml-quants.c's dequantize_row_* with the
 * same order of float operations, so the results equal ggml's (and the gguf Python package's) bit for bit.
 * Block layouts are those of ggml-common.h (all little-endian, fp16 scales).
 */
public final class Dequantize {
    private Dequantize() {}

    /** Blocks per parallel work item: big enough to amortize the task, small enough to spread a 2 MB tensor over cores. */
    private static final int BLOCKS_PER_CHUNK = 2048;

    /**
     * Dequantizes {@code elements} elements stored from {@code src}'s position on into {@code dst[0..elements)}.
     * The caller has checked that the type is supported, that elements is a multiple of the block size
     * and that src holds enough bytes.
     */
    public static void dequantize(GgmlType type, ByteBuffer src, int elements, float[] dst) {
        if (!type.isSupported()) throw new IllegalArgumentException("cannot dequantize " + type);
        ByteBuffer in = src.slice().order(ByteOrder.LITTLE_ENDIAN);
        if (type == GgmlType.F32) {
            in.asFloatBuffer().get(dst, 0, elements);
            return;
        }
        int blocks = elements / type.blockSize;
        int chunks = (blocks + BLOCKS_PER_CHUNK - 1) / BLOCKS_PER_CHUNK;
        IntStream.range(0, chunks).parallel().forEach(c -> {
            int first = c * BLOCKS_PER_CHUNK;
            int count = Math.min(BLOCKS_PER_CHUNK, blocks - first);
            byte[] bytes = new byte[count * type.typeSize];
            in.get(first * type.typeSize, bytes);
            blocks(type, bytes, count, dst, first * type.blockSize);
        });
    }

    /** Dequantizes {@code count} whole blocks held in {@code b} into {@code y} from {@code yo} on. */
    static void blocks(GgmlType type, byte[] b, int count, float[] y, int yo) {
        switch (type) {
            case F16 -> { for (int i = 0; i < count; i++) y[yo + i] = half(b, 2 * i); }
            case BF16 -> { for (int i = 0; i < count; i++) y[yo + i] = Float.intBitsToFloat(u16(b, 2 * i) << 16); }
            case Q8_0 -> q8_0(b, count, y, yo);
            case Q4_0 -> q4_0(b, count, y, yo);
            case Q4_1 -> q4_1(b, count, y, yo);
            case Q5_0 -> q5_0(b, count, y, yo);
            case Q5_1 -> q5_1(b, count, y, yo);
            case Q2_K -> q2_k(b, count, y, yo);
            case Q3_K -> q3_k(b, count, y, yo);
            case Q4_K -> q4_k(b, count, y, yo);
            case Q5_K -> q5_k(b, count, y, yo);
            case Q6_K -> q6_k(b, count, y, yo);
            default -> throw new IllegalArgumentException("cannot dequantize " + type);
        }
    }

    // block_q8_0 { half d; int8 qs[32]; }: x = qs * d
    private static void q8_0(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 34;
            float d = half(b, o);
            for (int j = 0; j < 32; j++) y[yo + 32 * i + j] = b[o + 2 + j] * d;
        }
    }

    // block_q4_0 { half d; uint8 qs[16]; }: low nibbles are elements 0..15, high nibbles 16..31; x = (q - 8) * d
    private static void q4_0(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 18, out = yo + 32 * i;
            float d = half(b, o);
            for (int j = 0; j < 16; j++) {
                int q = b[o + 2 + j] & 0xFF;
                y[out + j] = ((q & 0x0F) - 8) * d;
                y[out + j + 16] = ((q >>> 4) - 8) * d;
            }
        }
    }

    // block_q4_1 { half d; half m; uint8 qs[16]; }: x = q * d + m
    private static void q4_1(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 20, out = yo + 32 * i;
            float d = half(b, o), m = half(b, o + 2);
            for (int j = 0; j < 16; j++) {
                int q = b[o + 4 + j] & 0xFF;
                y[out + j] = (q & 0x0F) * d + m;
                y[out + j + 16] = (q >>> 4) * d + m;
            }
        }
    }

    // block_q5_0 { half d; uint8 qh[4]; uint8 qs[16]; }: the fifth bit of element j is bit j of the little-endian
    // uint32 qh; x = (q - 16) * d
    private static void q5_0(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 22, out = yo + 32 * i;
            float d = half(b, o);
            int qh = u32(b, o + 2);
            for (int j = 0; j < 16; j++) {
                int q = b[o + 6 + j] & 0xFF;
                y[out + j] = (((q & 0x0F) | ((qh >>> j) << 4 & 0x10)) - 16) * d;
                y[out + j + 16] = (((q >>> 4) | ((qh >>> (j + 12)) & 0x10)) - 16) * d;
            }
        }
    }

    // block_q5_1 { half d; half m; uint8 qh[4]; uint8 qs[16]; }: x = q * d + m
    private static void q5_1(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 24, out = yo + 32 * i;
            float d = half(b, o), m = half(b, o + 2);
            int qh = u32(b, o + 4);
            for (int j = 0; j < 16; j++) {
                int q = b[o + 8 + j] & 0xFF;
                y[out + j] = ((q & 0x0F) | ((qh >>> j) << 4 & 0x10)) * d + m;
                y[out + j + 16] = ((q >>> 4) | ((qh >>> (j + 12)) & 0x10)) * d + m;
            }
        }
    }

    // block_q2_K { uint8 scales[16]; uint8 qs[64]; half d; half dmin; }: 16 groups of 16, each scale byte a 4-bit
    // scale (low) and min (high); qs byte l of each 128-element half holds elements l, l+32, l+64, l+96 (2 bits each)
    private static void q2_k(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 84, out = yo + 256 * i, is = o;
            float d = half(b, o + 80), min = half(b, o + 82);
            for (int n = 0, q = o + 16; n < 256; n += 128, q += 32) {
                for (int shift = 0; shift < 8; shift += 2) {
                    for (int half16 = 0; half16 < 32; half16 += 16) {
                        int sc = b[is++] & 0xFF;
                        float dl = d * (sc & 0x0F), ml = min * (sc >>> 4);
                        for (int l = 0; l < 16; l++) y[out++] = dl * ((b[q + half16 + l] >>> shift) & 3) - ml;
                    }
                }
            }
        }
    }

    // block_q3_K { uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d; }: 2 low bits packed as in Q2_K, the
    // third bit of element j at bit j/32 of hmask[j%32] (a clear bit subtracts 4); 16 signed 6-bit group scales
    private static void q3_k(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 110, hm = o, sc = o + 96, out = yo + 256 * i, is = 0, m = 1;
            float dAll = half(b, o + 108);
            for (int n = 0, q = o + 32; n < 256; n += 128, q += 32) {
                for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                    for (int half16 = 0; half16 < 32; half16 += 16) {
                        float dl = dAll * scaleQ3K(b, sc, is++);
                        for (int l = 0; l < 16; l++) {
                            int low = (b[q + half16 + l] >>> shift) & 3;
                            y[out++] = dl * (low - ((b[hm + half16 + l] & m) != 0 ? 0 : 4));
                        }
                    }
                }
            }
        }
    }

    /** Q3_K's group j scale, -32..31: low nibble from byte j (j < 8) or j-8's high nibble, top two bits from byte 8 + j%4. */
    static int scaleQ3K(byte[] b, int sc, int j) {
        int low = j < 8 ? b[sc + j] & 0x0F : (b[sc + j - 8] & 0xFF) >>> 4;
        return (low | ((b[sc + 8 + j % 4] & 0xFF) >>> (2 * (j / 4)) & 3) << 4) - 32;
    }

    // block_q4_K { half d; half dmin; uint8 scales[12]; uint8 qs[128]; }: 8 sub-blocks of 32 with 6-bit
    // scale and min; each 32 bytes of qs hold two sub-blocks (low nibbles, then high nibbles).
    private static void q4_k(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 144, sc = o + 4, qs = o + 16, out = yo + 256 * i;
            float d = half(b, o), dmin = half(b, o + 2);
            for (int j = 0, is = 0; j < 256; j += 64, is += 2) {
                float d1 = d * scaleK4(b, sc, is), m1 = dmin * minK4(b, sc, is);
                float d2 = d * scaleK4(b, sc, is + 1), m2 = dmin * minK4(b, sc, is + 1);
                for (int l = 0; l < 32; l++) y[out + j + l] = d1 * (b[qs + l] & 0x0F) - m1;
                for (int l = 0; l < 32; l++) y[out + j + 32 + l] = d2 * ((b[qs + l] & 0xFF) >>> 4) - m2;
                qs += 32;
            }
        }
    }

    // get_scale_min_k4: sub-blocks 0..3 keep scale and min in the low 6 bits of bytes 0..3 and 4..7; sub-blocks
    // 4..7 take their low 4 bits from bytes 8..11 and their top 2 bits from the spare bits of bytes 0..7.
    static int scaleK4(byte[] b, int q, int j) {
        return j < 4 ? b[q + j] & 63 : (b[q + j + 4] & 0x0F) | (((b[q + j - 4] & 0xFF) >>> 6) << 4);
    }

    static int minK4(byte[] b, int q, int j) {
        return j < 4 ? b[q + j + 4] & 63 : ((b[q + j + 4] & 0xFF) >>> 4) | (((b[q + j] & 0xFF) >>> 6) << 4);
    }

    // block_q5_K { half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]; }: as Q4_K plus a fifth bit
    // per element, for sub-block pair p at bits 2p and 2p+1 of qh[l]
    private static void q5_k(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 176, sc = o + 4, qh = o + 16, ql = o + 48, out = yo + 256 * i;
            float d = half(b, o), dmin = half(b, o + 2);
            for (int j = 0, is = 0, u1 = 1, u2 = 2; j < 256; j += 64, is += 2, u1 <<= 2, u2 <<= 2, ql += 32) {
                float d1 = d * scaleK4(b, sc, is), m1 = dmin * minK4(b, sc, is);
                float d2 = d * scaleK4(b, sc, is + 1), m2 = dmin * minK4(b, sc, is + 1);
                for (int l = 0; l < 32; l++) y[out + j + l] = d1 * ((b[ql + l] & 0x0F) + ((b[qh + l] & u1) != 0 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++) y[out + j + 32 + l] = d2 * (((b[ql + l] & 0xFF) >>> 4) + ((b[qh + l] & u2) != 0 ? 16 : 0)) - m2;
            }
        }
    }

    // block_q6_K { uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d; }: 6-bit q = low 4 bits from ql,
    // high 2 bits from qh, minus 32; x = d * scale[16-element group] * q
    private static void q6_k(byte[] b, int count, float[] y, int yo) {
        for (int i = 0; i < count; i++) {
            int o = i * 210, ql = o, qh = o + 128, sc = o + 192, out = yo + 256 * i;
            float d = half(b, o + 208);
            for (int n = 0; n < 256; n += 128) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int lo0 = b[ql + l] & 0xFF, lo1 = b[ql + l + 32] & 0xFF, h = b[qh + l] & 0xFF;
                    int q1 = ((lo0 & 0x0F) | ((h & 3) << 4)) - 32;
                    int q2 = ((lo1 & 0x0F) | (((h >>> 2) & 3) << 4)) - 32;
                    int q3 = ((lo0 >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
                    int q4 = ((lo1 >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
                    y[out + n + l] = d * b[sc + is] * q1;
                    y[out + n + l + 32] = d * b[sc + is + 2] * q2;
                    y[out + n + l + 64] = d * b[sc + is + 4] * q3;
                    y[out + n + l + 96] = d * b[sc + is + 6] * q4;
                }
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    }

    private static int u16(byte[] b, int o) {
        return (b[o] & 0xFF) | (b[o + 1] & 0xFF) << 8;
    }

    private static int u32(byte[] b, int o) {
        return u16(b, o) | u16(b, o + 2) << 16;
    }

    static float half(byte[] b, int o) {
        return Float.float16ToFloat((short) u16(b, o));
    }
}
