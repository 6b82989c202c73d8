// Golden fixtures for lowbit.io.gguf.QuantizeTest, made by llama.cpp's own ggml (libggml-base):
// a fixed input of ROWS x COLS floats and an importance vector are quantized with ggml_quantize_chunk
// (what llama-quantize calls) to every type QuantizeTest covers, without and with the importance, and the
// bytes dequantized again with ggml's to_float. See README.md here for the command that builds and runs it.
#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ggml.h"

#define ROWS 6
#define COLS 512

static uint64_t state = 0x9E3779B97F4A7C15ull;

// xorshift64*: a uniform float in [0, 1) from its top 24 bits
static float uniform(void) {
    state ^= state >> 12; state ^= state << 25; state ^= state >> 27;
    return (float) ((state * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f;
}

// roughly normal: the sum of four uniforms, centred and scaled to unit variance
static float normal(void) {
    return (uniform() + uniform() + uniform() + uniform() - 2.0f) * 1.7320508f;
}

static void write_file(const char * name, const void * data, size_t size) {
    FILE * f = fopen(name, "wb");
    if (!f || fwrite(data, 1, size, f) != size) { perror(name); exit(1); }
    fclose(f);
}

int main(void) {
    static float x[ROWS * COLS], imp[COLS], deq[ROWS * COLS];
    static uint8_t q[ROWS * COLS * 4];
    for (int j = 0; j < COLS; j++) {
        // row 0: weight-like values, then large ones (near fp16's range for Q8_0's d of a block)
        x[0 * COLS + j] = (j < 256 ? 0.02f : 300.0f) * normal();
        // row 1: heavy tails (normal over the square root of a uniform)
        x[1 * COLS + j] = 0.01f * normal() / sqrtf(uniform() + 1e-3f);
        // row 2: a zero super-block, then every other group of 16 zero
        x[2 * COLS + j] = j < 256 || (j / 16) % 2 == 0 ? 0.0f : 0.05f * normal();
        // row 3: a positive constant super-block, then values on a grid of eighths (exact ties in the
        // roundings), then a negative constant
        x[3 * COLS + j] = j < 256 ? 0.5f : j < 384 ? roundf(4.0f * normal()) / 8.0f : -0.25f;
        // row 4: small noise and two outliers
        x[4 * COLS + j] = j == 100 ? 5.0f : j == 300 ? -3.0f : 0.01f * normal();
        // row 5: all positive, then tiny values whose scales are fp16 subnormals
        x[5 * COLS + j] = j < 256 ? 0.1f + 0.05f * uniform() : 1e-6f * normal();
        // importance: log-normal, with a few unused (zero) columns
        imp[j] = j % 97 == 5 ? 0.0f : expf(1.5f * normal()) * 1e-3f;
    }
    write_file("input.f32", x, sizeof x);
    write_file("importance.f32", imp, sizeof imp);

    const enum ggml_type types[] = {
        GGML_TYPE_F32, GGML_TYPE_F16, GGML_TYPE_BF16, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, GGML_TYPE_Q4_1,
        GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K, GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K,
        GGML_TYPE_Q6_K,
    };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        for (int weighted = 0; weighted < 2; weighted++) {
            enum ggml_type type = types[t];
            memset(q, 0, sizeof q);
            size_t size = ggml_quantize_chunk(type, x, q, 0, ROWS, COLS, weighted ? imp : NULL);
            if (size != ROWS * ggml_row_size(type, COLS)) { fprintf(stderr, "unexpected size\n"); return 1; }
            if (type == GGML_TYPE_F32) memcpy(deq, q, sizeof deq); // ggml has no to_float for F32
            else ggml_get_type_traits(type)->to_float(q, deq, ROWS * COLS);
            // files are named after lowbit's GgmlType constants: ggml's type name in upper case
            char upper[16], name[64];
            const char * tn = ggml_type_name(type);
            size_t k = 0;
            for (; tn[k] && k + 1 < sizeof upper; k++) upper[k] = (char) toupper((unsigned char) tn[k]);
            upper[k] = 0;
            snprintf(name, sizeof name, "%s%s.bin", upper, weighted ? ".imatrix" : "");
            write_file(name, q, size);
            snprintf(name, sizeof name, "%s%s.dequant.f32", upper, weighted ? ".imatrix" : "");
            write_file(name, deq, sizeof deq);
        }
    }
    return 0;
}
