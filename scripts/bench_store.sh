#!/bin/bash
# make bench-store: the shared store's figures on one PostgreSQL server,
# started here in a temp directory (tests/support/pg.sh), with the edge's
# own code (tests/bench/bench_store.c). docs/scaling.md quotes them.
#   BENCH_STORE_QUICK=1   smaller runs (a smoke test)
set -euo pipefail
BENCH=${1:-build/release/bin/bench_store}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/tests/support/pg.sh"
trap pg_destroy EXIT
PORT=$((15000 + RANDOM % 900))
pg_start $PORT >/dev/null
# A server as a small VPS would run it: durable commits (fsync on).
pg_stop; pg_as sed -i 's/^#*fsync.*/fsync = on/' "$PG_DIR/data/postgresql.conf"
pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-p $PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=500" \
    start >/dev/null
fresh() { # a new database with the schema: prints its address
    local db=$1
    pg_psql -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1
    local url=postgres://edge@127.0.0.1:$PORT/$db
    "$ROOT/build/release/bin/edge-sim" store migrate --store "$url" 2>/dev/null ||
        "$ROOT/bin/edge-sim" store migrate --store "$url" >/dev/null 2>&1
    echo "$url"
}
echo "PostgreSQL $("$PG_BINDIR/postgres" --version | awk '{print $3}') on 127.0.0.1, fsync on; $(nproc) cores"
if [ -n "${BENCH_STORE_QUICK:-}" ]; then
    "$BENCH" claims "$(fresh b1)" 4 200 1000
    "$BENCH" fanout "$(fresh b2)" 10 10 20
    "$BENCH" reload "$(fresh b3)" 100 1000
    exit 0
fi
for preload in 0 100000 1000000; do
    for procs in 1 4 16; do
        "$BENCH" claims "$(fresh c$procs$preload)" $procs 500 $preload | grep -v '^claims with'
    done | sed "s/^/[$preload routes held] /"
done
for edges in 1 10 50 100 200; do
    "$BENCH" fanout "$(fresh f$edges)" $edges 20 100
done
for n in 1000 10000 100000; do
    "$BENCH" reload "$(fresh r$n)" $n $((n * 2))
done
