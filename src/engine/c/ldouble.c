/* INCRBYFLOAT and HINCRBYFLOAT compute in C's long double and print with "%.17Lf" minus
 * trailing zeroes, so 10.5 + 0.1 is "10.6". Rust has no long double; this file gives the
 * same arithmetic and formatting as Redis's string2ld / ld2string(LD_STR_HUMAN). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>

#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;
    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';
    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' || (size_t)(eptr - buf) != slen ||
        ((errno == ERANGE) && (value == HUGE_VAL || value == -HUGE_VAL || fpclassify(value) == FP_ZERO)) ||
        isnan(value))
        return 0;
    *dp = value;
    return 1;
}

static int ld2string_human(char *buf, size_t len, long double value) {
    int l = snprintf(buf, len, "%.17Lf", value);
    if (l < 0 || (size_t)l + 1 > len) return 0;
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') { p--; l--; }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; l = 1; }
    return l;
}

/* Returns 0 and writes the sum to out/outlen; 1 when an operand is not a valid float; 2 when
 * the result is NaN or infinite. */
int redsim_incrbyfloat(const char *a, size_t alen, const char *b, size_t blen, char *out, size_t outcap,
                       size_t *outlen) {
    long double va, vb;
    if (!string2ld(a, alen, &va) || !string2ld(b, blen, &vb)) return 1;
    va += vb;
    if (isnan(va) || isinf(va)) return 2;
    int l = ld2string_human(out, outcap, va);
    if (l <= 0) return 2;
    *outlen = (size_t)l;
    return 0;
}
