/* The regression driver: main() for a harness built with the normal
 * compiler. Runs the built-in cases, then every regular file of each
 * directory (or file) named on the command line, in name order, and
 * prints what it ran. A crash or a FUZZ_CHECK abort fails the test. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

__attribute__((weak)) int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz driver: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *data = malloc(cap);
    size_t n;
    while (data && (n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            uint8_t *p = realloc(data, cap *= 2);
            if (!p) {
                free(data);
                data = NULL;
            }
            data = p;
        }
    }
    fclose(f);
    if (!data) {
        fprintf(stderr, "fuzz driver: out of memory reading %s\n", path);
        return -1;
    }
    /* An exact-size copy, so ASan sees a read past the end. */
    uint8_t *exact = malloc(len ? len : 1);
    if (!exact) {
        free(data);
        return -1;
    }
    memcpy(exact, data, len);
    free(data);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int run_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "fuzz driver: cannot open directory %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) break;
            names = p;
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int rv = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (run_file(path) < 0) rv = -1;
            else (*count)++;
        }
        free(names[i]);
    }
    free(names);
    return rv;
}

int main(int argc, char **argv)
{
    LLVMFuzzerInitialize(&argc, &argv);
    for (size_t i = 0; i < fuzz_n_cases; i++) {
        size_t len = fuzz_cases[i].len;
        uint8_t *copy = malloc(len ? len : 1);
        if (!copy) return 1;
        memcpy(copy, fuzz_cases[i].data, len);
        LLVMFuzzerTestOneInput(copy, len);
        free(copy);
    }
    size_t files = 0;
    int rv = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            if (run_dir(argv[i], &files) < 0) rv = 1;
        } else if (run_file(argv[i]) < 0) {
            rv = 1;
        } else {
            files++;
        }
    }
    printf("%zu built-in cases and %zu corpus files ran without a failure\n", fuzz_n_cases,
           files);
    return rv;
}
