# A throwaway PostgreSQL server for tests, from Debian's postgresql package:
# initdb into a temp directory, listening on 127.0.0.1 only, on a port the
# caller picks. Nothing is assumed to be running. Sourced; defines:
#   pg_start PORT      starts a new server (sets PG_DIR, PG_PORT, PG_URL);
#                      PG_URL is postgres://edge@127.0.0.1:PORT/edge
#   pg_stop            stops it (fast shutdown: sessions are cut)
#   pg_restart         starts the same data directory again
#   pg_destroy         stops it and removes its directory
#   pg_psql SQL...     runs psql -tA against it
# PostgreSQL refuses to run as root: as root it runs as the `postgres` user
# the package created (the directory is handed to it).
PG_BINDIR=${PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)}
PG_DIR=
PG_PORT=
PG_URL=

pg_as() { # runs a command as the user that owns the server
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pg_start() {
    PG_PORT=$1
    if [ -z "$PG_BINDIR" ] || [ ! -x "$PG_BINDIR/initdb" ]; then
        echo "pg.sh: no PostgreSQL server binaries (apt-get install postgresql)" >&2
        return 1
    fi
    PG_DIR=$(mktemp -d /tmp/edge-pg.XXXXXX) || return 1
    [ "$(id -u)" = 0 ] && chown postgres: "$PG_DIR"
    pg_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" -U edge -A trust --no-sync -E UTF8 \
        > "$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    pg_restart || return 1
    pg_as "$PG_BINDIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U edge -d postgres -qc \
        "CREATE DATABASE edge" >/dev/null || return 1
    PG_URL="postgres://edge@127.0.0.1:$PG_PORT/edge"
}

pg_restart() {
    # fsync off: a test's database need not survive a power cut.
    pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off \
            -c max_connections=200" start >/dev/null
}

pg_stop() {
    [ -n "$PG_DIR" ] && pg_as "$PG_BINDIR/pg_ctl" -D "$PG_DIR/data" -m fast -w -t 30 stop \
        >/dev/null 2>&1
    return 0
}

pg_destroy() {
    [ -n "$PG_DIR" ] || return 0
    pg_stop
    rm -rf "$PG_DIR"
    PG_DIR=
}

pg_psql() {
    "$PG_BINDIR/psql" -h 127.0.0.1 -p "$PG_PORT" -U edge -d edge -tAq -v ON_ERROR_STOP=1 "$@"
}
