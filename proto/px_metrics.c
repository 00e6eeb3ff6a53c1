/* Metric families with labelled series, rendered as Prometheus text 0.0.4.
 * Series of a family live in a chained hash table (lookup) and a doubly
 * linked list (creation order for rendering, O(1) removal). Label values are
 * normalised before hashing (valid UTF-8, at most VALUE_MAX bytes), so the
 * same outside bytes always find the same series and the rendering is
 * always valid UTF-8. */
#include "px_metrics.h"
#include "px_utf8.h"
#include "px_err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define VALUE_MAX 128

struct series {
    struct series *prev, *next; /* creation order */
    struct series *chain;       /* hash bucket */
    uint64_t hash;
    char *values[PX_METRICS_MAX_LABELS];
    double value;      /* counter / gauge; histogram: sum */
    uint64_t count;    /* histogram: observations */
    uint64_t *buckets; /* histogram: per bucket (not cumulative), n_buckets entries */
};

struct px_metric {
    struct px_metric *next;
    char *name, *help;
    enum px_metric_type type;
    size_t n_labels;
    char *labels[PX_METRICS_MAX_LABELS];
    double bounds[PX_METRICS_MAX_BUCKETS];
    size_t n_bounds;
    size_t max_series, n_series;
    struct series **table;
    size_t table_size; /* a power of two, or 0 before the first series */
    struct series *first, *last;
};

struct px_metrics {
    struct px_metric *first, *last;
};

/* Label values after normalisation (what is hashed, compared and kept). */
struct norm {
    char v[PX_METRICS_MAX_LABELS][VALUE_MAX + 1];
};

struct px_metrics *px_metrics_new(void)
{
    return calloc(1, sizeof(struct px_metrics));
}

static void series_free(struct series *s)
{
    for (size_t i = 0; i < PX_METRICS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->buckets);
    free(s);
}

static void family_free(struct px_metric *f)
{
    struct series *s = f->first;
    while (s) {
        struct series *n = s->next;
        series_free(s);
        s = n;
    }
    free(f->table);
    for (size_t i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void px_metrics_free(struct px_metrics *m)
{
    if (!m)
        return;
    struct px_metric *f = m->first;
    while (f) {
        struct px_metric *n = f->next;
        family_free(f);
        f = n;
    }
    free(m);
}

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (colon allowed only in metric names). */
static int valid_name(const char *s, int colon)
{
    if (!s || !*s)
        return 0;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        if (!(is_alpha_(c) || (colon && c == ':') || (i > 0 && is_digit(c))))
            return 0;
    }
    return 1;
}

static int valid_labels(const char *const *labels, size_t *n_out)
{
    size_t n = 0;
    for (; labels && labels[n]; n++) {
        if (n >= PX_METRICS_MAX_LABELS || !valid_name(labels[n], 0) ||
            strncmp(labels[n], "__", 2) == 0 || strcmp(labels[n], "le") == 0)
            return 0;
        for (size_t j = 0; j < n; j++)
            if (strcmp(labels[j], labels[n]) == 0)
                return 0;
    }
    *n_out = n;
    return 1;
}

static int valid_buckets(enum px_metric_type type, const double *b, size_t n)
{
    if (type != PX_METRIC_HISTOGRAM)
        return b == NULL && n == 0;
    if (n > PX_METRICS_MAX_BUCKETS || (n > 0 && !b))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return 0;
    return 1;
}

struct px_metric *px_metrics_family(struct px_metrics *m, const char *name, const char *help,
                                    enum px_metric_type type, const char *const *labels,
                                    const double *buckets, size_t n_buckets, size_t max_series)
{
    size_t n_labels = 0;
    if (!m || !valid_name(name, 1) || !valid_labels(labels, &n_labels) ||
        (type != PX_METRIC_COUNTER && type != PX_METRIC_GAUGE && type != PX_METRIC_HISTOGRAM) ||
        !valid_buckets(type, buckets, n_buckets))
        return NULL;
    for (struct px_metric *f = m->first; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return NULL;
    struct px_metric *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto out_free;
    for (size_t i = 0; i < n_labels; i++) {
        f->labels[i] = strdup(labels[i]);
        if (!f->labels[i])
            goto out_free;
        f->n_labels = i + 1;
    }
    if (n_buckets)
        memcpy(f->bounds, buckets, n_buckets * sizeof(double));
    f->n_bounds = n_buckets;
    f->max_series = max_series ? max_series : PX_METRICS_DEFAULT_MAX_SERIES;
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
out_free:
    family_free(f);
    return NULL;
}

/* Copies s into out as valid UTF-8 (invalid bytes become U+FFFD), cut on a
 * character boundary to at most VALUE_MAX bytes. */
static void normalise(const char *s, char *out)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), o = 0;
    for (size_t i = 0; i < n;) {
        size_t k = px_utf8_seq(p + i, n - i);
        const unsigned char *src = p + i;
        size_t olen = k;
        if (k == 0) {
            src = (const unsigned char *)"\xef\xbf\xbd";
            olen = 3;
            k = 1;
        }
        if (o + olen > VALUE_MAX)
            break;
        memcpy(out + o, src, olen);
        o += olen;
        i += k;
    }
    out[o] = '\0';
}

static uint64_t hash_values(const struct px_metric *f, const struct norm *nv)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < f->n_labels; i++) {
        for (const unsigned char *p = (const unsigned char *)nv->v[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* a separator no UTF-8 text holds */
    }
    return h;
}

static void norm_values(const struct px_metric *f, const char *const *values, struct norm *nv)
{
    for (size_t i = 0; i < f->n_labels; i++)
        normalise(values ? values[i] : NULL, nv->v[i]);
}

static struct series *find(const struct px_metric *f, const struct norm *nv, uint64_t h)
{
    if (!f->table_size)
        return NULL;
    for (struct series *s = f->table[h & (f->table_size - 1)]; s; s = s->chain) {
        if (s->hash != h)
            continue;
        size_t i = 0;
        while (i < f->n_labels && strcmp(s->values[i], nv->v[i]) == 0)
            i++;
        if (i == f->n_labels)
            return s;
    }
    return NULL;
}

/* Doubles the table (or makes the first) when it is 3/4 full. */
static int grow(struct px_metric *f)
{
    if (f->table_size && f->n_series < f->table_size / 4 * 3)
        return 0;
    size_t size = f->table_size ? f->table_size * 2 : 16;
    struct series **t = calloc(size, sizeof(*t));
    if (!t)
        return PX_ERR_NOMEM;
    for (struct series *s = f->first; s; s = s->next) {
        s->chain = t[s->hash & (size - 1)];
        t[s->hash & (size - 1)] = s;
    }
    free(f->table);
    f->table = t;
    f->table_size = size;
    return 0;
}

static struct series *create(struct px_metric *f, const struct norm *nv, uint64_t h)
{
    if (grow(f) < 0)
        return NULL;
    struct series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hash = h;
    for (size_t i = 0; i < f->n_labels; i++) {
        s->values[i] = strdup(nv->v[i]);
        if (!s->values[i])
            goto out_free;
    }
    if (f->type == PX_METRIC_HISTOGRAM && f->n_bounds) {
        s->buckets = calloc(f->n_bounds, sizeof(uint64_t));
        if (!s->buckets)
            goto out_free;
    }
    s->chain = f->table[h & (f->table_size - 1)];
    f->table[h & (f->table_size - 1)] = s;
    s->prev = f->last;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    f->n_series++;
    return s;
out_free:
    series_free(s);
    return NULL;
}

/* The series for values, created if new; past the cap a new label set
 * lands in the overflow series. NULL when out of memory. */
static struct series *lookup(struct px_metric *f, const char *const *values)
{
    struct norm nv;
    norm_values(f, values, &nv);
    uint64_t h = hash_values(f, &nv);
    struct series *s = find(f, &nv, h);
    if (s)
        return s;
    if (f->n_series >= f->max_series) {
        for (size_t i = 0; i < f->n_labels; i++)
            memcpy(nv.v[i], PX_METRICS_OVERFLOW, sizeof(PX_METRICS_OVERFLOW));
        h = hash_values(f, &nv);
        s = find(f, &nv, h);
        if (s)
            return s;
        /* The overflow series itself may exceed the cap by one. */
    }
    return create(f, &nv, h);
}

void px_metric_add(struct px_metric *f, const char *const *values, double v)
{
    if (!f || f->type == PX_METRIC_HISTOGRAM || (f->type == PX_METRIC_COUNTER && !(v >= 0)))
        return;
    struct series *s = lookup(f, values);
    if (s)
        s->value += v;
}

void px_metric_set(struct px_metric *f, const char *const *values, double v)
{
    if (!f || f->type != PX_METRIC_GAUGE)
        return;
    struct series *s = lookup(f, values);
    if (s)
        s->value = v;
}

void px_metric_observe(struct px_metric *f, const char *const *values, double v)
{
    if (!f || f->type != PX_METRIC_HISTOGRAM)
        return;
    struct series *s = lookup(f, values);
    if (!s)
        return;
    s->count++;
    s->value += v;
    for (size_t i = 0; i < f->n_bounds; i++) {
        if (v <= f->bounds[i]) {
            s->buckets[i]++;
            break;
        }
    }
}

static struct series *find_values(const struct px_metric *f, const char *const *values)
{
    struct norm nv;
    norm_values(f, values, &nv);
    return find(f, &nv, hash_values(f, &nv));
}

double px_metric_get(const struct px_metric *f, const char *const *values)
{
    if (!f)
        return 0;
    const struct series *s = find_values(f, values);
    if (!s)
        return 0;
    return f->type == PX_METRIC_HISTOGRAM ? (double)s->count : s->value;
}

void px_metric_remove(struct px_metric *f, const char *const *values)
{
    if (!f)
        return;
    struct series *s = find_values(f, values);
    if (!s)
        return;
    struct series **pp = &f->table[s->hash & (f->table_size - 1)];
    while (*pp != s)
        pp = &(*pp)->chain;
    *pp = s->chain;
    if (s->prev)
        s->prev->next = s->next;
    else
        f->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        f->last = s->prev;
    f->n_series--;
    series_free(s);
}

/* ---- rendering ---- */

/* A sample value as Prometheus parses it (Go's ParseFloat): integers in
 * full without exponent, other numbers in the shortest form that reads back
 * the same, NaN and +Inf / -Inf by name. */
static int append_number(struct px_buf *out, double v)
{
    if (isnan(v))
        return px_buf_append_str(out, "NaN");
    if (isinf(v))
        return px_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    if (v == 0)
        return px_buf_append_str(out, "0"); /* also -0 */
    if (v == floor(v) && fabs(v) < 1e21)
        return px_buf_appendf(out, "%.0f", v);
    char tmp[40];
    for (int prec = 15; prec <= 17; prec++) {
        int n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v);
        if (n < 0 || (size_t)n >= sizeof(tmp))
            return PX_ERR_INVAL; /* cannot happen: %.17g of a double fits */
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    return px_buf_append_str(out, tmp);
}

static int append_u64(struct px_buf *out, uint64_t v)
{
    return px_buf_appendf(out, "%llu", (unsigned long long)v);
}

/* Escapes backslash and newline (HELP), and double quote (label values). */
static int append_escaped(struct px_buf *out, const char *s, int quote)
{
    int rc = 0;
    const char *run = s;
    for (const char *p = s; *p && rc == 0; p++) {
        const char *esc = *p == '\\'             ? "\\\\"
                          : *p == '\n'           ? "\\n"
                          : (quote && *p == '"') ? "\\\""
                                                 : NULL;
        if (!esc)
            continue;
        rc = px_buf_append(out, run, (size_t)(p - run));
        if (rc == 0)
            rc = px_buf_append_str(out, esc);
        run = p + 1;
    }
    if (rc == 0)
        rc = px_buf_append_str(out, run);
    return rc;
}

/* name{l1="v1",...[,le="x"]} with a space after it. le may be NULL; the
 * braces are left out when there is no label at all. */
static int append_sample_name(struct px_buf *out, const struct px_metric *f, const struct series *s,
                              const char *suffix, const double *le, int le_inf)
{
    int rc = px_buf_append_str(out, f->name);
    if (rc == 0 && suffix)
        rc = px_buf_append_str(out, suffix);
    int any = f->n_labels > 0 || le || le_inf;
    if (rc == 0 && any)
        rc = px_buf_append(out, "{", 1);
    for (size_t i = 0; i < f->n_labels && rc == 0; i++) {
        rc = px_buf_appendf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
        if (rc == 0)
            rc = append_escaped(out, s->values[i], 1);
        if (rc == 0)
            rc = px_buf_append(out, "\"", 1);
    }
    if (rc == 0 && (le || le_inf)) {
        rc = px_buf_append_str(out, f->n_labels ? ",le=\"" : "le=\"");
        if (rc == 0)
            rc = le ? append_number(out, *le) : px_buf_append_str(out, "+Inf");
        if (rc == 0)
            rc = px_buf_append(out, "\"", 1);
    }
    if (rc == 0 && any)
        rc = px_buf_append(out, "}", 1);
    if (rc == 0)
        rc = px_buf_append(out, " ", 1);
    return rc;
}

static int render_histogram(struct px_buf *out, const struct px_metric *f, const struct series *s)
{
    int rc = 0;
    uint64_t cum = 0;
    for (size_t i = 0; i < f->n_bounds && rc == 0; i++) {
        cum += s->buckets[i];
        rc = append_sample_name(out, f, s, "_bucket", &f->bounds[i], 0);
        if (rc == 0)
            rc = append_u64(out, cum);
        if (rc == 0)
            rc = px_buf_append(out, "\n", 1);
    }
    if (rc == 0)
        rc = append_sample_name(out, f, s, "_bucket", NULL, 1);
    if (rc == 0)
        rc = append_u64(out, s->count);
    if (rc == 0)
        rc = px_buf_append(out, "\n", 1);
    if (rc == 0)
        rc = append_sample_name(out, f, s, "_sum", NULL, 0);
    if (rc == 0)
        rc = append_number(out, s->value);
    if (rc == 0)
        rc = px_buf_append(out, "\n", 1);
    if (rc == 0)
        rc = append_sample_name(out, f, s, "_count", NULL, 0);
    if (rc == 0)
        rc = append_u64(out, s->count);
    if (rc == 0)
        rc = px_buf_append(out, "\n", 1);
    return rc;
}

static int render_family(struct px_buf *out, const struct px_metric *f)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    int rc = px_buf_appendf(out, "# HELP %s ", f->name);
    if (rc == 0)
        rc = append_escaped(out, f->help, 0);
    if (rc == 0)
        rc = px_buf_appendf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
    for (const struct series *s = f->first; s && rc == 0; s = s->next) {
        if (f->type == PX_METRIC_HISTOGRAM) {
            rc = render_histogram(out, f, s);
            continue;
        }
        rc = append_sample_name(out, f, s, NULL, NULL, 0);
        if (rc == 0)
            rc = append_number(out, s->value);
        if (rc == 0)
            rc = px_buf_append(out, "\n", 1);
    }
    return rc;
}

int px_metrics_render(const struct px_metrics *m, struct px_buf *out)
{
    int rc = 0;
    for (const struct px_metric *f = m ? m->first : NULL; f && rc == 0; f = f->next)
        rc = render_family(out, f);
    return rc == 0 ? 0 : PX_ERR_NOMEM;
}
