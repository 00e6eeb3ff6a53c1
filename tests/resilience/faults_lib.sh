# Helpers for the fault scenarios (test_partition.sh, test_storm.sh), sourced
# after ../integration/lib.sh. Figures go to the script's stdout (fd 3) past
# check's capture, and to $WORK/figures.
exec 3>&1

figure() {
    echo "figure: $*" | tee -a "$WORK/figures" >&3
}

now() { date +%s.%N; }

# wait_until SECONDS CMD...: polls CMD every 0.25 s until it succeeds or
# SECONDS of wall time have passed (however slow CMD itself is).
wait_until() {
    local end
    end=$(awk -v t="$1" -v n="$(now)" 'BEGIN { printf "%.3f", n + t }')
    shift
    while :; do
        "$@" >/dev/null 2>&1 && return 0
        awk -v e="$end" -v n="$(now)" 'BEGIN { exit !(n > e) }' && return 1
        sleep 0.25
    done
}

# tunnel_conns JSON TUNNEL [EDGE_ADDR]: the connections of TUNNEL in an
# /api/tunnels answer. With EDGE_ADDR and a per-edge tally in the answer
# (`edges`, issue 11), that edge's count; else the tunnel's `connections`
# (today: the answering edge's own links).
tunnel_conns() {
    python3 -c '
import json, sys
doc = json.loads(sys.argv[1] or "{}")
for t in doc.get("tunnels", []):
    if t.get("name") == sys.argv[2]:
        edges = t.get("edges")
        if len(sys.argv) > 3 and isinstance(edges, dict):
            print(edges.get(sys.argv[3], 0))
        else:
            print(t.get("connections", 0))
        break
else:
    print(0)
' "$@"
}

# log_since FILE MARK: FILE's lines after line MARK (a `wc -l` taken earlier)
log_since() { tail -n +$(($2 + 1)) "$1"; }
lines() { wc -l < "$1"; }

# distinct_lost FILE MARK EDGE: how many distinct connections to EDGE the
# connector logged as lost (or closed by a ping timeout) after MARK
distinct_lost() {
    log_since "$1" "$2" | grep -E "connection [0-9]+ to edge $3 lost" |
        sed -E 's/.*connection ([0-9]+) to edge.*/\1/' | sort -u | wc -l
}
