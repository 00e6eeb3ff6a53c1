/* bench_store: what one PostgreSQL server gives a shared store, measured
 * through the edge's own code (es_store, es_live). scripts/bench_store.sh
 * starts the server and runs it; docs/scaling.md quotes the figures.
 *
 *   bench_store claims URL PROCS CLAIMS PRELOAD
 *       PROCS processes (one connection and one tunnel each) claim CLAIMS
 *       new hostnames each, all at once, with PRELOAD routes already held;
 *       prints claims per second, and the same for a wildcard claim.
 *   bench_store fanout URL EDGES LINKS CHANGES
 *       EDGES simulated edges (two connections each, as serve has: store
 *       and live view) heartbeat every second with LINKS links each, while
 *       CHANGES tunnel changes are made one at a time; prints the time
 *       from each commit until every edge saw the notice (p50, p99, max)
 *       and the heartbeat durations.
 *   bench_store reload URL TUNNELS ROUTES
 *       with TUNNELS tunnels and ROUTES routes in the store, the time one
 *       edge takes to reload its registry (what it does on every change)
 *       and the memory it holds for them. */
#include "es_live.h"
#include "es_registry.h"
#include "es_sql.h"
#include "es_store.h"
#include "px_err.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_store(struct es_store *st, const char *url)
{
    char why[512];
    if (es_store_open(st, url, why, sizeof(why)) < 0) {
        fprintf(stderr, "bench_store: %s\n", why);
        return -1;
    }
    return 0;
}

static int add_tunnel(struct es_store *st, const char *id, const char *name)
{
    struct es_tunnel_rec t;
    memset(&t, 0, sizeof(t));
    snprintf(t.id, sizeof(t.id), "%s", id);
    snprintf(t.name, sizeof(t.name), "%s", name);
    return es_store_tunnel_add(st, &t);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), cmp_double);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

/* ---- claims ---- */

/* One claimer: waits for the start byte on go, claims n names, writes its
 * seconds to out. */
static int claimer(const char *url, int idx, int n, int wildcard, int go, int out)
{
    struct es_store st;
    if (open_store(&st, url) < 0)
        return 1;
    char id[33], name[65];
    snprintf(id, sizeof(id), "%032d", 1000 + idx);
    snprintf(name, sizeof(name), "bench-%d", idx);
    if (add_tunnel(&st, id, name) < 0 && add_tunnel(&st, id, name) != PX_ERR_EXISTS)
        return 1;
    char b;
    if (read(go, &b, 1) != 1)
        return 1;
    double t0 = now_s();
    int failed = 0;
    for (int i = 0; i < n; i++) {
        char host[128];
        snprintf(host, sizeof(host), wildcard ? "*.w%d-%d.bench.test" : "p%d-%d.bench.test", idx,
                 i);
        struct es_route_conflict c;
        failed += es_store_route_claim(&st, host, id, &c) != 0;
    }
    double took = now_s() - t0;
    es_store_close(&st);
    double msg[2] = {took, failed};
    return write(out, msg, sizeof(msg)) == sizeof(msg) ? 0 : 1;
}

static int run_claims(const char *url, int procs, int n, int wildcard)
{
    int go[2], out[2];
    if (pipe(go) < 0 || pipe(out) < 0)
        return 1;
    for (int p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            close(go[1]);
            _exit(claimer(url, p + (wildcard ? 500 : 0), n, wildcard, go[0], out[1]));
        }
    }
    close(go[0]);
    usleep(300000); /* every claimer connected and made its tunnel */
    char start[256];
    memset(start, 1, sizeof(start));
    if (procs < 1 || procs > (int)sizeof(start) || write(go[1], start, (size_t)procs) != procs)
        return 1;
    double worst = 0, failed = 0;
    for (int p = 0; p < procs; p++) {
        double msg[2];
        if (read(out[0], msg, sizeof(msg)) != sizeof(msg))
            return 1;
        worst = msg[0] > worst ? msg[0] : worst;
        failed += msg[1];
    }
    while (wait(NULL) > 0)
        ;
    printf("claims: %s, %d connection(s) x %d: %.0f claims/s (%.1f ms each per connection), "
           "%.0f refused\n",
           wildcard ? "wildcards" : "exact names", procs, n, procs * n / worst, worst * 1000 / n,
           failed);
    return 0;
}

static int cmd_claims(const char *url, int procs, int n, int preload)
{
    struct es_store st;
    if (open_store(&st, url) < 0)
        return 1;
    /* The routes already held, by one tunnel, in one statement. */
    add_tunnel(&st, "00000000000000000000000000000001", "preload");
    /* In steps of 100k: each statement stays within the edge's statement
     * timeout (10 s). */
    for (int from = 1; from <= preload; from += 100000) {
        char sql[400];
        int to = from + 99999 < preload ? from + 99999 : preload;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO routes(hostname,tunnel_id) SELECT 'h' || g || '.load' || (g %% 1000)"
                 " || '.test', '00000000000000000000000000000001' FROM generate_series(%d,%d) g"
                 " ON CONFLICT DO NOTHING",
                 from, to);
        if (es_sql_exec(st.db, sql) < 0) {
            fprintf(stderr, "bench_store: preload: %s\n", es_sql_errmsg(st.db));
            return 1;
        }
    }
    es_sql_exec(st.db, "ANALYZE routes");
    es_store_close(&st);
    printf("claims with %d routes held already:\n", preload);
    return run_claims(url, procs, n, 0) || run_claims(url, procs, n / 4 ? n / 4 : 1, 1);
}

/* ---- notification fan-out ---- */

struct edge {
    struct es_store st;
    struct es_live lv;
    double seen;
};

static int cmd_fanout(const char *url, int n_edges, int links, int changes)
{
    struct edge *e = calloc((size_t)n_edges, sizeof(*e));
    struct pollfd *pf = calloc((size_t)n_edges, sizeof(*pf));
    struct es_link_info *li = calloc((size_t)links, sizeof(*li));
    if (!e || !pf || !li)
        return 1;
    char why[512];
    static const char *names[] = {"a.fanout.test"};
    for (int l = 0; l < links; l++) {
        static char ids[4096][17];
        snprintf(ids[l % 4096], 17, "c%015d", l);
        li[l] = (struct es_link_info){.conn_id = ids[l % 4096],
                                      .tunnel_id = "00000000000000000000000000000002",
                                      .connector = "bench",
                                      .conn_index = l,
                                      .edge = "127.0.0.1:1",
                                      .agent = "bench",
                                      .peer_ip = "127.0.0.1",
                                      .since = 1,
                                      .names = names,
                                      .n_names = 1};
    }
    for (int i = 0; i < n_edges; i++) {
        char id[17];
        snprintf(id, sizeof(id), "e%05d", i);
        if (open_store(&e[i].st, url) < 0 ||
            es_live_open(&e[i].lv, url, id, es_live_now_ms(), why, sizeof(why)) < 0) {
            fprintf(stderr, "bench_store: edge %d: %s\n", i, why);
            return 1;
        }
        es_store_changed(&e[i].st);
    }
    struct es_store w;
    if (open_store(&w, url) < 0)
        return 1;
    double *lat = calloc((size_t)changes, sizeof(double));
    double *beat = calloc((size_t)(changes * n_edges + n_edges), sizeof(double));
    size_t n_lat = 0, n_beat = 0;
    double next_beat = 0;
    struct es_live_self self = {"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3", 1};
    for (int c = 0; c < changes; c++) {
        /* Heartbeats: every edge once a second, as serve does. */
        if (now_s() >= next_beat) {
            for (int i = 0; i < n_edges; i++) {
                double t0 = now_s();
                if (es_live_heartbeat(&e[i].lv, &self, li, (size_t)links, es_live_now_ms()) == 0)
                    beat[n_beat++] = now_s() - t0;
            }
            next_beat = now_s() + 1.0;
        }
        char id[33], name[65];
        snprintf(id, sizeof(id), "f%031d", c);
        snprintf(name, sizeof(name), "fan-%d", c);
        if (add_tunnel(&w, id, name) < 0)
            return 1;
        double committed = now_s();
        for (int i = 0; i < n_edges; i++) {
            e[i].seen = 0;
            pf[i].fd = es_sql_socket(e[i].st.db);
            pf[i].events = POLLIN;
        }
        int left = n_edges;
        while (left > 0 && now_s() - committed < 5) {
            if (poll(pf, (nfds_t)n_edges, 100) < 0)
                break;
            for (int i = 0; i < n_edges; i++) {
                if (e[i].seen || !(pf[i].revents & POLLIN))
                    continue;
                if (es_store_changed(&e[i].st)) {
                    e[i].seen = now_s();
                    pf[i].fd = -1;
                    left--;
                }
            }
        }
        double last = 0;
        for (int i = 0; i < n_edges; i++)
            last = e[i].seen - committed > last ? e[i].seen - committed : last;
        if (left == 0)
            lat[n_lat++] = last;
        usleep(20000);
    }
    printf("fanout: %d edges (%d connections), %d links each: a change seen by every edge "
           "after p50 %.2f ms, p99 %.2f ms, max %.2f ms (%zu of %d changes); heartbeat p50 "
           "%.2f ms, p99 %.2f ms\n",
           n_edges, 2 * n_edges, links, pct(lat, n_lat, 0.5) * 1000, pct(lat, n_lat, 0.99) * 1000,
           pct(lat, n_lat, 1.0) * 1000, n_lat, changes, pct(beat, n_beat, 0.5) * 1000,
           pct(beat, n_beat, 0.99) * 1000);
    for (int i = 0; i < n_edges; i++) {
        es_live_close(&e[i].lv);
        es_store_close(&e[i].st);
    }
    es_store_close(&w);
    free(e);
    free(pf);
    free(li);
    free(lat);
    free(beat);
    return 0;
}

/* ---- registry reload ---- */

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = 0;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

static int cmd_reload(const char *url, int tunnels, int routes)
{
    struct es_store st;
    if (open_store(&st, url) < 0)
        return 1;
    char sql[600];
    snprintf(sql, sizeof(sql),
             "INSERT INTO tunnels(id,name,secret_hash,patterns,created) SELECT"
             " lpad(to_hex(g), 32, '0'), 'tunnel-' || g, '\\x00'::bytea, '[]', 0"
             " FROM generate_series(1,%d) g",
             tunnels);
    if (es_sql_exec(st.db, sql) < 0) {
        fprintf(stderr, "bench_store: %s\n", es_sql_errmsg(st.db));
        return 1;
    }
    for (int from = 1; from <= routes; from += 100000) {
        int to = from + 99999 < routes ? from + 99999 : routes;
        snprintf(sql, sizeof(sql),
                 "INSERT INTO routes(hostname,tunnel_id) SELECT 'r' || g || '.example.test',"
                 " lpad(to_hex(1 + g %% %d), 32, '0') FROM generate_series(%d,%d) g",
                 tunnels, from, to);
        if (es_sql_exec(st.db, sql) < 0) {
            fprintf(stderr, "bench_store: %s\n", es_sql_errmsg(st.db));
            return 1;
        }
    }
    struct es_registry reg = {0};
    long rss0 = rss_kib();
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        if (es_registry_reload(&reg, &st) < 0) {
            fprintf(stderr, "bench_store: reload failed\n");
            return 1;
        }
        double took = now_s() - t0;
        best = took < best ? took : best;
    }
    long rss1 = rss_kib();
    double t0 = now_s();
    for (int i = 0; i < 10000; i++) {
        char host[64];
        snprintf(host, sizeof(host), "r%d.example.test", 1 + i * 7 % (routes ? routes : 1));
        es_registry_lookup(&reg, host);
    }
    double lookup = (now_s() - t0) / 10000;
    printf(
        "reload: %d tunnels, %d routes: registry reload %.1f ms, %.1f MiB held, lookup %.1f us\n",
        tunnels, routes, best * 1000, (double)(rss1 - rss0) / 1024, lookup * 1e6);
    es_registry_cleanup(&reg);
    es_store_close(&st);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc == 6 && strcmp(argv[1], "claims") == 0)
        return cmd_claims(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc == 6 && strcmp(argv[1], "fanout") == 0)
        return cmd_fanout(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc == 5 && strcmp(argv[1], "reload") == 0)
        return cmd_reload(argv[2], atoi(argv[3]), atoi(argv[4]));
    fprintf(stderr, "usage: bench_store claims URL PROCS CLAIMS PRELOAD\n"
                    "       bench_store fanout URL EDGES LINKS CHANGES\n"
                    "       bench_store reload URL TUNNELS ROUTES\n");
    return 2;
}
