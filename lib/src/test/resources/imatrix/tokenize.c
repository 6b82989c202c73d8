// Prints llama.cpp's tokens of a text file, one per line, as llama-imatrix tokenizes its -f file:
// common_tokenize(ctx, text, add_special = true, parse_special = false), after dropping one trailing newline.
// Build: see make_fixture.sh.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "llama.h"

int main(int argc, char ** argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s MODEL.gguf TEXT\n", argv[0]); return 1; }
    FILE * f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 1; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char * text = malloc(n + 1);
    if (fread(text, 1, n, f) != (size_t) n) { perror("read"); return 1; }
    fclose(f);
    if (n > 0 && text[n - 1] == '\n') n--;
    text[n] = 0;
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    mp.vocab_only = true;
    struct llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab * vocab = llama_model_get_vocab(model);
    int cap = (int) n + 16;
    llama_token * toks = malloc(sizeof(llama_token) * cap);
    int k = llama_tokenize(vocab, text, (int) n, toks, cap, true, false);
    if (k < 0) { fprintf(stderr, "tokenize failed\n"); return 1; }
    for (int i = 0; i < k; i++) printf("%d\n", toks[i]);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
