#!/usr/bin/env bash
# `server watch` side by side with what a user would otherwise set up:
#
# 1. Renewal → served: the agent's renewal written its way (client.crt, then
#    ca.crt, then client.key, then combined.pem, each truncated and
#    rewritten, a few ms apart), timed from the last write of the key until
#    `openssl s_client` sees the new certificate on the wire. Against the
#    do-it-yourself trigger, `inotifywait -m` on the cert dir running
#    `wott-mqtt server reload` at each write (what a certhub-style path unit
#    does), which also counts the reloads it tried on a half-written pair.
#    (The cron recipe docs/server.md used to give applies a renewal 12 h
#    after it, in the median.)
# 2. Clients dropped: 1,000 `mosquitto_sub` clients connected while watch
#    applies a renewal and an ACL edit, against `docker restart` (what the
#    tutorial's run.sh amounts to): disconnections counted in the broker's log.
# 3. At rest: watch's CPU time over a minute with nothing changing, and its
#    RSS, against the inotifywait loop's.
#
# Run as root (staging chowns to uid 1883). BENCH_RENEWALS (20), BENCH_CLIENTS
# (1000), BENCH_IDLE_SECS (60).
source "$(dirname "$0")/common.sh"
require openssl docker mosquitto_sub mosquitto_pub inotifywait
build_release

IMAGE="$(find_image)"
RENEWALS="${BENCH_RENEWALS:-20}"
CLIENTS="${BENCH_CLIENTS:-1000}"
IDLE="${BENCH_IDLE_SECS:-60}"
ID=4853b630822946019393b16c5b710b9e.d.wott.local
CLIENT_ID=0123456789abcdef0123456789abcdef.d.wott.local
NAME="wott-bench-watch-$$"
PORT=18893
CERTS="$SCRATCH/certs"
SERVER_DIR="$SCRATCH/server"
make_identity "$CERTS" "$ID"
make_identity "$SCRATCH/client" "$CLIENT_ID" "$CERTS"
W=("$BIN" --cert-dir "$CERTS" --server-dir "$SERVER_DIR")

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    pkill -f "mosquitto_sub -h 127.0.0.1 -p $PORT" 2>/dev/null || true
    pkill -f "inotifywait -m -q -e close_write --format %f $CERTS" 2>/dev/null || true
    docker rm -f "$NAME" >/dev/null 2>&1 || true
    remove_scratch
}
trap cleanup EXIT

"${W[@]}" -q server up --name "$NAME" --image "$IMAGE" --bind 127.0.0.1 --port "$PORT" >/dev/null
"${W[@]}" -q acl allow "$CLIENT_ID" "bench/#" --access readwrite >/dev/null

served() {
    openssl s_client -connect "127.0.0.1:$PORT" -cert "$SCRATCH/client/client.crt" \
        -key "$SCRATCH/client/client.key" -CAfile "$CERTS/ca.crt" </dev/null 2>/dev/null \
        | openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}
now_ms() { date +%s%3N; }

# A renewal from the same CA, ready in $SCRATCH/next; prints its fingerprint.
prepare_renewal() {
    rm -rf "$SCRATCH/next" && mkdir -p "$SCRATCH/next"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$SCRATCH/next/client.key" 2>/dev/null
    openssl req -new -key "$SCRATCH/next/client.key" -subj "/CN=$ID" -out "$SCRATCH/next/csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' "$ID" > "$SCRATCH/next/ext"
    openssl x509 -req -in "$SCRATCH/next/csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
        -CAcreateserial -days 7 -extfile "$SCRATCH/next/ext" -out "$SCRATCH/next/client.crt" 2>/dev/null
    openssl x509 -in "$SCRATCH/next/client.crt" -noout -fingerprint -sha256 | cut -d= -f2
}

# The agent's way: in place, one after another; ends with the key written.
agent_renews() {
    cat "$SCRATCH/next/client.crt" > "$CERTS/client.crt"; sleep 0.005
    local ca; ca="$(cat "$CERTS/ca.crt")"; printf '%s\n' "$ca" > "$CERTS/ca.crt"; sleep 0.005
    cat "$SCRATCH/next/client.key" > "$CERTS/client.key"
}

# renewal_latencies LABEL: RENEWALS renewals, the ms from the key's write to
# the new certificate on the wire, one per line in $SCRATCH/LABEL.ms.
renewal_latencies() {
    local label="$1" fp t0
    : > "$SCRATCH/$label.ms"
    for _ in $(seq "$RENEWALS"); do
        fp="$(prepare_renewal)"
        agent_renews
        t0="$(now_ms)"
        cat "$SCRATCH/next/client.crt" "$SCRATCH/next/client.key" > "$CERTS/combined.pem"
        until [ "$(served)" = "$fp" ]; do
            [ $(( $(now_ms) - t0 )) -lt 30000 ] || { echo "bench: $label never served the renewal" >&2; exit 1; }
            sleep 0.02
        done
        echo $(( $(now_ms) - t0 )) >> "$SCRATCH/$label.ms"
        sleep 1
    done
}

stats() {
    sort -n "$1" | awk '{a[NR]=$1} END {printf "median %d ms, p90 %d ms, max %d ms (n=%d)", a[int((NR+1)/2)], a[int(NR*0.9+0.5)], a[NR], NR}'
}

rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# 1. watch
"${W[@]}" --json server watch > "$SCRATCH/watch.log" &
WATCH=$!; pids+=("$WATCH")
until grep -q '"event":"current"' "$SCRATCH/watch.log"; do sleep 0.05; done
renewal_latencies watch

# 3. at rest (watch)
sleep 2
t0=$(cpu_ticks "$WATCH"); sleep "$IDLE"; t1=$(cpu_ticks "$WATCH")
WATCH_CPU=$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))
WATCH_RSS=$(rss_kib "$WATCH")
WATCH_ANON=$(awk '/^Anonymous:/ {print $2}' "/proc/$WATCH/smaps_rollup")
WATCH_THREADS=$(ls "/proc/$WATCH/task" | wc -l)

# 2. clients, under watch: a renewal and an ACL edit
start_clients() {
    for i in $(seq "$CLIENTS"); do
        mosquitto_sub -h 127.0.0.1 -p "$PORT" -t bench/load -i "load-$i" -q 1 \
            --cafile "$CERTS/ca.crt" --cert "$SCRATCH/client/client.crt" --key "$SCRATCH/client/client.key" \
            >/dev/null 2>&1 &
        pids+=("$!")
    done
    local connected=0
    for _ in $(seq 600); do
        connected=$(docker logs "$NAME" 2>&1 | grep -c 'New client connected .* as load-')
        [ "$connected" -ge "$CLIENTS" ] && break
        sleep 0.1
    done
    [ "$connected" -ge "$CLIENTS" ] || { echo "bench: only $connected of $CLIENTS clients connected" >&2; exit 1; }
}
# The clients that lost their connection since $1: each reconnects by
# itself (mosquitto_sub does), so each shows a new CONNECT in the log.
dropped_since() {
    docker logs --since "$1" "$NAME" 2>&1 \
        | { grep -E 'New client connected .* as load-[0-9]+ |Client load-[0-9]+ (disconnected|closed)|Socket error on client load-' || true; } \
        | { grep -oE 'load-[0-9]+' || true; } | sort -u | wc -l
}
start_clients
since="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
prepare_renewal >/dev/null
agent_renews
cat "$SCRATCH/next/client.crt" "$SCRATCH/next/client.key" > "$CERTS/combined.pem"
renewed_before=$(grep -c '"event":"renewed"' "$SCRATCH/watch.log")
until [ "$(grep -c '"event":"renewed"' "$SCRATCH/watch.log")" -gt "$renewed_before" ]; do sleep 0.05; done
printf '\n# reviewed\n' >> "$SERVER_DIR/permissions.acl"
until grep -q '"event":"acl-reloaded"' "$SCRATCH/watch.log"; do sleep 0.05; done
sleep 2
WATCH_DROPPED=$(dropped_since "$since")
kill "$WATCH"; wait "$WATCH" 2>/dev/null || true

since="$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"
docker restart "$NAME" >/dev/null
sleep 5
RESTART_DROPPED=$(dropped_since "$since")
pkill -f "mosquitto_sub -h 127.0.0.1 -p $PORT" 2>/dev/null || true

# 1. the inotifywait loop
cat > "$SCRATCH/diy.sh" <<DIY
#!/usr/bin/env bash
inotifywait -m -q -e close_write --format %f "$CERTS" | while read -r file; do
    case "\$file" in client.crt|client.key|ca.crt) ;; *) continue ;; esac
    if $BIN --cert-dir $CERTS --server-dir $SERVER_DIR -q server reload >/dev/null 2>&1; then
        echo ok >> "$SCRATCH/diy.outcomes"
    else
        echo refused >> "$SCRATCH/diy.outcomes"
    fi
done
DIY
chmod +x "$SCRATCH/diy.sh"
: > "$SCRATCH/diy.outcomes"
"$SCRATCH/diy.sh" &
DIY=$!; pids+=("$DIY")
sleep 1
renewal_latencies diy
DIY_REFUSED=$(grep -c refused "$SCRATCH/diy.outcomes" || true)
DIY_OK=$(grep -c ok "$SCRATCH/diy.outcomes" || true)
sleep 2
INOTIFY=$(pgrep -f "inotifywait -m -q -e close_write --format %f $CERTS" | head -1)
t0=$(cpu_ticks "$INOTIFY"); sleep "$IDLE"; t1=$(cpu_ticks "$INOTIFY")
DIY_CPU=$(( (t1 - t0) * 1000 / $(getconf CLK_TCK) ))
DIY_RSS=$(( $(rss_kib "$INOTIFY") + $(rss_kib "$DIY") ))

echo "| measure | wott-mqtt server watch | peer, same run |"
echo "|---|---|---|"
echo "| renewal → new certificate on the wire | $(stats "$SCRATCH/watch.ms") | inotifywait + server reload: $(stats "$SCRATCH/diy.ms"); $DIY_REFUSED of $((DIY_OK + DIY_REFUSED)) reloads refused a half-written identity |"
echo "| clients dropped, of $CLIENTS connected | $WATCH_DROPPED (a renewal and an ACL reload) | docker restart: $RESTART_DROPPED |"
echo "| at rest, $IDLE s | ${WATCH_CPU} ms CPU, $((WATCH_RSS / 1024)) MiB RSS ($WATCH_RSS KiB, of it $WATCH_ANON KiB anonymous; $WATCH_THREADS threads) | inotifywait + bash: ${DIY_CPU} ms CPU, $((DIY_RSS / 1024)) MiB RSS |"
