#include "es_cli.h"
#include "rt_file.h"

#include <errno.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int es_cli_fail(const char *msg, const char *arg)
{
    fprintf(stderr, "edge-sim: %s%s\n", msg, arg ? arg : "");
    return 2;
}

int es_offline_open(struct es_offline *o, const char *dir)
{
    char why[2048];
    if (wc_InitRng(&o->rng) != 0) {
        fprintf(stderr, "edge-sim: cannot seed a random generator\n");
        return -1;
    }
    if (es_certs_init(&o->certs, &o->rng, dir, ES_DEFAULT_SERVER_NAME, why, sizeof(why)) < 0 ||
        es_store_open(&o->store, dir, why, sizeof(why)) < 0) {
        fprintf(stderr, "edge-sim: %s\n", why);
        wc_FreeRng(&o->rng);
        return -1;
    }
    return 0;
}

void es_offline_close(struct es_offline *o)
{
    es_store_close(&o->store);
    es_certs_cleanup(&o->certs);
    wc_FreeRng(&o->rng);
}

int es_cli_valid_name(const char *n)
{
    size_t l = strlen(n);
    if (l == 0 || l > 64)
        return 0;
    for (size_t i = 0; i < l; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') ||
              (n[i] >= '0' && n[i] <= '9') || n[i] == '-' || n[i] == '_' || n[i] == '.'))
            return 0;
    return 1;
}

int es_cli_parse_duration(const char *s, long long min, long long max, long long *out)
{
    if (!s || *s < '0' || *s > '9')
        return -1; /* no sign, no space, no empty string */
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno)
        return -1;
    long long unit = 1;
    if (*end) {
        switch (*end) {
        case 's':
            break;
        case 'm':
            unit = 60;
            break;
        case 'h':
            unit = 3600;
            break;
        case 'd':
            unit = 86400;
            break;
        default:
            return -1;
        }
        if (end[1])
            return -1;
    }
    if (v > max / unit)
        return -1;
    v *= unit;
    if (v < min)
        return -1;
    *out = v;
    return 0;
}

char *es_cli_read_input(const char *path, const char *what)
{
    int err = 0;
    char *s = rt_file_read(path, 1 << 20, NULL, &err);
    if (!s)
        fprintf(stderr, "edge-sim: cannot read %s %s: %s\n", what, path,
                err == EFBIG ? "larger than 1 MiB" : strerror(err));
    return s;
}

int es_cli_write_private(const char *path, const void *data, size_t len)
{
    int rc = rt_file_write_private_len(path, data, len);
    if (rc < 0)
        fprintf(stderr, "edge-sim: cannot write %s: %s\n", path, strerror(errno));
    return rc;
}
