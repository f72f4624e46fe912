#!/usr/bin/env bash
# Benchmark for `wott-mqtt check`: how long a whole process takes to prove
# that this device can read a topic, next to the tools people use today.
#
# One local Mosquitto (the tutorial's listener: TLS, client certificates
# required, CN as user name, an acl_file) with one retained message; then, in
# the same hyperfine run and with the same certificates:
#   wott-mqtt check --wait 2      (exits when the retained message arrives)
#   mosquitto_sub -C 1            (exits after one message)
#   a minimal Python Paho client  (the tutorial's client: subscribe, print one, exit)
# and the peak RSS of each (GNU time, max over RSS_RUNS runs).
#
# Needs: mosquitto, mosquitto-clients, openssl, hyperfine, python3-venv, bc, GNU time.
# Paho is installed with pip into a venv OUTSIDE the repository
# ($WOTT_BENCH_VENV, default ~/.cache/wott-mqtt-bench/venv).
#
# Usage: bench/check.sh            RUNS=200 bench/check.sh
source "$(dirname "$0")/common.sh"
require mosquitto mosquitto_sub mosquitto_pub openssl hyperfine python3 bc
[ -x /usr/bin/time ] || { echo "bench: GNU time is required (apt-get install time)" >&2; exit 1; }

RUNS=${RUNS:-100}
RSS_RUNS=${RSS_RUNS:-20}
VENV=${WOTT_BENCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/wott-mqtt-bench/venv}

build_release
work=$SCRATCH
broker_pid=
cleanup() {
    [ -z "$broker_pid" ] || kill "$broker_pid" 2>/dev/null || true
    [ -n "${BENCH_SCRATCH:-}" ] || rm -rf "$SCRATCH"
}
trap cleanup EXIT

# --- two WoTT-layout devices from one CA: the broker's and the client's
hex() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }
SERVER_ID="$(hex).d.wott.local"
CLIENT_ID="$(hex).d.wott.local"
make_identity "$work/server" "$SERVER_ID" "$work/ca"
make_identity "$work/certs" "$CLIENT_ID" "$work/ca"

# --- the broker
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'user %s\ntopic readwrite wott/#\n' "$CLIENT_ID" >"$work/permissions.acl"
{
    echo "persistence false"
    echo "log_dest file $work/mosquitto.log"
    [ "$(id -u)" = 0 ] && echo "user root"
    echo "listener $PORT 127.0.0.1"
    echo "cafile $work/ca/ca.crt"
    echo "certfile $work/server/client.crt"
    echo "keyfile $work/server/client.key"
    echo "require_certificate true"
    echo "use_identity_as_username true"
    echo "tls_version tlsv1.2"
    echo "acl_file $work/permissions.acl"
} >"$work/mosquitto.conf"
mosquitto -c "$work/mosquitto.conf" 2>"$work/mosquitto.err" &
broker_pid=$!
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
    sleep 0.05
done

TLS_ARGS="-h 127.0.0.1 -p $PORT --cafile $work/certs/ca.crt --cert $work/certs/client.crt --key $work/certs/client.key"
# shellcheck disable=SC2086
mosquitto_pub $TLS_ARGS -t wott/temperature -m 21.5 -r

# --- the Paho client (the tutorial's client, reduced to: subscribe, print one message, exit)
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet paho-mqtt
fi
cat >"$work/paho_sub.py" <<'PY'
import sys
import paho.mqtt.client as mqtt

ca, cert, key, host, port, topic = sys.argv[1:7]
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client()
client.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
client.on_connect = lambda c, *_: c.subscribe(topic)

def on_message(c, userdata, message):
    print(message.payload.decode())
    c.disconnect()

client.on_message = on_message
client.connect(host, int(port))
client.loop_forever()
PY

WOTT="$BIN check --cert-dir $work/certs --server $SERVER_ID --connect-to 127.0.0.1 --port $PORT --wait 2"
SUB="mosquitto_sub $TLS_ARGS -t wott/temperature -C 1"
PAHO="$VENV/bin/python $work/paho_sub.py $work/certs/ca.crt $work/certs/client.crt $work/certs/client.key 127.0.0.1 $PORT wott/temperature"

# Each must actually receive the message before it is timed.
# shellcheck disable=SC2086
{
    $WOTT >/dev/null || { echo "wott-mqtt check failed:"; $WOTT; exit 1; }
    [ "$($SUB)" = 21.5 ] || { echo "mosquitto_sub did not print the message"; exit 1; }
    [ "$($PAHO)" = 21.5 ] || { echo "the Paho client did not print the message"; exit 1; }
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "versions: $($BIN --version), $(mosquitto -h | head -1), paho-mqtt $("$VENV/bin/python" -c 'import paho.mqtt; print(paho.mqtt.__version__)')"
hyperfine -N --warmup 5 --runs "$RUNS" --export-markdown "$work/check.md" \
    -n "wott-mqtt check --wait 2" "$WOTT" \
    -n "mosquitto_sub -C 1" "$SUB" \
    -n "python paho (minimal)" "$PAHO"
cat "$work/check.md"

rss() { # name command...
    local name=$1 max=0 kb
    shift
    for _ in $(seq "$RSS_RUNS"); do
        kb=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
        [ "$kb" -gt "$max" ] && max=$kb
    done
    printf '| %s | %.1f MiB |\n' "$name" "$(echo "$max / 1024" | bc -l)"
}
echo
echo "| peak RSS (max of $RSS_RUNS runs) | |"
echo "|---|---|"
# shellcheck disable=SC2086
rss "wott-mqtt check --wait 2" $WOTT
# shellcheck disable=SC2086
rss "mosquitto_sub -C 1" $SUB
# shellcheck disable=SC2086
rss "python paho (minimal)" $PAHO
